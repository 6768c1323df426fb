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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-kernel.h"
#include "fake-tree.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "transaction.h"

static char *mfree_str(char *s) {
        free(s);
        return NULL;
}

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
        /* Found by fuzz-state-records: a step of an unknown kind after a good one was taken for a
         * readable record that was never returned (a NULL dereference at start). */
        fake_tree_write(t, "journal/9.json",
                        "{\"id\":9,\"operation\":\"SetDomainType\",\"group\":3,\"steps\":["
                        "{\"kind\":\"write-type\",\"value\":\"identity\",\"previous\":\"DMA\"},"
                        "{\"kind\":\"frobnicate\"}]}");
        /* Also found by it: a step without the field its kind needs (here set-numvfs without value)
         * reached step_describe() and the undo with NULL. */
        fake_tree_write(t, "journal/10.json",
                        "{\"id\":10,\"operation\":\"SetDomainType\",\"group\":3,\"next\":1,\"steps\":["
                        "{\"kind\":\"set-numvfs\",\"device\":\"0000:00:03.0\",\"previous\":\"8\"}]}");

        /* The readable record is rolled back and removed; the garbage one is kept for an admin. */
        assert_true(transaction_recover(journal, fake_tree_roots(t), 0, NULL, NULL) < 0);
        type = attr(t, "sys/kernel/iommu_groups/3/type");
        override = attr(t, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        assert_string_equal(type, "DMA");
        assert_string_equal(override, "pci-stub");
        assert_int_equal(access(record, F_OK), -1);
        _cleanup_(freep) char *kept = strprintf("%s/9.json", journal), *kept2 = strprintf("%s/10.json", journal);
        assert_int_equal(access(kept, F_OK), 0);
        assert_int_equal(access(kept2, F_OK), 0);
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

static Transaction *journaled(FakeTree *t, uint64_t id, const char *operation, unsigned group) {
        Transaction *tr = transaction_new(id, operation, group);
        _cleanup_(freep) char *journal = strprintf("%s/journal", t->root);

        assert_non_null(tr);
        (void)mkdir(journal, 0700);
        tr->journal_dir = strdup(journal);
        return tr;
}

static bool journal_exists(FakeTree *t, uint64_t id) {
        _cleanup_(freep) char *path = strprintf("%s/journal/%llu.json", t->root, (unsigned long long)id);

        return access(path, F_OK) == 0;
}

/* 0000:00:03.0 bound to vfio-pci (with that override, or none when NULL). */
static void on_vfio_pci(FakeTree *t, const char *override) {
        fake_tree_unlink(t, "sys/devices/pci0000:00/0000:00:03.0/driver");
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:03.0/driver", "../../../bus/pci/drivers/vfio-pci");
        fake_tree_mkdir(t, "sys/bus/pci/drivers/vfio-pci");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:03.0/enable", "0\n"); /* no user has it open */
        if (override)
                fake_tree_write(t, "sys/devices/pci0000:00/0000:00:03.0/driver_override", override);
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ids above every record in the journal, half-written ones included; strangers do not count. */
static void test_journal_max_id(void **state) {
        _cleanup_(freep) char *journal = NULL;
        FakeTree *t = fake_tree_new();
        uint64_t max = 1;

        journal = strprintf("%s/journal", t->root);
        assert_int_equal(transaction_journal_max_id(journal, &max), 0);
        assert_int_equal(max, 0);
        fake_tree_write(t, "journal/3.json", "{}");
        fake_tree_write(t, "journal/17.json", "{}");
        fake_tree_write(t, "journal/20.json.tmp", "{");
        fake_tree_write(t, "journal/999x.json", "{}");
        fake_tree_write(t, "journal/notes.txt", "");
        assert_int_equal(transaction_journal_max_id(journal, &max), 0);
        assert_int_equal(max, 20);
        fake_tree_free(t);
}

/* A record kept for an admin is never overwritten, whatever id a new transaction has. */
static void test_never_overwrites_a_record(void **state) {
        _cleanup_(freep) char *message = NULL, *override = NULL;
        FakeTree *t = host();
        _cleanup_(transaction_freep) Transaction *tr = journaled(t, 5, "SetDomainType", 3);

        fake_tree_write(t, "journal/5.json", "kept for an admin");
        assert_int_equal(transaction_add(tr, STEP_SET_OVERRIDE, "0000:00:03.0", "none", NULL), 0);
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EEXIST);
        assert_non_null(strstr(message, "/journal/5.json exists already"));
        assert_non_null(strstr(message, "nothing was done"));
        override = attr(t, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        assert_string_equal(override, "(null)");
        {
                _cleanup_(freep) char *text = attr(t, "journal/5.json");

                assert_string_equal(text, "kept for an admin");
        }
        fake_tree_free(t);
}

/* With fixture roots no module is loaded on this machine: present under the roots is loaded,
 * missing fails saying what would have been loaded and why not. */
static void test_modules_outside_the_roots(void **state) {
        _cleanup_(freep) char *message = NULL;
        FakeTree *t = host();
        Transaction *tr;

        tr = journaled(t, 1, "PrepareGroup", 3);
        assert_int_equal(transaction_add(tr, STEP_LOAD_MODULE, NULL, "vfio_pci", NULL), 0);
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EOPNOTSUPP);
        assert_non_null(strstr(message, "'load module vfio_pci', failed: module vfio_pci would be loaded "
                                        "(sys/module/vfio_pci does not exist below the sysfs root), but iommud "
                                        "loads modules only on the machine it runs on, and its roots are not /"));
        assert_false(journal_exists(t, 1));
        transaction_free(tr);
        message = mfree_str(message);

        /* vfio-pci is spelled with '_' in sys/module. */
        fake_tree_mkdir(t, "sys/module/vfio_pci");
        tr = journaled(t, 2, "PrepareGroup", 3);
        assert_int_equal(transaction_add(tr, STEP_LOAD_MODULE, NULL, "vfio-pci", NULL), 0);
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), 0);
        transaction_free(tr);

        /* A member's original driver: registered is enough; not registered is refused. */
        tr = journaled(t, 3, "ReleaseGroup", 3);
        assert_int_equal(transaction_add(tr, STEP_LOAD_DRIVER, "0000:00:03.0", "e1000e", NULL), 0);
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), 0);
        transaction_free(tr);
        tr = journaled(t, 4, "ReleaseGroup", 3);
        assert_int_equal(transaction_add(tr, STEP_LOAD_DRIVER, "0000:00:03.0", "igb", NULL), 0);
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EOPNOTSUPP);
        assert_non_null(strstr(message, "'load the module of driver igb for 0000:00:03.0', failed: driver igb is "
                                        "not registered and the module for 0000:00:03.0 "
                                        "(pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00) would be loaded, "
                                        "but iommud loads modules only on the machine it runs on"));
        transaction_free(tr);
        fake_tree_free(t);
}

/* A kernel write that does not return (vfio-pci's unbind while a VM holds the device, on 6.1) stops
 * the transaction after the bound: no rollback, the record kept, the message exact. */
static void test_write_that_does_not_return(void **state) {
        _cleanup_(freep) char *message = NULL, *expected = NULL;
        FakeTree *t = host();
        _cleanup_(transaction_freep) Transaction *tr = journaled(t, 9, "SetDomainType", 3);
        FakeKernel *k;
        double started;

        on_vfio_pci(t, NULL);
        k = fake_kernel_start(t);
        fake_kernel_stall_unbind(k, "vfio-pci");

        tr->step_timeout_usec = 300 * 1000;
        assert_int_equal(transaction_add(tr, STEP_SET_OVERRIDE, "0000:00:03.0", "none", "vfio-pci"), 0);
        assert_int_equal(transaction_add(tr, STEP_UNBIND, "0000:00:03.0", "vfio-pci", NULL), 0);
        assert_int_equal(transaction_add(tr, STEP_WRITE_TYPE, NULL, "identity", "DMA"), 0);
        started = now_sec();
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -ETIMEDOUT);
        assert_true(now_sec() - started < 2.0);
        expected = strprintf("the kernel did not return from 'unbind 0000:00:03.0 from vfio-pci' within 300 ms; the "
                             "write is still pending; group 3 is left in state FAILED (its intent record "
                             "%s/journal/9.json is kept for an admin); now: 0000:00:03.0 on vfio-pci "
                             "(driver_override none)",
                             t->root);
        assert_string_equal(message, expected);
        assert_true(tr->left_failed);
        assert_true(journal_exists(t, 9));
        fake_kernel_stop(k);
        fake_tree_free(t);
}

/* A re-probe that binds another driver than the step expects fails at once, not after the settle
 * time, is rolled back, and says where every device is left. */
static void test_probe_binds_another_driver(void **state) {
        _cleanup_(freep) char *message = NULL, *override = NULL, *expected = NULL;
        FakeTree *t = host();
        _cleanup_(transaction_freep) Transaction *tr = journaled(t, 4, "ReleaseGroup", 3);
        FakeKernel *k;
        double started;

        /* Prepared: on vfio-pci with the override; e1000e and igb both claim the device. */
        on_vfio_pci(t, "vfio-pci\n");
        fake_tree_mkdir(t, "sys/bus/pci/drivers/igb");
        k = fake_kernel_start(t);
        fake_kernel_prefer(k, "0000:00:03.0", "igb");

        assert_int_equal(transaction_add(tr, STEP_SET_OVERRIDE, "0000:00:03.0", NULL, "vfio-pci"), 0);
        assert_int_equal(transaction_add(tr, STEP_UNBIND, "0000:00:03.0", "vfio-pci", NULL), 0);
        assert_int_equal(transaction_add(tr, STEP_PROBE, "0000:00:03.0", "e1000e", NULL), 0);
        started = now_sec();
        assert_int_equal(transaction_run(tr, fake_tree_roots(t), &message), -EBUSY);
        assert_true(now_sec() - started < 5.0); /* the settle time is 10 s */
        expected = strprintf("step 3 of 3, 'probe 0000:00:03.0 and check it binds to e1000e', failed: the kernel "
                             "bound 0000:00:03.0 to igb instead of e1000e; every step done before it was undone; "
                             "now: 0000:00:03.0 on vfio-pci (driver_override vfio-pci)");
        assert_string_equal(message, expected);
        override = attr(t, "sys/bus/pci/devices/0000:00:03.0/driver_override");
        assert_string_equal(override, "vfio-pci");
        assert_false(tr->left_failed);
        assert_false(journal_exists(t, 4));
        fake_kernel_stop(k);
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
                cmocka_unit_test(test_journal_max_id),
                cmocka_unit_test(test_never_overwrites_a_record),
                cmocka_unit_test(test_modules_outside_the_roots),
                cmocka_unit_test(test_probe_binds_another_driver),
                cmocka_unit_test(test_write_that_does_not_return),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
