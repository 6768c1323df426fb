/* Unit tests for core/transaction.c: rollback after a failed step, and recovery from a journal record
 * left by a crash. A fixture tree's attributes are plain files, so writes land and can be read back. */
#undef NDEBUG
#include <errno.h>
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

#include "fake-tree.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "transaction.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

static char *attr(FakeTree *t, const char *path) {
        char *s = NULL;

        assert_int_equal(read_attr_at(fake_tree_roots(t)->sysfs_fd, path, &s), 0);
        return s;
}

static FakeTree *host(void) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");

        fake_tree_add_group(t, 3, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, "e1000e", 3, 0);
        return t;
}

static void test_rollback_after_failed_step(void **state) {
        _cleanup_(transaction_freep) Transaction *tr = transaction_new(1, "SetDomainType", 3);
        _cleanup_(freep) char *message = NULL, *override = NULL, *type = NULL, *journal = NULL, *record = NULL;
        FakeTree *t = host();

        journal = strprintf("%s/journal", t->root);
        assert_int_equal(mkdir(journal, 0700), 0);
        tr->journal_dir = strdup(journal);
        assert_int_equal(transaction_add(tr, STEP_SET_OVERRIDE, "0000:00:03.0", "none", NULL), 0);
        assert_int_equal(transaction_add(tr, STEP_WRITE_TYPE, NULL, "identity", "DMA"), 0);
        /* The device is bound to e1000e, not to this: the step fails at once. */
        assert_int_equal(transaction_add(tr, STEP_UNBIND, "0000:00:03.0", "igb", NULL), 0);

        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EBUSY);
        assert_non_null(strstr(message, "step 3 of 3, 'unbind 0000:00:03.0 from igb', failed"));
        assert_non_null(strstr(message, "bound to e1000e, not igb"));
        assert_non_null(strstr(message, "every step done before it was undone"));

        override = attr(t, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        type = attr(t, "sys/kernel/iommu_groups/3/type");
        /* A cleared override is written as "\n": the file holds an empty line. */
        assert_string_equal(override, "");
        assert_string_equal(type, "DMA");
        /* The record is gone once the rollback is complete. */
        record = strprintf("%s/1.json", journal);
        assert_int_equal(access(record, F_OK), -1);
        fake_tree_free(t);
}

static void test_recover_from_journal(void **state) {
        _cleanup_(freep) char *journal = NULL, *record = NULL, *type = NULL, *override = NULL;
        FakeTree *t = host();
        FILE *f;

        /* A crash left the type written and the override set: steps 0 and 1 done, step 2 next. */
        fake_tree_write(t, "sys/kernel/iommu_groups/3/type", "identity\n");
        fake_tree_write(t, "sys/bus/pci/devices/0000:00:03.0/driver_override", "none\n");
        journal = strprintf("%s/journal", t->root);
        assert_int_equal(mkdir(journal, 0700), 0);
        record = strprintf("%s/7.json", journal);
        f = fopen(record, "we");
        assert_non_null(f);
        fputs("{\"id\":7,\"operation\":\"SetDomainType\",\"group\":3,\"next\":2,\"steps\":["
              "{\"kind\":\"set-override\",\"device\":\"0000:00:03.0\",\"value\":\"none\",\"previous\":\"pci-stub\"},"
              "{\"kind\":\"write-type\",\"device\":null,\"value\":\"identity\",\"previous\":\"DMA\"},"
              "{\"kind\":\"write-type\",\"device\":null,\"value\":\"DMA-FQ\",\"previous\":\"identity\"}]}",
              f);
        fclose(f);
        fake_tree_write(t, "journal/garbage.json", "{not json");

        /* The readable record is rolled back and removed; the garbage one is kept for an admin. */
        assert_true(transaction_recover(journal, fake_tree_roots(t), NULL, NULL) < 0);
        type = attr(t, "sys/kernel/iommu_groups/3/type");
        override = attr(t, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        assert_string_equal(type, "DMA");
        assert_string_equal(override, "pci-stub");
        assert_int_equal(access(record, F_OK), -1);
        fake_tree_free(t);
}

/* A VM opened the device after the operation's checks: the unbind that would block never starts. */
static void test_unbind_of_open_vfio_device_refused(void **state) {
        _cleanup_(transaction_freep) Transaction *tr = transaction_new(2, "BlockGroup", 4);
        _cleanup_(freep) char *message = NULL, *override = NULL;
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");

        fake_tree_add_group(t, 4, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:04.0", NULL, "vfio-pci", 4, 0);
        fake_tree_write(t, "sys/bus/pci/devices/0000:00:04.0/enable", "1\n");
        assert_int_equal(transaction_add(tr, STEP_SET_OVERRIDE, "0000:00:04.0", "none", NULL), 0);
        assert_int_equal(transaction_add(tr, STEP_UNBIND, "0000:00:04.0", "vfio-pci", NULL), 0);

        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EBUSY);
        assert_non_null(strstr(message, "0000:00:04.0 is open through VFIO (its PCI enable count is 1)"));
        assert_non_null(strstr(message, "every step done before it was undone"));
        override = attr(t, "sys/bus/pci/devices/0000:00:04.0/driver_override");
        assert_string_equal(override, "");
        fake_tree_free(t);
}

/* Disabling SR-IOV is journaled with the number of VFs; undoing it enables them again. */
static void test_numvfs_step(void **state) {
        _cleanup_(transaction_freep) Transaction *tr = transaction_new(3, "BlockGroup", 3);
        _cleanup_(freep) char *message = NULL, *numvfs = NULL, *what = NULL;
        FakeTree *t = host();

        fake_tree_write(t, "sys/bus/pci/devices/0000:00:03.0/sriov_numvfs", "4\n");
        assert_int_equal(transaction_add(tr, STEP_SET_NUMVFS, "0000:00:03.0", "0", "4"), 0);
        assert_int_equal(transaction_add(tr, STEP_UNBIND, "0000:00:03.0", "igb", NULL), 0);
        what = step_describe(&tr->steps[0], 3);
        assert_string_equal(what, "disable SR-IOV on 0000:00:03.0: its 4 virtual functions are lost");

        /* The unbind fails (the device is on e1000e): the VFs come back. */
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EBUSY);
        numvfs = attr(t, "sys/bus/pci/devices/0000:00:03.0/sriov_numvfs");
        assert_string_equal(numvfs, "4");
        fake_tree_free(t);
}

static void test_describe(void **state) {
        Step steps[] = {
                { STEP_SET_OVERRIDE, (char *)"0000:01:00.0", (char *)"vfio-pci", NULL },
                { STEP_SET_OVERRIDE, (char *)"0000:01:00.0", NULL, (char *)"vfio-pci" },
                { STEP_PROBE, (char *)"0000:01:00.0", (char *)"vfio-pci", NULL },
                { STEP_WAIT_VFIO, NULL, NULL, NULL },
        };
        const char *expected[] = {
                "set driver_override of 0000:01:00.0 to vfio-pci",
                "clear driver_override of 0000:01:00.0",
                "probe 0000:01:00.0 and check it binds to vfio-pci",
                "wait for /dev/vfio/5",
        };

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                _cleanup_(freep) char *s = step_describe(&steps[i], 5);

                assert_string_equal(s, expected[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rollback_after_failed_step),
                cmocka_unit_test(test_recover_from_journal),
                cmocka_unit_test(test_unbind_of_open_vfio_device_refused),
                cmocka_unit_test(test_numvfs_step),
                cmocka_unit_test(test_describe),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
