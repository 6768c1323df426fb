/* Fixed-bucket histograms. */
#include "histogram.h"

#include <assert.h>

#include "macro.h"

const double histogram_seconds_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };
const size_t histogram_seconds_n_bounds = ELEMENTSOF(histogram_seconds_bounds);

void histogram_init(Histogram *h, const double *bounds, size_t n_bounds) {
        assert(n_bounds <= HISTOGRAM_MAX_BUCKETS);
        *h = (Histogram){ .bounds = bounds, .n_bounds = n_bounds };
}

void histogram_observe(Histogram *h, double value) {
        size_t i = 0;

        while (i < h->n_bounds && value > h->bounds[i])
                i++;
        h->counts[i]++;
        h->sum += value;
        h->count++;
}
