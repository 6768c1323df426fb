/* Prometheus text exposition: escaping as the format defines it, numbers as Go's parser reads them. */
#include "metrics-text.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"

#define MAX_LABELS 8

typedef struct Labels {
        const char *pairs[2 * MAX_LABELS];
        size_t n; /* pairs, counted in names */
} Labels;

static void labels_collect(Labels *l, va_list ap) {
        const char *name;

        l->n = 0;
        while ((name = va_arg(ap, const char *))) {
                const char *value = va_arg(ap, const char *);

                if (l->n < MAX_LABELS) {
                        l->pairs[2 * l->n] = name;
                        l->pairs[2 * l->n + 1] = value ?: "";
                        l->n++;
                }
        }
}

/* Label values escape backslash, double quote and newline; HELP texts backslash and newline. */
static void put_escaped(struct evbuffer *out, const char *s, bool quote) {
        for (; *s; s++)
                if (*s == '\\')
                        evbuffer_add(out, "\\\\", 2);
                else if (*s == '\n')
                        evbuffer_add(out, "\\n", 2);
                else if (*s == '"' && quote)
                        evbuffer_add(out, "\\\"", 2);
                else
                        evbuffer_add(out, s, 1);
}

static void put_name_labels(struct evbuffer *out, const char *name, const char *suffix, const Labels *l,
                            const char *le) {
        evbuffer_add_printf(out, "%s%s", name, suffix);
        if (l->n == 0 && !le)
                return;
        evbuffer_add(out, "{", 1);
        for (size_t i = 0; i < l->n; i++) {
                evbuffer_add_printf(out, "%s%s=\"", i ? "," : "", l->pairs[2 * i]);
                put_escaped(out, l->pairs[2 * i + 1], true);
                evbuffer_add(out, "\"", 1);
        }
        if (le)
                evbuffer_add_printf(out, "%sle=\"%s\"", l->n ? "," : "", le);
        evbuffer_add(out, "}", 1);
}

static void put_double(struct evbuffer *out, double v) {
        if (isnan(v))
                evbuffer_add_printf(out, " NaN\n");
        else if (isinf(v))
                evbuffer_add_printf(out, " %sInf\n", v < 0 ? "-" : "+");
        else
                evbuffer_add_printf(out, " %.17g\n", v);
}

void metrics_family(MetricsWriter *w, const char *name, MetricType type, const char *help) {
        static const char *const types[] = { [METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge",
                                             [METRIC_HISTOGRAM] = "histogram" };

        evbuffer_add_printf(w->out, "# HELP %s ", name);
        put_escaped(w->out, help, false);
        evbuffer_add_printf(w->out, "\n# TYPE %s %s\n", name, types[type]);
}

/* name{labels}, without the value: labels are the pairs of ap. */
static void put_head(MetricsWriter *w, const char *name, va_list ap) {
        Labels l;

        labels_collect(&l, ap);
        put_name_labels(w->out, name, "", &l, NULL);
}

void metrics_sample(MetricsWriter *w, const char *name, double value, ...) {
        va_list ap;

        va_start(ap, value);
        put_head(w, name, ap);
        va_end(ap);
        put_double(w->out, value);
}

void metrics_sample_u64(MetricsWriter *w, const char *name, uint64_t value, ...) {
        va_list ap;

        va_start(ap, value);
        put_head(w, name, ap);
        va_end(ap);
        evbuffer_add_printf(w->out, " %" PRIu64 "\n", value);
}

void metrics_histogram(MetricsWriter *w, const char *name, const Histogram *h, ...) {
        uint64_t cumulative = 0;
        Labels l;
        va_list ap;

        va_start(ap, h);
        labels_collect(&l, ap);
        va_end(ap);
        for (size_t i = 0; i <= h->n_bounds; i++) {
                char le[32];

                cumulative += h->counts[i];
                if (i < h->n_bounds)
                        snprintf(le, sizeof(le), "%g", h->bounds[i]);
                else
                        strcpy(le, "+Inf");
                put_name_labels(w->out, name, "_bucket", &l, le);
                evbuffer_add_printf(w->out, " %" PRIu64 "\n", cumulative);
        }
        put_name_labels(w->out, name, "_sum", &l, NULL);
        put_double(w->out, h->sum);
        put_name_labels(w->out, name, "_count", &l, NULL);
        evbuffer_add_printf(w->out, " %" PRIu64 "\n", h->count);
}
