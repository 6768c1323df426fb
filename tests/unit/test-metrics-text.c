/* Unit tests for metrics/metrics-text.c: the exposition format's escaping, integers, histograms. */
#undef NDEBUG
#include <event2/buffer.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics-text.h"

static char *text(struct evbuffer *b) {
        size_t n = evbuffer_get_length(b);
        char *s = calloc(1, n + 1);

        evbuffer_remove(b, s, n);
        return s;
}

static void test_family_and_escaping(void **state) {
        struct evbuffer *b = evbuffer_new();
        MetricsWriter w = { .out = b };
        char *s;

        metrics_family(&w, "iommud_x", METRIC_GAUGE, "Help with a \\ and\na newline.");
        metrics_sample(&w, "iommud_x", 1.5, "a", "quote \" back \\ nl \n", "b", "", NULL);
        metrics_sample_u64(&w, "iommud_y", UINT64_C(18446744073709551615), NULL);
        s = text(b);
        assert_string_equal(s, "# HELP iommud_x Help with a \\\\ and\\na newline.\n"
                               "# TYPE iommud_x gauge\n"
                               "iommud_x{a=\"quote \\\" back \\\\ nl \\n\",b=\"\"} 1.5\n"
                               "iommud_y 18446744073709551615\n");
        free(s);
        evbuffer_free(b);
}

static void test_histogram(void **state) {
        static const double bounds[] = { 0.1, 1 };
        struct evbuffer *b = evbuffer_new();
        MetricsWriter w = { .out = b };
        Histogram h;
        char *s;

        histogram_init(&h, bounds, 2);
        histogram_observe(&h, 0.05);
        histogram_observe(&h, 0.1); /* le is inclusive */
        histogram_observe(&h, 0.5);
        histogram_observe(&h, 7);
        metrics_histogram(&w, "d", &h, "kind", "BlockGroup", NULL);
        s = text(b);
        assert_string_equal(s, "d_bucket{kind=\"BlockGroup\",le=\"0.1\"} 2\n"
                               "d_bucket{kind=\"BlockGroup\",le=\"1\"} 3\n"
                               "d_bucket{kind=\"BlockGroup\",le=\"+Inf\"} 4\n"
                               "d_sum{kind=\"BlockGroup\"} 7.6500000000000004\n"
                               "d_count{kind=\"BlockGroup\"} 4\n");
        free(s);
        evbuffer_free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_family_and_escaping),
                cmocka_unit_test(test_histogram),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
