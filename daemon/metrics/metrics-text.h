/* The Prometheus text exposition format (version 0.0.4): metric families, samples with escaped
 * labels, histograms. Writes into a libevent buffer. */
#pragma once

#include <stdint.h>

#include "histogram.h"

struct evbuffer;

typedef struct MetricsWriter {
        struct evbuffer *out;
} MetricsWriter;

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
} MetricType;

/* "# HELP name help" and "# TYPE name type": once per family, before its samples. */
void metrics_family(MetricsWriter *w, const char *name, MetricType type, const char *help);

/* name{label="value",...} value: the labels are name, value pairs ending with NULL. */
void metrics_sample(MetricsWriter *w, const char *name, double value, ...) __attribute__((sentinel));
/* The same with an exact integer (counters). */
void metrics_sample_u64(MetricsWriter *w, const char *name, uint64_t value, ...) __attribute__((sentinel));
/* name_bucket{...,le="..."}, name_sum, name_count. */
void metrics_histogram(MetricsWriter *w, const char *name, const Histogram *h, ...) __attribute__((sentinel));
