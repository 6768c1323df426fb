/* Unit tests for core/history.c: entries across reopenings, unfinished operations after a crash, a
 * torn last line, the bound, and the filters of the listing. */
#undef NDEBUG
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "history.h"
#include "macro.h"
#include "string-util.h"

static char *make_dir(void) {
        char tmpl[] = "/tmp/iommud-history-XXXXXX";

        assert_non_null(mkdtemp(tmpl));
        return strdup(tmpl);
}

static void remove_dir(char *dir) {
        char *cmd = strprintf("rm -rf '%s'", dir);

        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(dir);
}

static HistoryEntry entry(uint64_t id, unsigned group, const char *op) {
        static char *steps[] = { (char *)"set driver_override of 0000:00:16.0 to none", NULL };

        return (HistoryEntry){ .id = id, .operation = (char *)op, .group = group, .peer = (char *)"unix uid=0",
                               .started_usec = 1000 * id, .steps = steps, .result = OPERATION_RESULT_RUNNING };
}

static void test_roundtrip_and_unfinished(void **state) {
        char *dir = make_dir();
        History *h = NULL;
        HistoryEntry *list = NULL, e;
        const uint64_t *unfinished;
        size_t n;

        assert_int_equal(history_open(dir, 0, &h), 0);
        assert_int_equal(history_max_id(h), 0);
        e = entry(1, 5, "BlockGroup");
        e.dry_run = true;
        e.result = OPERATION_RESULT_DRY_RUN;
        assert_int_equal(history_add(h, &e), 0);
        e = entry(2, 5, "BlockGroup");
        assert_int_equal(history_start(h, &e), 0);
        assert_int_equal(history_finish(h, 2, OPERATION_RESULT_DONE, NULL, 1234), 0);
        e = entry(3, 7, "SetDomainType");
        e.argument = (char *)"DMA";
        assert_int_equal(history_start(h, &e), 0);
        /* The daemon dies here: 3 has a start and no end. */
        history_free(h);

        assert_int_equal(history_open(dir, 0, &h), 0);
        assert_int_equal(history_max_id(h), 3);
        unfinished = history_unfinished(h, &n);
        assert_int_equal(n, 1);
        assert_int_equal(unfinished[0], 3);

        assert_int_equal(history_list(h, 0, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(list[0].id, 3); /* newest first */
        assert_int_equal(list[0].result, OPERATION_RESULT_RUNNING);
        assert_string_equal(list[0].argument, "DMA");
        assert_int_equal(list[1].id, 2);
        assert_int_equal(list[1].result, OPERATION_RESULT_DONE);
        assert_int_equal(list[1].duration_usec, 1234);
        assert_string_equal(list[1].steps[0], "set driver_override of 0000:00:16.0 to none");
        assert_null(list[1].steps[1]);
        assert_true(list[2].dry_run);
        assert_int_equal(list[2].result, OPERATION_RESULT_DRY_RUN);
        history_entries_free(list, n);

        assert_int_equal(history_finish(h, 3, OPERATION_RESULT_CRASH_ROLLED_BACK, "undone at the next start", 0), 0);
        (void)history_unfinished(h, &n);
        assert_int_equal(n, 0);

        /* Filters: a group, a limit. */
        assert_int_equal(history_list(h, 0, (unsigned[]){ 7 }, 1, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].result, OPERATION_RESULT_CRASH_ROLLED_BACK);
        assert_string_equal(list[0].message, "undone at the next start");
        history_entries_free(list, n);
        assert_int_equal(history_list(h, 2, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[1].id, 2);
        history_entries_free(list, n);
        history_free(h);
        remove_dir(dir);
}

static void test_torn_line(void **state) {
        char *dir = make_dir(), *path = strprintf("%s/history.jsonl", dir);
        History *h = NULL;
        HistoryEntry *list = NULL, e;
        size_t n;
        int fd;

        assert_int_equal(history_open(dir, 0, &h), 0);
        e = entry(1, 1, "PrepareGroup");
        assert_int_equal(history_start(h, &e), 0);
        history_free(h);
        /* A crash in the middle of writing the end line. */
        fd = open(path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "{\"event\":\"end\",\"id\":1,\"res", 27), 27);
        close(fd);

        assert_int_equal(history_open(dir, 0, &h), 0);
        (void)history_unfinished(h, &n);
        assert_int_equal(n, 1);
        e = entry(2, 1, "ReleaseGroup");
        e.result = OPERATION_RESULT_REFUSED;
        assert_int_equal(history_add(h, &e), 0);
        assert_int_equal(history_list(h, 0, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 2); /* the torn line is skipped, the next one is whole */
        assert_int_equal(list[0].id, 2);
        assert_int_equal(list[0].result, OPERATION_RESULT_REFUSED);
        history_entries_free(list, n);
        history_free(h);
        free(path);
        remove_dir(dir);
}

static void test_bounded(void **state) {
        char *dir = make_dir();
        History *h = NULL;
        HistoryEntry *list = NULL, e;
        struct stat st;
        size_t n;

        /* Ten lines per file: at most twenty lines are kept, however many are written. */
        assert_int_equal(history_open(dir, 10, &h), 0);
        for (uint64_t id = 1; id <= 100; id++) {
                e = entry(id, (unsigned)(id % 3), "BlockGroup");
                assert_int_equal(history_start(h, &e), 0);
                assert_int_equal(history_finish(h, id, OPERATION_RESULT_DONE, NULL, id), 0);
        }
        assert_int_equal(history_list(h, 0, NULL, 0, &list, &n), 0);
        assert_true(n >= 5 && n <= 10);
        assert_int_equal(list[0].id, 100);
        FOREACH_ARRAY(x, list, n)
                assert_int_equal(x->result, OPERATION_RESULT_DONE);
        history_entries_free(list, n);
        history_free(h);

        /* The largest id survives the rotations. */
        assert_int_equal(history_open(dir, 10, &h), 0);
        assert_int_equal(history_max_id(h), 100);
        history_free(h);
        {
                char *p = strprintf("%s/history.2.jsonl", dir);

                assert_int_equal(stat(p, &st), -1);
                free(p);
        }
        remove_dir(dir);
}

static void test_result_names(void **state) {
        for (int r = 0; r < _OPERATION_RESULT_MAX; r++)
                assert_int_equal(operation_result_from_string(operation_result_to_string(r)), r);
        assert_true(operation_result_from_string("nonsense") < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_and_unfinished),
                cmocka_unit_test(test_torn_line),
                cmocka_unit_test(test_bounded),
                cmocka_unit_test(test_result_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
