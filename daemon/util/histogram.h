/* Counts of observed values in fixed buckets, the shape Prometheus exposes as a histogram. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BUCKETS 16

typedef struct Histogram {
        const double *bounds; /* ascending upper bounds; a static array */
        size_t n_bounds;
        uint64_t counts[HISTOGRAM_MAX_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
        double sum;
        uint64_t count;
} Histogram;

/* bounds must outlive h; at most HISTOGRAM_MAX_BUCKETS of them. */
void histogram_init(Histogram *h, const double *bounds, size_t n_bounds);
void histogram_observe(Histogram *h, double value);

/* Seconds from 1 ms to 2 minutes: operations, rescans. */
extern const double histogram_seconds_bounds[];
extern const size_t histogram_seconds_n_bounds;
