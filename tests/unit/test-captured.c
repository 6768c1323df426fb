/* Unit tests on snapshots captured from real kernels (tests/fixtures/captured, made by tests/vm):
 * what the kernel showed under QEMU must come out of the inventory, with no read error. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inventory.h"
#include "macro.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

static const char *source_dir;

static Inventory *load(const char *name, HostRoots **ret_roots) {
        _cleanup_(freep) char *root = strprintf("%s/tests/fixtures/captured/%s", source_dir, name);
        Inventory *inv = NULL;

        assert_non_null(root);
        assert_int_equal(host_roots_open(root, root, root, ret_roots), 0);
        assert_int_equal(inventory_load(*ret_roots, NULL, &inv), 0);
        /* A faithful snapshot reads without a single problem. */
        assert_int_equal(inv->n_errors, 0);
        return inv;
}

static const Group *group_of(const Inventory *inv, const char *address) {
        const Device *d = inventory_find_device(inv, address);

        assert_non_null(d);
        assert_true(d->group >= 0);
        return inventory_find_group(inv, (unsigned)d->group);
}

static void test_intel_6_1(void **state) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        _cleanup_(inventory_freep) Inventory *inv = load("intel-6.1", &roots);
        const Group *bridge = group_of(inv, "0000:04:01.0"), *mf = group_of(inv, "0000:00:0b.0");

        assert_int_equal(inv->n_units, 1);
        assert_int_equal(inv->units[0].kind, UNIT_KIND_INTEL_VTD);
        /* QEMU's caching-mode=on shows in cap, and Linux then uses strict DMA domains. */
        assert_true(strv_contains(inv->units[0].features, "caching-mode"));
        assert_true(strv_contains(inv->units[0].features, "pass-through"));

        /* The PCIe-to-PCI bridge and both e1000 behind it form one group; on 6.1 it cannot change type. */
        assert_int_equal(bridge->n_devices, 3);
        assert_true(strv_contains(bridge->devices, "0000:03:00.0"));
        assert_true(strv_contains(bridge->devices, "0000:04:02.0"));
        assert_string_equal(bridge->type_raw, "DMA");
        assert_non_null(strstr(bridge->type_change.reason, "more than one device"));
        assert_false(bridge->viable);

        /* Two functions of one conventional slot share a group. */
        assert_int_equal(mf->n_devices, 2);
        assert_string_equal(mf->reserved_regions[0].type, "msi");
        assert_string_equal(mf->reserved_regions[0].start, "0x00000000fee00000");
}

static void test_amd_6_12(void **state) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        _cleanup_(inventory_freep) Inventory *inv = load("amd-6.12", &roots);
        const Device *iommu = inventory_find_device(inv, "0000:00:01.0");
        const Group *g = group_of(inv, "0000:00:0b.1");

        assert_int_equal(inv->units[0].kind, UNIT_KIND_AMD_VI);
        assert_string_equal(inv->units[0].pci_device, "0000:00:01.0");
        /* The IOMMU's own function is in no group and translated by no unit. */
        assert_non_null(iommu);
        assert_int_equal(iommu->group, -1);
        assert_null(iommu->iommu_unit);
        /* iommu=pt: identity domains, and every group carries the HyperTransport hole. */
        assert_string_equal(g->type_raw, "identity");
        assert_int_equal(g->n_reserved_regions, 2);
        assert_string_equal(g->reserved_regions[1].type, "reserved");
        assert_string_equal(g->reserved_regions[1].start, "0x000000fd00000000");
        assert_string_equal(inv->host.params.iommu, "pt");
        assert_int_equal(inv->host.cmdline_default_type, DOMAIN_TYPE_IDENTITY);
}

static void test_virtio_6_12(void **state) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        _cleanup_(inventory_freep) Inventory *inv = load("virtio-6.12", &roots);
        const Group *mf = group_of(inv, "0000:03:00.1");

        assert_int_equal(inv->units[0].kind, UNIT_KIND_VIRTIO_IOMMU);
        assert_string_equal(inv->units[0].name, "0000:00:01.0");
        /* PCIe functions without ACS behind one root port: one group, lazy (DMA-FQ) domains. */
        assert_int_equal(mf->n_devices, 2);
        assert_string_equal(mf->type_raw, "DMA-FQ");
        assert_int_equal(mf->type, DOMAIN_TYPE_DMA_FQ);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_intel_6_1),
                cmocka_unit_test(test_amd_6_12),
                cmocka_unit_test(test_virtio_6_12),
        };

        source_dir = argc > 1 ? argv[1] : ".";
        return cmocka_run_group_tests(tests, NULL, NULL);
}
