/* Unit tests for core/group-record.c: records left by every crash point settle as
 * docs/OPERATIONS.md says, records are compared with the host (forgotten overrides retire them,
 * other hardware leaves them alone), and records are stored durably or not at all. */
#undef NDEBUG
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "group-record.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

#define BOOT_A "11111111-2222-3333-4444-555555555555"
#define BOOT_B "99999999-8888-7777-6666-555555555555"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

/* Group 1: one Intel 8086:10d3 at 0000:00:02.0, bound to driver (NULL: none) with override. */
static FakeTree *host(const char *driver, const char *override) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        char text[64];

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, driver, 1, 0);
        fake_tree_mkdir(t, "sys/bus/pci/drivers/e1000e");
        fake_tree_mkdir(t, "sys/bus/pci/drivers/vfio-pci");
        snprintf(text, sizeof(text), "%s\n", override ?: "(null)");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/driver_override", text);
        fake_tree_mkdir(t, "state/groups");
        return t;
}

/* A record as PrepareGroup (state vfio-ready) or BlockGroup left it, pending as given. */
static void write_record(FakeTree *t, const char *state, const char *boot, const char *pending) {
        _cleanup_(freep) char *text = strprintf(
                "{\"version\":2,\"state\":\"%s\",\"group\":1,\"owner\":\"test\",\"boot_id\":\"%s\",\"pending\":%s,"
                "\"members\":[{\"address\":\"0000:00:02.0\",\"vendor_id\":32902,\"device_id\":4307,"
                "\"subsystem_vendor_id\":32902,\"subsystem_device_id\":0,\"serial\":null,\"driver\":\"e1000e\","
                "\"driver_override\":null,\"target\":\"%s\"}]}",
                state, boot, pending ?: "null", streq(state, "blocked") ? "none" : "vfio-pci");

        fake_tree_write(t, "state/groups/0000:00:02.0-7.json", text);
}

static bool record_exists(FakeTree *t) {
        _cleanup_(freep) char *path = strprintf("%s/state/groups/0000:00:02.0-7.json", t->root);

        return access(path, F_OK) == 0;
}

static char *record_text(FakeTree *t) {
        _cleanup_(freep) char *path = strprintf("%s/state/groups/0000:00:02.0-7.json", t->root);
        char *text = NULL;
        FILE *f = fopen(path, "re");
        size_t n = 0;

        assert_non_null(f);
        assert_int_not_equal(getdelim(&text, &n, 0, f), -1);
        fclose(f);
        return text;
}

typedef struct Loaded {
        Inventory *inv;
        GroupRecords *records;
} Loaded;

static void load(FakeTree *t, const char *boot, Loaded *ret) {
        _cleanup_(freep) char *dir = strprintf("%s/state/groups", t->root);

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &ret->inv), 0);
        assert_int_equal(group_records_open(dir, boot, &ret->records), 0);
}

static void unload(Loaded *l) {
        group_records_free(l->records);
        inventory_free(l->inv);
}

static JournalFate fate_value;
static uint64_t fate_asked;

static JournalFate fate(uint64_t operation, void *userdata) {
        fate_asked = operation;
        return fate_value;
}

/* Runs reconcile_all as at start, with the journal's verdict on operation 7. */
static GroupRecord *settle(FakeTree *t, const char *boot, JournalFate f, Loaded *l) {
        load(t, boot, l);
        fate_value = f;
        fate_asked = 0;
        group_records_reconcile_all(l->records, l->inv, fate, NULL);
        return group_records_find(l->records, l->inv, inventory_find_group(l->inv, 1));
}

/* One crash point: the host and the record as they were left, what recovery did with the journal,
 * and what must become of the record. */
typedef struct CrashPoint {
        const char *what;
        const char *state, *action;     /* the record: vfio-ready or blocked; acquire, release or NULL
                                         * (settled) */
        const char *driver, *override;  /* the host */
        const char *boot;               /* the boot at restart (the record's is BOOT_A) */
        JournalFate fate;
        bool kept;                      /* the record is still there */
        RecordPending pending;          /* ... and is so */
} CrashPoint;

/* Every crash point of the four operations, and settled records after a reboot or a re-plug. The record is stored (pending) before the journal is
 * written, and settled or removed after the journal was removed. */
static const CrashPoint crash_points[] = {
        { "prepare: crash before the journal was written: host as before", "vfio-ready", "acquire", "e1000e", NULL,
          BOOT_A, JOURNAL_ABSENT, false, 0 },
        { "prepare: rolled back from the journal at start", "vfio-ready", "acquire", "e1000e", NULL, BOOT_A,
          JOURNAL_ROLLED_BACK, false, 0 },
        { "prepare: crash after the last step removed the journal", "vfio-ready", "acquire", "vfio-pci", "vfio-pci",
          BOOT_A, JOURNAL_ABSENT, true, RECORD_SETTLED },
        { "prepare: the rollback at start failed: kept for an admin", "vfio-ready", "acquire", "vfio-pci",
          "vfio-pci", BOOT_A, JOURNAL_KEPT, true, RECORD_ACQUIRING },
        { "prepare: interrupted by a reboot", "vfio-ready", "acquire", "vfio-pci", "vfio-pci", BOOT_B,
          JOURNAL_ABSENT, false, 0 },
        { "block: crash after the last step", "blocked", "acquire", NULL, "none", BOOT_A, JOURNAL_ABSENT, true,
          RECORD_SETTLED },
        { "release: rolled back at start: held as before", "vfio-ready", "release", "vfio-pci", "vfio-pci", BOOT_A,
          JOURNAL_ROLLED_BACK, true, RECORD_SETTLED },
        { "release: crash before the journal was written", "vfio-ready", "release", "vfio-pci", "vfio-pci", BOOT_A,
          JOURNAL_ABSENT, true, RECORD_SETTLED },
        { "release: crash after the last step, before the record went", "vfio-ready", "release", "e1000e", NULL,
          BOOT_A, JOURNAL_ABSENT, false, 0 },
        { "release: the rollback at start failed", "vfio-ready", "release", NULL, NULL, BOOT_A, JOURNAL_KEPT, true,
          RECORD_RELEASING },
        { "unblock: crash before the journal was written", "blocked", "release", NULL, "none", BOOT_A,
          JOURNAL_ABSENT, true, RECORD_SETTLED },
        { "unblock: crash after the last step", "blocked", "release", "e1000e", NULL, BOOT_A, JOURNAL_ABSENT, false,
          0 },
        /* Settled records, compared with the host. */
        { "prepared, the same boot, the override still set: held", "vfio-ready", NULL, "vfio-pci", "vfio-pci",
          BOOT_A, JOURNAL_ABSENT, true, RECORD_SETTLED },
        { "prepared, the same boot, unplugged and back (override gone): retired", "vfio-ready", NULL, NULL, NULL,
          BOOT_A, JOURNAL_ABSENT, false, 0 },
        { "prepared, the boot unknown: the override alone decides", "vfio-ready", NULL, "vfio-pci", "vfio-pci", NULL,
          JOURNAL_ABSENT, true, RECORD_SETTLED },
        { "prepared, rebooted: retired, even with an override someone set again", "vfio-ready", NULL, "vfio-pci",
          "vfio-pci", BOOT_B, JOURNAL_ABSENT, false, 0 },
        { "blocked, rebooted: kept, to be blocked again", "blocked", NULL, "e1000e", NULL, BOOT_B, JOURNAL_ABSENT,
          true, RECORD_SETTLED },
};

static void test_crash_points(void **state) {
        FOREACH_ARRAY(c, crash_points, ELEMENTSOF(crash_points)) {
                _cleanup_(freep) char *pending =
                        c->action ? strprintf("{\"operation\":7,\"action\":\"%s\"}", c->action) : NULL;
                FakeTree *t = host(c->driver, c->override);
                GroupRecord *r;
                Loaded l = {};

                print_message("%s\n", c->what);
                write_record(t, c->state, BOOT_A, pending);
                r = settle(t, c->boot, c->fate, &l);
                assert_int_equal(record_exists(t), c->kept);
                assert_int_equal(r != NULL, c->kept);
                if (r) {
                        _cleanup_(freep) char *text = record_text(t);

                        assert_int_equal(r->pending, c->pending);
                        /* Settled on disk too, so that the next start does not judge it again. */
                        assert_int_equal(strstr(text, "\"pending\":null") != NULL, c->pending == RECORD_SETTLED);
                }
                if (c->action && c->boot && streq(c->boot, BOOT_A))
                        assert_int_equal(fate_asked, 7);
                unload(&l);
                fake_tree_free(t);
        }
}

/* A prepared group after a reboot: the kernel forgot the override and bound the host driver. The
 * record is retired (reported, kept as a finding), never acted on. */
static void test_forgotten_after_reboot(void **state) {
        _cleanup_(strv_freep) char **findings = NULL;
        FakeTree *t = host("e1000e", NULL);
        Loaded l = {};

        write_record(t, "vfio-ready", BOOT_A, NULL);
        assert_null(settle(t, BOOT_B, JOURNAL_ABSENT, &l));
        assert_false(record_exists(t));
        assert_int_equal(group_records_findings(l.records, l.inv, inventory_find_group(l.inv, 1), &findings), 0);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "the record of group 1 (vfio-ready, owner test) was retired"));
        assert_non_null(strstr(findings[0], "earlier boot (boot id " BOOT_A ", now " BOOT_B ")"));
        assert_non_null(strstr(findings[0], "now: 0000:00:02.0 on e1000e (no driver_override)"));
        unload(&l);
        fake_tree_free(t);

}

/* Other hardware at the recorded address: reported, left alone (kept, matched to no group). */
static void test_hardware_changed(void **state) {
        _cleanup_(strv_freep) char **findings = NULL;
        FakeTree *t = host("e1000e", NULL);
        const Group *g;
        Loaded l = {};

        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/device", "0x10d4\n");
        write_record(t, "vfio-ready", BOOT_A, NULL);
        assert_null(settle(t, BOOT_B, JOURNAL_ABSENT, &l));
        assert_true(record_exists(t)); /* not retired: it describes something else */
        g = inventory_find_group(l.inv, 1);
        assert_int_equal(group_records_findings(l.records, l.inv, g, &findings), 0);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "was made for other hardware at 0000:00:02.0"));
        assert_non_null(strstr(findings[0], "was 8086:10d3 (subsystem 8086:0000, no serial), is 8086:10d4"));
        assert_null(group_records_find_blocked_member(l.records, inventory_find_device(l.inv, "0000:00:02.0")));
        unload(&l);
        fake_tree_free(t);

        /* A blocked record is re-applied only onto the hardware it was made for: the subsystem
         * counts too. */
        t = host("e1000e", NULL);
        write_record(t, "blocked", BOOT_A, NULL);
        load(t, BOOT_B, &l);
        assert_non_null(group_records_find_blocked_member(l.records, inventory_find_device(l.inv, "0000:00:02.0")));
        unload(&l);
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/subsystem_device", "0x1234\n");
        load(t, BOOT_B, &l);
        assert_null(group_records_find_blocked_member(l.records, inventory_find_device(l.inv, "0000:00:02.0")));
        unload(&l);
        fake_tree_free(t);
}

/* 0000:00:02.0 as a PCIe device with 4 KiB of config space and, when serial is not 0, a Device Serial
 * Number capability holding it. */
static void write_serial_config(FakeTree *t, uint64_t serial) {
        uint8_t config[4096] = { 0x86, 0x80, 0xd3, 0x10 };

        config[0x06] = 0x10; /* status: capability list */
        config[0x34] = 0x40;
        config[0x40] = 0x10; /* PCI Express, end of list */
        config[0x42] = 0x02;
        if (serial) {
                config[0x100] = 0x03; /* Device Serial Number, version 1, last */
                config[0x102] = 0x01;
                for (int i = 0; i < 8; i++)
                        config[0x104 + i] = (uint8_t)(serial >> (8 * i));
        }
        fake_tree_write_config(t, "0000:00:02.0", NULL, config, sizeof(config));
}

/* The serial decides between two cards of one model at one address, when it can be read. */
static void test_serial(void **state) {
        static const struct {
                uint64_t serial; /* 0: no DSN capability */
                bool extended;   /* 4 KiB of config space readable (else 64 bytes) */
                bool same;
        } cases[] = {
                { 0x0011223344556677, true, true },
                { 0x0011223344556678, true, false },
                { 0, true, false },
                { 0, false, true }, /* extended config space unreadable now: the IDs decide */
        };

        FOREACH_ARRAY(c, cases, ELEMENTSOF(cases)) {
                _cleanup_(freep) char *record = NULL;
                FakeTree *t = host("vfio-pci", "vfio-pci");
                Loaded l = {};

                record = strprintf("{\"version\":2,\"state\":\"vfio-ready\",\"group\":1,\"boot_id\":\"%s\","
                                   "\"pending\":null,\"members\":[{\"address\":\"0000:00:02.0\",\"vendor_id\":32902,"
                                   "\"device_id\":4307,\"subsystem_vendor_id\":32902,\"subsystem_device_id\":0,"
                                   "\"serial\":\"0011223344556677\",\"driver\":\"e1000e\",\"driver_override\":null,"
                                   "\"target\":\"vfio-pci\"}]}",
                                   BOOT_A);
                fake_tree_write(t, "state/groups/0000:00:02.0-7.json", record);
                if (c->extended)
                        write_serial_config(t, c->serial);
                assert_int_equal(settle(t, BOOT_A, JOURNAL_ABSENT, &l) != NULL, c->same);
                assert_true(record_exists(t)); /* held, or left alone: never removed */
                unload(&l);
                fake_tree_free(t);
        }
}

/* A record that cannot be written is not kept: the caller is told which file and why. */
static void test_store_fails(void **state) {
        _cleanup_(freep) char *message = NULL, *dir = NULL;
        _cleanup_(group_record_freep) GroupRecord *r = NULL;
        FakeTree *t = host("e1000e", NULL);
        Loaded l = {};

        load(t, BOOT_A, &l);
        assert_int_equal(group_record_from_group(l.inv, inventory_find_group(l.inv, 1), GROUP_VFIO_READY, "test",
                                                 "vfio-pci", &r),
                         0);
        fake_tree_make_read_only(t, "state/groups");
        assert_true(group_records_store(l.records, r, 42, &message) < 0);
        dir = strprintf("cannot store the record of group 1 in %s/state/groups/0000:00:02.0-42.json: ", t->root);
        assert_non_null(strstr(message, dir));
        assert_non_null(strstr(message, "; nothing was changed"));
        assert_null(group_records_find(l.records, l.inv, inventory_find_group(l.inv, 1)));
        fake_tree_make_writable(t, "state/groups");
        unload(&l);
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crash_points),
                cmocka_unit_test(test_forgotten_after_reboot),
                cmocka_unit_test(test_hardware_changed),
                cmocka_unit_test(test_serial),
                cmocka_unit_test(test_store_fails),
        };

        fake_tree_private_mounts();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
