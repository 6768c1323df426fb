/* Unit tests for groups.c: viability and permitted type changes by kernel version, reserved regions. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "inventory.h"
#include "macro.h"
#include "strv.h"

static Inventory *load(FakeTree *t) {
        Inventory *inv = NULL;

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &inv), 0);
        return inv;
}

static void assert_allowed(const Group *g, const char *const *expected) {
        size_t n = 0;

        for (; expected[n]; n++)
                assert_true(strv_contains(g->type_change.allowed, expected[n]));
        assert_int_equal(strv_length(g->type_change.allowed), n);
}

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

static void test_single_device_6_1(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *bound, *unbound;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "e1000e", 1, 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 2, 0);
        inv = load(t);

        bound = inventory_find_group(inv, 1);
        assert_non_null(bound);
        assert_true(bound->type_change.writable);
        /* Bound: only the in-place DMA -> DMA-FQ switch. */
        assert_allowed(bound, (const char *const[]){ "DMA-FQ", NULL });
        assert_non_null(strstr(bound->type_change.reason, "0000:00:02.0 is bound to e1000e"));

        unbound = inventory_find_group(inv, 2);
        assert_allowed(unbound, (const char *const[]){ "identity", "DMA", "DMA-FQ", "auto", NULL });
        assert_null(unbound->type_change.reason);
        assert_true(unbound->viable);
        fake_tree_free(t);
}

static void test_vfio_bound_differs_by_version(void **state) {
        const char *releases[] = { "6.1.0-57-amd64", "6.12.117+deb12-amd64" };

        for (size_t i = 0; i < ELEMENTSOF(releases); i++) {
                FakeTree *t = fake_tree_new_host(releases[i]);
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_group(t, 4, "DMA-FQ\n", msi);
                fake_tree_add_pci_device(t, "0000:00:04.0", NULL, "vfio-pci", 4, 0);
                inv = load(t);
                g = inventory_find_group(inv, 4);
                assert_true(g->viable);
                if (i == 0) {
                        /* 6.1 refuses any bound driver, vfio-pci included, and DMA-FQ is no shortcut. */
                        assert_allowed(g, (const char *const[]){ NULL });
                        assert_non_null(strstr(g->type_change.reason, "vfio-pci"));
                } else
                        assert_allowed(g, (const char *const[]){ "identity", "DMA", "DMA-FQ", "auto", NULL });
                fake_tree_free(t);
        }
}

static void test_multi_device_group(void **state) {
        const char *releases[] = { "6.1.0-57-amd64", "6.12.117+deb12-amd64" };

        for (size_t i = 0; i < ELEMENTSOF(releases); i++) {
                FakeTree *t = fake_tree_new_host(releases[i]);
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_group(t, 7, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:00:05.0", NULL, NULL, 7, 1);
                fake_tree_add_pci_device(t, "0000:01:01.0", "0000:00:05.0", NULL, 7, 0);
                fake_tree_add_pci_device(t, "0000:01:02.0", "0000:00:05.0", NULL, 7, 0);
                inv = load(t);
                g = inventory_find_group(inv, 7);
                assert_int_equal(g->n_devices, 3);
                assert_string_equal(inventory_find_device(inv, "0000:01:02.0")->parent, "0000:00:05.0");
                if (i == 0) {
                        assert_allowed(g, (const char *const[]){ NULL });
                        assert_non_null(strstr(g->type_change.reason, "more than one device"));
                } else
                        assert_allowed(g, (const char *const[]){ "identity", "DMA", "DMA-FQ", "auto", NULL });
                assert_int_equal(g->errors.n, 0);
                fake_tree_free(t);
        }
}

static void test_multi_device_bound_6_12(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *g;

        fake_tree_add_group(t, 3, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:0b.0", NULL, "e1000", 3, 0);
        fake_tree_add_pci_device(t, "0000:00:0b.1", NULL, NULL, 3, 0);
        inv = load(t);
        g = inventory_find_group(inv, 3);
        assert_allowed(g, (const char *const[]){ "DMA-FQ", NULL });
        assert_non_null(strstr(g->type_change.reason, "0000:00:0b.0 is bound to e1000"));
        assert_false(g->viable);
        assert_int_equal(g->n_blockers, 1);
        assert_string_equal(g->blockers[0].device, "0000:00:0b.0");
        assert_string_equal(g->blockers[0].driver, "e1000");
        assert_non_null(strstr(g->blockers[0].reason, "group 3 is not viable"));
        fake_tree_free(t);
}

static void test_read_only_before_5_11(void **state) {
        FakeTree *t = fake_tree_new_host("5.10.0-30-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *g;

        fake_tree_add_group(t, 0, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
        inv = load(t);
        g = inventory_find_group(inv, 0);
        assert_false(g->type_change.writable);
        assert_allowed(g, (const char *const[]){ NULL });
        assert_non_null(strstr(g->type_change.reason, "read-only"));
        fake_tree_free(t);
}

static void test_viability_rules(void **state) {
        const char *releases[] = { "5.10.0-30-amd64", "6.1.0-57-amd64" };

        for (size_t i = 0; i < ELEMENTSOF(releases); i++) {
                FakeTree *t = fake_tree_new_host(releases[i]);
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_group(t, 5, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:00:1c.0", NULL, "pcieport", 5, 1);
                fake_tree_add_pci_device(t, "0000:00:1d.0", NULL, "shpchp", 5, 1);
                fake_tree_add_pci_device(t, "0000:02:00.0", "0000:00:1c.0", "vfio-pci", 5, 0);
                fake_tree_add_pci_device(t, "0000:02:00.1", "0000:00:1c.0", "pci-stub", 5, 0);
                fake_tree_add_pci_device(t, "0000:02:00.2", "0000:00:1c.0", "mlx5_vfio_pci", 5, 0);
                inv = load(t);
                g = inventory_find_group(inv, 5);
                if (i == 0)
                        /* Before 5.19 any driver may sit on a bridge. */
                        assert_true(g->viable);
                else {
                        assert_false(g->viable);
                        assert_int_equal(g->n_blockers, 1);
                        assert_string_equal(g->blockers[0].driver, "shpchp");
                }
                assert_true(inventory_find_device(inv, "0000:02:00.2")->vfio_bound);
                assert_false(inventory_find_device(inv, "0000:02:00.1")->vfio_bound);
                fake_tree_free(t);
        }
}

static void test_reserved_regions(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *g;

        fake_tree_add_group(t, 9, "identity\n",
                  "0x0000000000000000 0x0000000000ffffff direct-relaxable\n"
                  "0x00000000fee00000 0x00000000feefffff msi\n"
                  "garbage here\n"
                  "0x0000000000002000 0x0000000000001000 direct\n"
                  "0x000000fd00000000 0x000000ffffffffff sw-msi\n"
                  "0x000000fd00000000 0x000000ffffffffff reserved\n");
        fake_tree_add_pci_device(t, "0000:00:1f.0", NULL, NULL, 9, 0);
        inv = load(t);
        g = inventory_find_group(inv, 9);
        assert_int_equal(g->type, DOMAIN_TYPE_IDENTITY);
        assert_int_equal(g->n_reserved_regions, 3);
        assert_string_equal(g->reserved_regions[0].start, "0x0000000000000000");
        assert_string_equal(g->reserved_regions[0].end, "0x0000000000ffffff");
        assert_string_equal(g->reserved_regions[0].type, "direct-relaxable");
        assert_true(g->reserved_regions[2].end_addr == 0xffffffffffULL);
        /* The garbage line, the inverted range and the unknown type are each reported. */
        assert_int_equal(g->errors.n, 3);
        assert_non_null(strstr(g->errors.items[0].message, "line 3"));
        assert_non_null(strstr(g->errors.items[2].message, "unknown region type"));
        fake_tree_free(t);
}

static void test_inconsistent_membership(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *g;

        fake_tree_add_group(t, 1, "bogus\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 1, 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        /* The group claims a device whose own link names group 1, and one that does not exist. */
        fake_tree_symlink(t, "sys/kernel/iommu_groups/2/devices/0000:00:02.0",
                          "../../../../devices/pci0000:00/0000:00:02.0");
        fake_tree_symlink(t, "sys/kernel/iommu_groups/2/devices/0000:00:09.0",
                          "../../../../devices/pci0000:00/0000:00:09.0");
        inv = load(t);

        g = inventory_find_group(inv, 1);
        assert_string_equal(g->type_raw, "bogus");
        assert_int_equal(g->type, DOMAIN_TYPE_UNKNOWN);
        assert_false(g->type_change.writable);
        assert_int_equal(g->errors.n, 1);

        g = inventory_find_group(inv, 2);
        assert_int_equal(g->errors.n, 2);
        assert_non_null(strstr(g->errors.items[0].message, "links to group 1"));
        assert_non_null(strstr(g->errors.items[1].message, "not a known PCI device"));
        fake_tree_free(t);
}

static void test_groups_sorted_numerically(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;

        fake_tree_add_group(t, 10, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:0a.0", NULL, NULL, 10, 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 2, 0);
        inv = load(t);
        assert_int_equal(inv->n_groups, 2);
        assert_int_equal(inv->groups[0].id, 2);
        assert_int_equal(inv->groups[1].id, 10);
        assert_non_null(inventory_find_group(inv, 10));
        assert_null(inventory_find_group(inv, 3));
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_single_device_6_1),
                cmocka_unit_test(test_vfio_bound_differs_by_version),
                cmocka_unit_test(test_multi_device_group),
                cmocka_unit_test(test_multi_device_bound_6_12),
                cmocka_unit_test(test_read_only_before_5_11),
                cmocka_unit_test(test_viability_rules),
                cmocka_unit_test(test_reserved_regions),
                cmocka_unit_test(test_inconsistent_membership),
                cmocka_unit_test(test_groups_sorted_numerically),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
