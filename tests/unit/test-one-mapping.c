/* `iommud --dump` and `iommuctl --json` share one JSON mapping: the dump must print every group,
 * device, unit and the host through proto/proto-json.c's functions, which iommuctl calls too. The
 * linker wraps those functions here (-Wl,--wrap=...), so a dump that built its JSON any other way
 * would not be counted and this test fails; and each item the dump prints must be exactly what the
 * mapping makes of the API's message for it. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fake-tree.h"
#include "inventory.h"
#include "macro.h"
#include "proto-json.h"
#include "svc-convert.h"
#include "svc-dump.h"

json_object *__real_proto_group_to_json(const Iommud__V1__Group *g);
json_object *__real_proto_device_to_json(const Iommud__V1__Device *d);
json_object *__real_proto_unit_to_json(const Iommud__V1__Unit *u);
json_object *__real_proto_host_info_to_json(const Iommud__V1__HostInfo *h);
json_object *__wrap_proto_group_to_json(const Iommud__V1__Group *g);
json_object *__wrap_proto_device_to_json(const Iommud__V1__Device *d);
json_object *__wrap_proto_unit_to_json(const Iommud__V1__Unit *u);
json_object *__wrap_proto_host_info_to_json(const Iommud__V1__HostInfo *h);

static unsigned n_groups, n_devices, n_units, n_hosts;

json_object *__wrap_proto_group_to_json(const Iommud__V1__Group *g) {
        n_groups++;
        return __real_proto_group_to_json(g);
}

json_object *__wrap_proto_device_to_json(const Iommud__V1__Device *d) {
        n_devices++;
        return __real_proto_device_to_json(d);
}

json_object *__wrap_proto_unit_to_json(const Iommud__V1__Unit *u) {
        n_units++;
        return __real_proto_unit_to_json(u);
}

json_object *__wrap_proto_host_info_to_json(const Iommud__V1__HostInfo *h) {
        n_hosts++;
        return __real_proto_host_info_to_json(h);
}

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

static FakeTree *host(void) {
        FakeTree *t = fake_tree_new_host("6.12.0-1-amd64");

        fake_tree_add_intel_unit(t, "dmar0", "d2008c40660462", "f050da");
        fake_tree_add_group(t, 0, "DMA-FQ\n", msi);
        fake_tree_add_group(t, 1, "identity\n", msi);
        fake_tree_add_group(t, 2, "DMA\n", msi); /* the kernel shows it without members */
        fake_tree_mkdir(t, "sys/kernel/iommu_groups/2/devices");
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "i915", 0, 0);
        fake_tree_add_pci_device(t, "0000:00:1f.0", NULL, NULL, 1, 0);
        fake_tree_add_pci_device(t, "0000:00:1f.3", NULL, "snd_hda_intel", 1, 0);
        fake_tree_link_unit(t, "0000:00:02.0", NULL, "dmar0");
        return t;
}

static char *dump(const Inventory *inv) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(inventory_dump(inv, f, true), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_dump_calls_the_mapping(void **state) {
        FakeTree *t = host();
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        _cleanup_(freep) char *text = NULL;

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &inv), 0);
        assert_int_equal(inv->n_groups, 3);
        n_groups = n_devices = n_units = n_hosts = 0;
        text = dump(inv);
        assert_int_equal(n_groups, inv->n_groups);
        assert_int_equal(n_devices, inv->n_devices);
        assert_int_equal(n_units, inv->n_units);
        assert_int_equal(n_hosts, 1);
        fake_tree_free(t);
}

/* Each item of the dump is the mapping of its message, as iommuctl prints it from an answer. */
static void test_dump_items_are_the_mapping(void **state) {
        FakeTree *t = host();
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        _cleanup_(freep) char *text = NULL;
        json_object *o, *groups, *devices;

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &inv), 0);
        text = dump(inv);
        o = json_tokener_parse(text);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "groups", &groups));
        assert_true(json_object_object_get_ex(o, "devices", &devices));
        assert_int_equal(json_object_array_length(groups), inv->n_groups);
        for (size_t i = 0; i < inv->n_groups; i++) {
                ProtoArena a = {};
                json_object *mapped = __real_proto_group_to_json(group_to_proto(&a, inv, &inv->groups[i], false));

                assert_true(json_object_equal(mapped, json_object_array_get_idx(groups, i)));
                json_object_put(mapped);
                proto_arena_done(&a);
        }
        for (size_t i = 0; i < inv->n_devices; i++) {
                ProtoArena a = {};
                json_object *mapped = __real_proto_device_to_json(device_to_proto(&a, &inv->devices[i]));

                assert_true(json_object_equal(mapped, json_object_array_get_idx(devices, i)));
                json_object_put(mapped);
                proto_arena_done(&a);
        }
        /* The kernel's empty group is shown, marked. */
        {
                json_object *g2 = json_object_array_get_idx(groups, 2), *empty;

                assert_true(json_object_object_get_ex(g2, "empty", &empty));
                assert_true(json_object_get_boolean(empty));
        }
        json_object_put(o);
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dump_calls_the_mapping),
                cmocka_unit_test(test_dump_items_are_the_mapping),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
