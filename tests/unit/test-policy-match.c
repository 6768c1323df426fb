/* Unit tests for policy/match.c: each [Match] key against Device values built here. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "match.h"
#include "policy-test.h"

/* An NVIDIA GPU as the inventory would describe it. */
static Device gpu(void) {
        return (Device){
                .address = "0000:01:00.0",
                .vendor_id = 0x10de,
                .device_id = 0x2204,
                .subsystem_vendor_id = 0x1458,
                .subsystem_device_id = 0x403b,
                .class_code = 0x030000,
                .driver = "nvidia",
                .group = 12,
                .numa_node = 1,
                .serial_present = true,
                .serial = 0x0123456789abcdefULL,
        };
}

/* Whether a rule with the given [Match] lines matches d. */
static bool matches(const char *match, const Device *d) {
        FakeTree *t = fake_tree_new();
        _cleanup_(freep) char *text = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        bool result;

        assert_true(asprintf(&text, "[Match]\n%s\n[Policy]\nCritical=yes\n", match) >= 0);
        p = policy_test_load(t, text, NULL);
        result = rule_matches_device(&p->rules[0], d);
        fake_tree_free(t);
        return result;
}

static void test_ids(void **state) {
        Device d = gpu();

        assert_true(matches("Vendor=10de", &d));
        assert_true(matches("Vendor=10DE", &d));
        assert_false(matches("Vendor=8086", &d));
        assert_true(matches("Device=2204", &d));
        assert_false(matches("Device=2205", &d));
        assert_true(matches("Subsystem=1458:403b", &d));
        assert_false(matches("Subsystem=1458:403c", &d));
        assert_false(matches("Subsystem=1459:403b", &d));

        /* An ID that could not be read matches nothing. */
        d.vendor_id = -1;
        assert_false(matches("Vendor=ffff", &d));
}

static void test_class_masks(void **state) {
        Device d = gpu();

        assert_true(matches("Class=03", &d));
        assert_true(matches("Class=0300", &d));
        assert_true(matches("Class=030000", &d));
        assert_true(matches("Class=0300/ff00", &d));
        assert_false(matches("Class=0302", &d));
        assert_false(matches("Class=02", &d));

        /* A 3D controller (0302) is a display controller too. */
        d.class_code = 0x030200;
        assert_true(matches("Class=03", &d));
        assert_true(matches("Class=0300/ff00", &d));
        assert_false(matches("Class=0300", &d));
        assert_true(matches("Class=0302", &d));

        /* NVMe: class 01, subclass 08, programming interface 02; any mass storage with interface 02. */
        d.class_code = 0x010802;
        assert_true(matches("Class=010002/ff00ff", &d));
        assert_false(matches("Class=010001/ff00ff", &d));

        d.class_code = -1;
        assert_false(matches("Class=00/ff", &d));
}

static void test_address_globs(void **state) {
        Device d = gpu();

        assert_true(matches("Address=0000:01:00.0", &d));
        assert_false(matches("Address=0000:01:00.1", &d));
        assert_true(matches("Address=0000:01:00.*", &d));
        assert_true(matches("Address=*:01:00.?", &d));
        assert_true(matches("Address=0000:0[0-1]:00.0", &d));
        assert_false(matches("Address=0000:02:00.*", &d));

        d.address = "0000:01:00.1";
        assert_true(matches("Address=0000:01:00.*", &d));
}

static void test_driver(void **state) {
        Device d = gpu();

        assert_true(matches("Driver=nvidia", &d));
        assert_true(matches("Driver=nouveau nvidia", &d));
        assert_false(matches("Driver=nouveau", &d));
        assert_false(matches("Driver=none", &d));

        /* "none" stands for an unbound device. */
        d.driver = NULL;
        assert_true(matches("Driver=none", &d));
        assert_true(matches("Driver=nvidia none", &d));
        assert_false(matches("Driver=nvidia", &d));
}

static void test_serial_group_numa(void **state) {
        Device d = gpu();

        assert_true(matches("Serial=01-23-45-67-89-ab-cd-ef", &d));
        assert_true(matches("Serial=01-23-45-67-89-AB-CD-EF", &d));
        assert_false(matches("Serial=01-23-45-67-89-ab-cd-ee", &d));
        assert_true(matches("Group=12", &d));
        assert_false(matches("Group=13", &d));
        assert_true(matches("NumaNode=1", &d));
        assert_false(matches("NumaNode=0", &d));

        /* No serial number, no group, no NUMA node: those keys match nothing. */
        d.serial_present = false;
        d.serial = 0;
        d.group = -1;
        d.numa_node = -1;
        assert_false(matches("Serial=00-00-00-00-00-00-00-00", &d));
        assert_false(matches("Group=0", &d));
        assert_false(matches("NumaNode=0", &d));
}

static void test_keys_and_together(void **state) {
        Device d = gpu();

        assert_true(matches("Vendor=10de\nClass=03\nDriver=nvidia\nNumaNode=1", &d));
        assert_false(matches("Vendor=10de\nClass=03\nDriver=nvidia\nNumaNode=0", &d));
        assert_false(matches("Vendor=8086\nClass=03", &d));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_class_masks),
                cmocka_unit_test(test_address_globs),
                cmocka_unit_test(test_driver),
                cmocka_unit_test(test_serial_group_numa),
                cmocka_unit_test(test_keys_and_together),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
