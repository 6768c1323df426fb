/* Unit tests for units.c: unit kinds, parent PCI functions, register decoding on observed QEMU values. */
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
#include "strv.h"

static const HostInfo host_6_1 = {.kernel_version_known = true, .kernel_major = 6, .kernel_minor = 1};
static const HostInfo host_6_12 = {.kernel_version_known = true, .kernel_major = 6, .kernel_minor = 12};
static const HostInfo host_5_10 = {.kernel_version_known = true, .kernel_major = 5, .kernel_minor = 10};
static const HostInfo host_unknown = {.kernel_version_known = false};

static void load(FakeTree *t, const HostInfo *host, Unit **units, size_t *n) {
        assert_int_equal(units_load(fake_tree_roots(t), host, units, n), 0);
}

static bool has_error(const Unit *u, const char *file) {
        for (size_t i = 0; i < u->errors.n; i++)
                if (strcmp(u->errors.items[i].file, file) == 0)
                        return true;
        return false;
}

static void test_kind_strings(void **state) {
        assert_string_equal(unit_kind_to_string(UNIT_KIND_INTEL_VTD), "intel-vtd");
        assert_string_equal(unit_kind_to_string(UNIT_KIND_AMD_VI), "amd-vi");
        assert_string_equal(unit_kind_to_string(UNIT_KIND_VIRTIO_IOMMU), "virtio-iommu");
        assert_string_equal(unit_kind_to_string(UNIT_KIND_ARM_SMMU_V3), "arm-smmu-v3");
        assert_string_equal(unit_kind_to_string(UNIT_KIND_ARM_SMMU), "arm-smmu");
        assert_string_equal(unit_kind_to_string(UNIT_KIND_OTHER), "other");
        assert_null(unit_kind_to_string(_UNIT_KIND_MAX));
}

static void test_no_class_dir(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units = (Unit *)0x1;
        size_t n = 99;

        load(t, &host_6_1, &units, &n);
        assert_null(units);
        assert_int_equal(n, 0);
        units_free(NULL, 0);
        fake_tree_free(t);
}

static void test_intel(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n;

        /* caching-mode=on; dmar1 is QEMU with pt=off; dmar2 is x-scalable-mode=on. */
        fake_tree_add_intel_unit(t, "dmar0", "d2008c22260286\n", "f00f4a\n");
        fake_tree_add_intel_unit(t, "dmar1", "d2008c22260206\n", "f00f0a\n");
        fake_tree_add_intel_unit(t, "dmar2", "d2008c22260206\n", "480080f00f4a\n");
        fake_tree_symlink(t, "sys/devices/virtual/iommu/dmar0/devices/0000:00:1f.0",
                          "../../../../pci0000:00/0000:00:1f.0");
        fake_tree_symlink(t, "sys/devices/virtual/iommu/dmar0/devices/0000:00:02.0",
                          "../../../../pci0000:00/0000:00:02.0");
        load(t, &host_6_1, &units, &n);
        assert_int_equal(n, 3);

        assert_string_equal(units[0].name, "dmar0");
        assert_int_equal(units[0].kind, UNIT_KIND_INTEL_VTD);
        assert_null(units[0].pci_device);
        assert_string_equal(units[0].intel_cap, "d2008c22260286");
        assert_string_equal(units[0].intel_ecap, "f00f4a");
        assert_string_equal(units[0].intel_version, "1:0");
        assert_string_equal(units[0].intel_address, "fed90000");
        assert_true(strv_contains(units[0].features, "caching-mode"));
        assert_true(strv_contains(units[0].features, "pass-through"));
        assert_true(strv_contains(units[0].features, "page-selective-invalidation"));
        assert_true(strv_contains(units[0].features, "second-level-2m-pages"));
        assert_true(strv_contains(units[0].features, "second-level-1g-pages"));
        assert_true(strv_contains(units[0].features, "queued-invalidation"));
        assert_true(strv_contains(units[0].features, "interrupt-remapping"));
        assert_true(strv_contains(units[0].features_absent, "scalable-mode"));
        assert_true(strv_contains(units[0].features_absent, "device-tlb"));
        assert_true(strv_contains(units[0].features_absent, "nested-translation"));
        assert_true(strv_contains(units[0].features_absent, "pasid"));
        assert_int_equal(units[0].n_devices, 2);
        assert_string_equal(units[0].devices[0], "0000:00:02.0");
        assert_string_equal(units[0].devices[1], "0000:00:1f.0");
        assert_null(units[0].devices[2]);
        assert_int_equal(units[0].errors.n, 0);

        assert_true(strv_contains(units[1].features_absent, "caching-mode"));
        assert_true(strv_contains(units[1].features_absent, "pass-through"));
        assert_false(strv_contains(units[1].features, "pass-through"));
        /* No devices/ directory at all reads as none. */
        assert_int_equal(units[1].n_devices, 0);
        assert_non_null(units[1].devices);

        assert_true(strv_contains(units[2].features, "scalable-mode"));
        assert_true(strv_contains(units[2].features, "second-level-translation"));
        assert_true(strv_contains(units[2].features, "pass-through"));
        assert_true(strv_contains(units[2].features_absent, "first-level-translation"));
        assert_true(strv_contains(units[2].features_absent, "pasid"));

        units_free(units, n);
        fake_tree_free(t);
}

static void test_intel_garbage(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n;

        fake_tree_add_intel_unit(t, "dmar0", "d2008c22260286\n", "zz\n");
        fake_tree_unlink(t, "sys/devices/virtual/iommu/dmar0/intel-iommu/version");
        load(t, &host_6_1, &units, &n);
        assert_int_equal(n, 1);
        assert_int_equal(units[0].kind, UNIT_KIND_INTEL_VTD);
        /* The garbage register is kept raw and reported; its features are neither present nor absent. */
        assert_string_equal(units[0].intel_ecap, "zz");
        assert_true(has_error(&units[0], "sys/class/iommu/dmar0/intel-iommu/ecap"));
        assert_false(strv_contains(units[0].features, "pass-through"));
        assert_false(strv_contains(units[0].features_absent, "pass-through"));
        assert_true(strv_contains(units[0].features, "caching-mode"));
        assert_null(units[0].intel_version);
        assert_true(has_error(&units[0], "sys/class/iommu/dmar0/intel-iommu/version"));
        assert_int_equal(units[0].errors.n, 2);
        units_free(units, n);
        fake_tree_free(t);
}

static const char *const efr_29d3_present[] = {"PreFSup", "PPRSup", "GTSup", "IASup", "GASup", "HESup"};
static const char *const efr_29d3_absent[] = {"XTSup", "NXSup", "PCSup", "GAMSup", "GIoSup", "SNPSup"};

static void assert_amd_29d3(const Unit *u) {
        assert_int_equal(u->kind, UNIT_KIND_AMD_VI);
        assert_string_equal(u->pci_device, "0000:00:00.2");
        assert_string_equal(u->amd_cap, "1f03000f");
        for (size_t i = 0; i < sizeof(efr_29d3_present) / sizeof(efr_29d3_present[0]); i++)
                assert_true(strv_contains(u->features, efr_29d3_present[i]));
        for (size_t i = 0; i < sizeof(efr_29d3_absent) / sizeof(efr_29d3_absent[0]); i++)
                assert_true(strv_contains(u->features_absent, efr_29d3_absent[i]));
        /* Capability header: NpCache is why the kernel goes strict under QEMU. */
        assert_true(strv_contains(u->features, "NpCache"));
        assert_true(strv_contains(u->features, "EFRSup"));
        assert_int_equal(u->errors.n, 0);
}

/* Loads one AMD unit with the given features text and kernel, returning its feature lists joined. */
static char *amd_features(const char *text, const HostInfo *host, size_t *ret_errors) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n, len = 0;
        char *joined = NULL;
        FILE *f;

        fake_tree_add_amd_unit(t, text);
        load(t, host, &units, &n);
        assert_int_equal(n, 1);
        f = open_memstream(&joined, &len);
        assert_non_null(f);
        for (char **p = units[0].features; p && *p; p++)
                fprintf(f, "+%s ", *p);
        for (char **p = units[0].features_absent; p && *p; p++)
                fprintf(f, "-%s ", *p);
        fclose(f);
        if (ret_errors)
                *ret_errors = units[0].errors.n;
        else
                assert_amd_29d3(&units[0]);
        units_free(units, n);
        fake_tree_free(t);
        return joined;
}

static void test_amd_field_order(void **state) {
        char *v5_10, *v6_1, *v6_12;
        size_t errors;

        /* 5.10: EFR alone; 6.1: "EFR2:EFR"; 6.12: "EFR:EFR2". All are the same QEMU unit. */
        v5_10 = amd_features("29d3\n", &host_5_10, NULL);
        v6_1 = amd_features("0:29d3\n", &host_6_1, NULL);
        v6_12 = amd_features("29d3:0\n", &host_6_12, NULL);
        assert_string_equal(v6_1, v6_12);
        assert_string_equal(v5_10, v6_12);
        free(v5_10);
        free(v6_1);

        /* Read with the wrong order the EFR would be 0: the version decides. */
        v6_1 = amd_features("29d3:0\n", &host_6_1, &errors);
        assert_int_equal(errors, 0);
        assert_string_not_equal(v6_1, v6_12);
        free(v6_1);
        free(v6_12);
}

static void test_amd_unknown_version(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n;

        fake_tree_add_amd_unit(t, "0:29d3\n");
        load(t, &host_unknown, &units, &n);
        assert_int_equal(n, 1);
        assert_true(has_error(&units[0], "sys/class/iommu/ivhd0/amd-iommu/features"));
        /* EFR features are not guessed; the capability header still decodes. */
        assert_false(strv_contains(units[0].features, "GTSup"));
        assert_false(strv_contains(units[0].features_absent, "GTSup"));
        assert_true(strv_contains(units[0].features, "NpCache"));
        units_free(units, n);

        /* A NULL host is an unknown version too; one field needs no version. */
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/features", "29d3\n");
        load(t, NULL, &units, &n);
        assert_amd_29d3(&units[0]);
        units_free(units, n);
        fake_tree_free(t);
}

static void test_amd_garbage(void **state) {
        static const char *const bad[] = {"29d3:\n", ":0\n", "0:29d3:1\n", "xyz\n", "\n"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                FakeTree *t = fake_tree_new();
                Unit *units;
                size_t n;

                fake_tree_add_amd_unit(t, bad[i]);
                load(t, &host_6_12, &units, &n);
                assert_int_equal(n, 1);
                assert_true(has_error(&units[0], "sys/class/iommu/ivhd0/amd-iommu/features"));
                assert_false(strv_contains(units[0].features, "GTSup"));
                assert_false(strv_contains(units[0].features_absent, "GTSup"));
                units_free(units, n);
                fake_tree_free(t);
        }
}

static void test_virtio(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n;

        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:01.0/virtio0/iommu/0000:00:01.0");
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:01.0/virtio0/iommu/0000:00:01.0/device",
                          "../../../virtio0");
        fake_tree_symlink(
                t, "sys/devices/pci0000:00/0000:00:01.0/virtio0/iommu/0000:00:01.0/devices/0000:00:03.0",
                "../../../../../0000:00:03.0");
        fake_tree_symlink(t, "sys/class/iommu/0000:00:01.0",
                          "../../devices/pci0000:00/0000:00:01.0/virtio0/iommu/0000:00:01.0");
        load(t, &host_6_12, &units, &n);
        assert_int_equal(n, 1);
        assert_int_equal(units[0].kind, UNIT_KIND_VIRTIO_IOMMU);
        assert_string_equal(units[0].pci_device, "0000:00:01.0");
        assert_null(units[0].features);
        assert_null(units[0].features_absent);
        assert_int_equal(units[0].n_devices, 1);
        assert_string_equal(units[0].devices[0], "0000:00:03.0");
        assert_int_equal(units[0].errors.n, 0);
        units_free(units, n);
        fake_tree_free(t);
}

static void test_arm_and_other(void **state) {
        FakeTree *t = fake_tree_new();
        Unit *units;
        size_t n;

        fake_tree_mkdir(t, "sys/devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000");
        fake_tree_symlink(t, "sys/class/iommu/smmu3.0x0000000009050000",
                          "../../devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000");
        fake_tree_mkdir(t, "sys/devices/platform/arm-smmu/iommu/smmu.0x0000000012000000");
        fake_tree_symlink(t, "sys/class/iommu/smmu.0x0000000012000000",
                          "../../devices/platform/arm-smmu/iommu/smmu.0x0000000012000000");
        fake_tree_mkdir(t, "sys/devices/platform/foo-iommu/iommu/foo0");
        fake_tree_symlink(t, "sys/class/iommu/foo0", "../../devices/platform/foo-iommu/iommu/foo0");
        load(t, &host_6_12, &units, &n);
        assert_int_equal(n, 3);
        assert_string_equal(units[0].name, "foo0");
        assert_int_equal(units[0].kind, UNIT_KIND_OTHER);
        assert_string_equal(units[1].name, "smmu.0x0000000012000000");
        assert_int_equal(units[1].kind, UNIT_KIND_ARM_SMMU);
        assert_string_equal(units[2].name, "smmu3.0x0000000009050000");
        assert_int_equal(units[2].kind, UNIT_KIND_ARM_SMMU_V3);
        for (size_t i = 0; i < n; i++) {
                assert_null(units[i].pci_device);
                assert_int_equal(units[i].errors.n, 0);
        }
        units_free(units, n);
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kind_strings),    cmocka_unit_test(test_no_class_dir),
                cmocka_unit_test(test_intel),           cmocka_unit_test(test_intel_garbage),
                cmocka_unit_test(test_amd_field_order), cmocka_unit_test(test_amd_unknown_version),
                cmocka_unit_test(test_amd_garbage),     cmocka_unit_test(test_virtio),
                cmocka_unit_test(test_arm_and_other),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
