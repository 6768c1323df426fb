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

static void assert_refused(const Group *g, const char *type, const char *why) {
        const TypeRefusal *r = type_change_refusal(&g->type_change, type);

        assert_non_null(r);
        if (!strstr(r->reason, why))
                fail_msg("%s refused for '%s', not '%s'", type, r->reason, why);
        assert_non_null(strstr(g->type_change.reason, why));
}

static void assert_not_refused(const Group *g, const char *type) {
        assert_null(type_change_refusal(&g->type_change, type));
}

/* Whether the type is writable at all is the attribute's mode, not the version: 0444 on 5.10, and a
 * vendor kernel that calls itself 5.10 but carries the store shows 0644. */
static void test_type_attribute_mode(void **state) {
        for (int writable = 0; writable < 2; writable++) {
                FakeTree *t = fake_tree_new_host("5.10.0-30-amd64");
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_group(t, 0, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
                fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/removable", "fixed\n");
                if (!writable)
                        fake_tree_chmod(t, "sys/kernel/iommu_groups/0/type", 0444);
                inv = load(t);
                g = inventory_find_group(inv, 0);
                assert_int_equal(g->type_change.writable, writable);
                if (!writable) {
                        assert_allowed(g, (const char *const[]){ NULL });
                        assert_refused(g, "identity", "read-only");
                        assert_refused(g, "auto", "read-only");
                } else
                        /* DMA-FQ does not exist before 5.15 unless a group shows it. */
                        assert_allowed(g, (const char *const[]){ "identity", "DMA", "auto", NULL });
                fake_tree_free(t);
        }
}

/* A group that reads DMA-FQ proves the type exists whatever the release says. */
static void test_dma_fq_detected(void **state) {
        FakeTree *t = fake_tree_new_host("5.14.0-backport");
        _cleanup_(inventory_freep) Inventory *inv = NULL;

        fake_tree_add_group(t, 0, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
        inv = load(t);
        assert_refused(inventory_find_group(inv, 0), "DMA-FQ", "no DMA-FQ type (from 5.15)");
        fake_tree_free(t);

        t = fake_tree_new_host("5.14.0-backport");
        inventory_freep(&inv);
        fake_tree_add_group(t, 0, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
        fake_tree_add_group(t, 1, "DMA-FQ\n", msi);
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 1, 0);
        inv = load(t);
        assert_not_refused(inventory_find_group(inv, 0), "DMA-FQ");
        assert_true(strv_contains(inventory_find_group(inv, 0)->type_change.allowed, "DMA-FQ"));
        fake_tree_free(t);
}

static const char rmrr[] = "0x000000007b800000 0x000000007b800fff direct\n"
                           "0x00000000fee00000 0x00000000feefffff msi\n";
static const char relaxable[] = "0x000000007b000000 0x000000007f7fffff direct-relaxable\n"
                                "0x00000000fee00000 0x00000000feefffff msi\n";

static Inventory *load_region_host(FakeTree *t, bool amd, const char *regions) {
        if (amd)
                fake_tree_add_amd_unit(t, "29d3:0\n");
        else
                fake_tree_add_intel_unit(t, "dmar0", "d2008c22260206\n", "f00f4a\n");
        fake_tree_add_group(t, 4, "DMA\n", regions);
        fake_tree_add_pci_device(t, "0000:04:00.0", NULL, NULL, 4, 0);
        fake_tree_link_unit(t, "0000:04:00.0", NULL, amd ? "ivhd0" : "dmar0");
        return load(t);
}

/* A direct region (RMRR, IVMD unity map): VT-d refuses it for VFIO on every kernel, the core from 6.6
 * on every unit; AMD-Vi before 6.6 accepts it. direct-relaxable is fine everywhere. */
static void test_direct_regions(void **state) {
        static const struct {
                const char *release;
                bool amd;
                bool viable;
                const char *why;
        } cases[] = {
                { "6.1.0-57-amd64", false, false, "VT-d driver refuses devices with RMRRs" },
                { "6.12.117+deb12-amd64", false, false, "from Linux 6.6 the IOMMU core refuses" },
                { "6.1.0-57-amd64", true, true, NULL },
                { "6.12.117+deb12-amd64", true, false, "from Linux 6.6 the IOMMU core refuses" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FakeTree *t = fake_tree_new_host(cases[i].release);
                _cleanup_(inventory_freep) Inventory *inv = load_region_host(t, cases[i].amd, rmrr);
                const Group *g = inventory_find_group(inv, 4);

                assert_int_equal(g->viable, cases[i].viable);
                if (!cases[i].viable) {
                        assert_int_equal(g->n_blockers, 1);
                        assert_int_equal(g->blockers[0].kind, BLOCKER_DIRECT_REGION);
                        assert_null(g->blockers[0].device);
                        assert_non_null(strstr(g->blockers[0].reason, "0x000000007b800000-0x000000007b800fff is direct"));
                        assert_non_null(strstr(g->blockers[0].reason, cases[i].amd ? "IVMD unity map" : "RMRR"));
                        assert_non_null(strstr(g->blockers[0].reason, cases[i].why));
                } else
                        assert_int_equal(g->n_blockers, 0);
                fake_tree_free(t);

                t = fake_tree_new_host(cases[i].release);
                inventory_freep(&inv);
                inv = load_region_host(t, cases[i].amd, relaxable);
                assert_true(inventory_find_group(inv, 4)->viable);
                fake_tree_free(t);
        }
}

/* Untrusted devices (sysfs: removable) are DMA only; before 6.4 DMA-FQ is refused too. */
static void test_untrusted_device(void **state) {
        const char *releases[] = { "6.1.0-57-amd64", "6.12.117+deb12-amd64" };

        for (size_t i = 0; i < ELEMENTSOF(releases); i++) {
                FakeTree *t = fake_tree_new_host(releases[i]);
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_group(t, 6, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:00:1c.0", NULL, "pcieport", 8, 1);
                fake_tree_add_group(t, 8, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:06:00.0", "0000:00:1c.0", NULL, 6, 0);
                fake_tree_write(t, "sys/devices/pci0000:00/0000:00:1c.0/0000:06:00.0/removable", "removable\n");
                inv = load(t);
                assert_string_equal(inventory_find_device(inv, "0000:06:00.0")->removable, "removable");
                g = inventory_find_group(inv, 6);
                assert_refused(g, "identity", "0000:06:00.0");
                assert_refused(g, "identity", "is untrusted (removable");
                assert_not_refused(g, "DMA");
                assert_not_refused(g, "auto");
                if (i == 0) {
                        assert_refused(g, "DMA-FQ", "before 6.4 the kernel accepts only DMA");
                        assert_allowed(g, (const char *const[]){ "DMA", "auto", NULL });
                } else
                        assert_allowed(g, (const char *const[]){ "DMA", "DMA-FQ", "auto", NULL });
                /* The port itself is not untrusted: only what sits below it. */
                assert_not_refused(inventory_find_group(inv, 8), "identity");
                fake_tree_free(t);
        }
}

/* Kernels before 5.14 have no removable attribute: whether a device is untrusted is unknown. */
static void test_untrusted_unknown(void **state) {
        FakeTree *t = fake_tree_new_host("5.11.0-1-amd64");
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        const Group *g;

        fake_tree_add_group(t, 0, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
        inv = load(t);
        g = inventory_find_group(inv, 0);
        assert_refused(g, "identity", "cannot tell whether 0000:00:02.0 is untrusted");
        assert_allowed(g, (const char *const[]){ "DMA", "auto", NULL });
        fake_tree_free(t);
}

static void set_display(FakeTree *t, const char *address, const char *vendor, const char *device) {
        _cleanup_(freep) char *dir = fake_tree_device_dir(address, NULL), *path = NULL;

        assert_true(asprintf(&path, "%s/class", dir) >= 0);
        fake_tree_write(t, path, "0x030000\n");
        free(path);
        assert_true(asprintf(&path, "%s/vendor", dir) >= 0);
        fake_tree_write(t, path, vendor);
        free(path);
        assert_true(asprintf(&path, "%s/device", dir) >= 0);
        fake_tree_write(t, path, device);
}

/* Debian's kernels keep an integrated Intel GPU in identity unless intel_iommu=on; a group that reads
 * DMA is proof that it is not forced. */
static void test_forced_identity_intel_gpu(void **state) {
        static const struct {
                const char *cmdline, *type;
                bool forced;
        } cases[] = {
                { "root=/dev/sda1 quiet\n", "identity\n", true },
                { "root=/dev/sda1 intel_iommu=on\n", "identity\n", false },
                { "root=/dev/sda1 intel_iommu=on,intgpu_off\n", "identity\n", true },
                { "root=/dev/sda1 quiet\n", "DMA\n", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_write(t, "proc/cmdline", cases[i].cmdline);
                fake_tree_add_intel_unit(t, "dmar1", "d2008c22260206\n", "f00f4a\n");
                fake_tree_add_group(t, 0, cases[i].type, msi);
                fake_tree_add_pci_device(t, "0000:00:02.0", NULL, NULL, 0, 0);
                fake_tree_link_unit(t, "0000:00:02.0", NULL, "dmar1");
                set_display(t, "0000:00:02.0", "0x8086\n", "0x3e92\n");
                inv = load(t);
                g = inventory_find_group(inv, 0);
                if (cases[i].forced) {
                        assert_refused(g, "DMA", "0000:00:02.0 (");
                        assert_refused(g, "DMA", "integrated Intel GPU");
                        assert_refused(g, "DMA-FQ", "unless booted with intel_iommu=on");
                        assert_allowed(g, (const char *const[]){ "identity", "auto", NULL });
                } else {
                        assert_not_refused(g, "DMA");
                        assert_not_refused(g, "DMA-FQ");
                }
                fake_tree_free(t);
        }
}

/* A PCIe config space with ATS, PRI and PASID, as AMD GPUs have. */
static void write_pasid_config(FakeTree *t, const char *address) {
        uint8_t config[4096] = { 0x02, 0x10, 0xbf, 0x73 };

        config[0x06] = 0x10;                   /* status: capability list */
        config[0x0b] = 0x03;                   /* class: display */
        config[0x34] = 0x40;
        config[0x40] = 0x10;                   /* PCI Express, end of list */
        config[0x42] = 0x02;
        config[0x100] = 0x0f;                  /* ATS, next 0x110 */
        config[0x102] = 0x01;
        config[0x103] = 0x11;
        config[0x110] = 0x13;                  /* PRI, next 0x120 */
        config[0x112] = 0x01;
        config[0x113] = 0x12;
        config[0x120] = 0x1b;                  /* PASID, last */
        config[0x122] = 0x01;
        fake_tree_write_config(t, address, NULL, config, sizeof(config));
}

/* AMD-Vi keeps devices with PASID (and PRI, ATS) in identity on units with GT and PPR, unless memory
 * encryption is on, which the group's DMA type shows. */
static void test_forced_identity_amd(void **state) {
        static const struct {
                const char *type;
                bool caps, forced;
        } cases[] = {
                { "identity\n", true, true },
                { "DMA\n", true, false },
                { "identity\n", false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Device *d;
                const Group *g;

                /* EFR: PPRSup (bit 1), GTSup (bit 4), EPHSup (bit 50); 6.12 prints EFR:EFR2. */
                fake_tree_add_amd_unit(t, "4000000000012:0\n");
                fake_tree_add_group(t, 2, cases[i].type, msi);
                fake_tree_add_pci_device(t, "0000:03:00.0", NULL, "amdgpu", 2, 0);
                fake_tree_link_unit(t, "0000:03:00.0", NULL, "ivhd0");
                if (cases[i].caps)
                        write_pasid_config(t, "0000:03:00.0");
                inv = load(t);
                d = inventory_find_device(inv, "0000:03:00.0");
                g = inventory_find_group(inv, 2);
                assert_int_equal(d->pasid, cases[i].caps);
                assert_int_equal(d->ats && d->pri, cases[i].caps);
                if (cases[i].forced) {
                        assert_refused(g, "DMA", "supports PASID, PRI and ATS");
                        assert_refused(g, "DMA-FQ", "AMD-Vi driver keeps");
                } else if (cases[i].caps || strcmp(cases[i].type, "DMA\n") == 0) {
                        assert_not_refused(g, "DMA");
                } else
                        /* Only 64 bytes of config space: whether it is forced is unknown. */
                        assert_refused(g, "DMA", "its extended config space is unreadable");
                fake_tree_free(t);
        }
}

/* A VT-d unit without pass-through (ECAP.PT clear): 6.12 refuses identity, 6.1 gives it. */
static void test_no_passthrough_vtd(void **state) {
        const char *releases[] = { "6.1.0-57-amd64", "6.12.117+deb12-amd64" };

        for (size_t i = 0; i < ELEMENTSOF(releases); i++) {
                FakeTree *t = fake_tree_new_host(releases[i]);
                _cleanup_(inventory_freep) Inventory *inv = NULL;
                const Group *g;

                fake_tree_add_intel_unit(t, "dmar0", "d2008c22260206\n", "f00f0a\n");
                fake_tree_add_group(t, 1, "DMA\n", msi);
                fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 1, 0);
                fake_tree_link_unit(t, "0000:00:03.0", NULL, "dmar0");
                inv = load(t);
                g = inventory_find_group(inv, 1);
                if (i == 0)
                        assert_allowed(g, (const char *const[]){ "identity", "DMA", "DMA-FQ", "auto", NULL });
                else {
                        assert_refused(g, "identity", "dmar0 has no pass-through support");
                        assert_allowed(g, (const char *const[]){ "DMA", "DMA-FQ", "auto", NULL });
                }
                fake_tree_free(t);
        }
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
                cmocka_unit_test(test_type_attribute_mode),
                cmocka_unit_test(test_dma_fq_detected),
                cmocka_unit_test(test_direct_regions),
                cmocka_unit_test(test_untrusted_device),
                cmocka_unit_test(test_untrusted_unknown),
                cmocka_unit_test(test_forced_identity_intel_gpu),
                cmocka_unit_test(test_forced_identity_amd),
                cmocka_unit_test(test_no_passthrough_vtd),
                cmocka_unit_test(test_viability_rules),
                cmocka_unit_test(test_reserved_regions),
                cmocka_unit_test(test_inconsistent_membership),
                cmocka_unit_test(test_groups_sorted_numerically),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
