/* Unit tests for the *_equal() functions the inventory diff tells changed items by: every field an API
 * client is shown counts, one at a time, and a field that is unknown in both records does not. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "inventory.h"
#include "macro.h"

/* Makes change number i to the records a and b (both copies of one base record): afterwards they
 * differ in one field, or agree in everything shown. Returns what it changed, NULL past the last. */
typedef const char *(*ChangeFunc)(void *a, void *b, unsigned i);
typedef bool (*EqualFunc)(const void *a, const void *b);

/* Runs every change of 'change' on fresh copies of base and checks that equal() says 'expected' both
 * ways round. Returns the number of changes, which the caller checks so that none goes missing. */
static unsigned check_changes(const void *base, size_t size, ChangeFunc change, EqualFunc equal,
                              bool expected) {
        _cleanup_(freep) void *a = malloc(size), *b = malloc(size);
        unsigned i;

        assert_non_null(a);
        assert_non_null(b);
        for (i = 0;; i++) {
                const char *what;

                memcpy(a, base, size);
                memcpy(b, base, size);
                assert_true(equal(a, b));
                what = change(a, b, i);
                if (!what)
                        break;
                if (equal(a, b) != expected || equal(b, a) != expected)
                        fail_msg("change %u (%s): equal() says %s", i, what, expected ? "differ" : "equal");
        }
        return i;
}

/* Copies of strings at other addresses: equal records need not share their strings. */
static char *fresh(char *s) {
        static char copies[8][128];
        static unsigned next;
        char *c = copies[next++ % ELEMENTSOF(copies)];

        assert_true(strlen(s) < sizeof(copies[0]));
        return strcpy(c, s);
}

static char *strings_a[] = {(char *)"flr", (char *)"bus", NULL};
static char *strings_a_copy[] = {(char *)"flr", (char *)"bus", NULL};
static char *strings_b[] = {(char *)"flr", NULL};
static char *strings_c[] = {(char *)"flr", (char *)"pm", NULL};
static char *strings_none[] = {NULL};

static ItemError errors_base[] = {
        {(char *)"sys/bus/pci/devices/0000:01:00.0/numa_node", (char *)"invalid value 'x'"}};
static ItemError errors_file[] = {
        {(char *)"sys/bus/pci/devices/0000:01:00.0/class", (char *)"invalid value 'x'"}};
static ItemError errors_message[] = {
        {(char *)"sys/bus/pci/devices/0000:01:00.0/numa_node", (char *)"cannot read"}};
static ItemError errors_copy[] = {
        {(char *)"sys/bus/pci/devices/0000:01:00.0/numa_node", (char *)"invalid value 'x'"}};

/* The changes of an item's errors, shared by every record that has them. */
static const char *change_errors(ItemErrors *e, unsigned i) {
        switch (i) {
        case 0:
                e->n = 0;
                return "errors: none";
        case 1:
                e->items = errors_file;
                return "errors: file";
        case 2:
                e->items = errors_message;
                return "errors: message";
        default:
                return NULL;
        }
}
#define N_ERROR_CHANGES 3

/* ---- item errors ---------------------------------------------------------------------------- */

static const ItemErrors item_errors_base = {errors_base, 1};

static const char *item_errors_change(void *a, void *b, unsigned i) {
        (void)a;
        return change_errors(b, i);
}

static bool item_errors_equal_v(const void *a, const void *b) {
        return item_errors_equal(a, b);
}

static void test_item_errors_equal(void **state) {
        ItemErrors copy = {errors_copy, 1}, none = {};

        assert_true(item_errors_equal(&item_errors_base, &copy));
        assert_true(item_errors_equal(&none, &(ItemErrors){}));
        assert_int_equal(check_changes(&item_errors_base, sizeof(ItemErrors), item_errors_change,
                                       item_errors_equal_v, false),
                         N_ERROR_CHANGES);
}

/* ---- host ----------------------------------------------------------------------------------- */

static const HostInfo host_base = {
        .kernel_release = (char *)"6.12.57+deb13-amd64",
        .kernel_major = 6,
        .kernel_minor = 12,
        .kernel_version_known = true,
        .cmdline = (char *)"ro iommu=pt intel_iommu=on",
        .params =
                {
                        .iommu = (char *)"pt",
                        .iommu_passthrough = (char *)"1",
                        .iommu_strict = (char *)"0",
                        .intel_iommu = (char *)"on",
                        .amd_iommu = (char *)"off",
                },
        .iommu_enabled = true,
        .iommu_off_reason = (char *)"none",
        .acpi_dmar = true,
        .acpi_ivrs = false,
        .cmdline_default_type = DOMAIN_TYPE_IDENTITY,
        .cmdline_default_type_source = (char *)"iommu=pt",
        .intel_intgpu_mapped = 1,
        .vfio_loaded = true,
        .vfio_pci_loaded = true,
        .vfio_iommu_type1_loaded = false,
        .dev_vfio_vfio = true,
        .dev_iommu = false,
        .allow_unsafe_interrupts = 0,
        .errors = {errors_base, 1},
};

static const char *host_change(void *a, void *b, unsigned i) {
        HostInfo *h = b;

        (void)a;
        switch (i) {
        case 0:
                h->kernel_release = (char *)"6.12.58+deb13-amd64";
                return "kernel_release";
        case 1:
                h->kernel_release = NULL;
                return "kernel_release unknown";
        case 2:
                h->kernel_version_known = false;
                return "kernel_version_known";
        case 3:
                h->kernel_major = 5;
                return "kernel_major";
        case 4:
                h->kernel_minor = 1;
                return "kernel_minor";
        case 5:
                h->cmdline = (char *)"ro iommu=pt";
                return "cmdline";
        case 6:
                h->params.iommu = NULL;
                return "params.iommu";
        case 7:
                h->params.iommu_passthrough = (char *)"0";
                return "params.iommu_passthrough";
        case 8:
                h->params.iommu_strict = (char *)"1";
                return "params.iommu_strict";
        case 9:
                h->params.intel_iommu = (char *)"off";
                return "params.intel_iommu";
        case 10:
                h->params.amd_iommu = NULL;
                return "params.amd_iommu";
        case 11:
                h->iommu_enabled = false;
                return "iommu_enabled";
        case 12:
                h->iommu_off_reason = NULL;
                return "iommu_off_reason";
        case 13:
                h->acpi_dmar = false;
                return "acpi_dmar";
        case 14:
                h->acpi_ivrs = true;
                return "acpi_ivrs";
        case 15:
                h->cmdline_default_type = DOMAIN_TYPE_DMA;
                return "cmdline_default_type";
        case 16:
                h->cmdline_default_type = DOMAIN_TYPE_UNKNOWN;
                return "cmdline_default_type unknown";
        case 17:
                h->cmdline_default_type_source = (char *)"iommu.passthrough=1";
                return "cmdline_default_type_source";
        case 18:
                h->vfio_loaded = false;
                return "vfio_loaded";
        case 19:
                h->vfio_pci_loaded = false;
                return "vfio_pci_loaded";
        case 20:
                h->vfio_iommu_type1_loaded = true;
                return "vfio_iommu_type1_loaded";
        case 21:
                h->dev_vfio_vfio = false;
                return "dev_vfio_vfio";
        case 22:
                h->dev_iommu = true;
                return "dev_iommu";
        case 23:
                h->allow_unsafe_interrupts = 1;
                return "allow_unsafe_interrupts";
        case 24:
                h->allow_unsafe_interrupts = -1;
                return "allow_unsafe_interrupts unknown";
        default:
                return change_errors(&h->errors, i - 25);
        }
}
#define N_HOST_CHANGES (25 + N_ERROR_CHANGES)

/* What host_info_equal() does not look at: values that are unknown in both, and what is derived from
 * fields it compares. */
static const char *host_same(void *a, void *b, unsigned i) {
        HostInfo *x = a, *h = b;

        switch (i) {
        case 0:
                x->kernel_version_known = h->kernel_version_known = false;
                h->kernel_major = 4;
                return "kernel_major when the version is unknown";
        case 1:
                x->allow_unsafe_interrupts = -1;
                h->allow_unsafe_interrupts = -2;
                return "allow_unsafe_interrupts unknown";
        case 2:
                x->allow_unsafe_interrupts = 1;
                h->allow_unsafe_interrupts = 2;
                return "allow_unsafe_interrupts, shown as a boolean";
        case 3:
                h->intel_intgpu_mapped = 0;
                h->intel_igfx_off = true;
                h->amd_force_isolation = true;
                return "driver options (derived from the command line)";
        case 4:
                h->kernel_release = fresh(h->kernel_release);
                h->cmdline = fresh(h->cmdline);
                h->params.iommu = fresh(h->params.iommu);
                h->iommu_off_reason = fresh(h->iommu_off_reason);
                h->cmdline_default_type_source = fresh(h->cmdline_default_type_source);
                h->errors.items = errors_copy;
                return "strings at other addresses";
        default:
                return NULL;
        }
}

static bool host_info_equal_v(const void *a, const void *b) {
        return host_info_equal(a, b);
}

static void test_host_info_equal(void **state) {
        assert_int_equal(check_changes(&host_base, sizeof(HostInfo), host_change, host_info_equal_v, false),
                         N_HOST_CHANGES);
        assert_int_equal(check_changes(&host_base, sizeof(HostInfo), host_same, host_info_equal_v, true), 5);
}

/* ---- units ---------------------------------------------------------------------------------- */

static const Unit unit_base = {
        .name = (char *)"dmar0",
        .kind = UNIT_KIND_INTEL_VTD,
        .intel_cap = (char *)"d2008c40660462",
        .intel_ecap = (char *)"f050da",
        .intel_version = (char *)"1:0",
        .intel_address = (char *)"fed90000",
        .amd_cap = (char *)"1f03000f",
        .amd_features = (char *)"29d3:0",
        .features = strings_a,
        .features_absent = strings_b,
        .pci_device = (char *)"0000:00:00.2",
        .devices = strings_a,
        .n_devices = 2,
        .errors = {errors_base, 1},
};

static const char *unit_change(void *a, void *b, unsigned i) {
        Unit *x = a, *u = b;

        switch (i) {
        case 0:
                u->name = (char *)"dmar1";
                return "name";
        case 1:
                u->kind = UNIT_KIND_OTHER;
                return "kind";
        case 2:
                u->pci_device = NULL;
                return "pci_device";
        case 3:
                u->intel_cap = (char *)"d2008c40660463";
                return "intel_cap";
        case 4:
                u->intel_ecap = NULL;
                return "intel_ecap";
        case 5:
                u->intel_version = (char *)"1:1";
                return "intel_version";
        case 6:
                u->intel_address = (char *)"fed91000";
                return "intel_address";
        case 7:
                x->kind = u->kind = UNIT_KIND_AMD_VI;
                u->amd_cap = (char *)"1f03000e";
                return "amd_cap";
        case 8:
                x->kind = u->kind = UNIT_KIND_AMD_VI;
                u->amd_features = (char *)"29d3:1";
                return "amd_features";
        case 9:
                u->features = strings_c;
                return "features";
        case 10:
                u->features = strings_none;
                return "features none";
        case 11:
                u->features_absent = strings_a;
                return "features_absent";
        case 12:
                u->devices = strings_b;
                return "devices";
        case 13:
                /* Not read is not the same as none. */
                x->devices = strings_none;
                u->devices = NULL;
                return "devices unknown";
        default:
                return change_errors(&u->errors, i - 14);
        }
}
#define N_UNIT_CHANGES (14 + N_ERROR_CHANGES)

static const char *unit_same(void *a, void *b, unsigned i) {
        Unit *x = a, *u = b;

        switch (i) {
        case 0:
                /* A VT-d unit shows no AMD registers, and the other way round. */
                u->amd_cap = NULL;
                u->amd_features = (char *)"0:0";
                return "AMD registers of a VT-d unit";
        case 1:
                x->kind = u->kind = UNIT_KIND_AMD_VI;
                u->intel_cap = NULL;
                return "VT-d registers of an AMD-Vi unit";
        case 2:
                x->kind = u->kind = UNIT_KIND_VIRTIO_IOMMU;
                u->intel_cap = u->amd_cap = NULL;
                return "registers of a virtio-iommu unit";
        case 3:
                x->features = NULL;
                u->features = strings_none;
                return "features: none, and never read";
        case 4:
                u->name = fresh(u->name);
                u->intel_cap = fresh(u->intel_cap);
                u->devices = strings_a_copy;
                u->errors.items = errors_copy;
                return "strings at other addresses";
        default:
                return NULL;
        }
}

static bool unit_equal_v(const void *a, const void *b) {
        return unit_equal(a, b);
}

static void test_unit_equal(void **state) {
        assert_int_equal(check_changes(&unit_base, sizeof(Unit), unit_change, unit_equal_v, false),
                         N_UNIT_CHANGES);
        assert_int_equal(check_changes(&unit_base, sizeof(Unit), unit_same, unit_equal_v, true), 5);
}

/* ---- devices -------------------------------------------------------------------------------- */

static const Device device_base = {
        .address = (char *)"0000:01:00.0",
        .vendor_id = 0x8086,
        .device_id = 0x10d3,
        .subsystem_vendor_id = 0x8086,
        .subsystem_device_id = 0xa01f,
        .class_code = 0x020000,
        .revision = 0x01,
        .vendor_name = (char *)"Intel Corporation",
        .device_name = (char *)"82574L Gigabit Network Connection",
        .subsystem_vendor_name = (char *)"Intel Corporation",
        .subsystem_name = (char *)"Gigabit CT Desktop Adapter",
        .class_name = (char *)"Ethernet controller",
        .header_type = 0,
        .multifunction = true,
        .driver = (char *)"e1000e",
        .driver_override = (char *)"e1000e",
        .group = 5,
        .iommu_unit = (char *)"dmar0",
        .numa_node = 0,
        .parent = (char *)"0000:00:1c.0",
        .sysfs_path = (char *)"devices/pci0000:00/0000:00:1c.0/0000:01:00.0",
        .sriov_role = SRIOV_PF,
        .sriov_totalvfs = 7,
        .sriov_numvfs = 2,
        .sriov_pf = (char *)"0000:00:00.0",
        .config_read = true,
        .config_extended = true,
        .is_pcie = true,
        .acs_present = true,
        .acs_cap = 0x5f,
        .acs_ctrl = 0x1d,
        .serial_present = true,
        .serial = UINT64_C(0x0011223344556677),
        .ats = true,
        .pri = false,
        .pasid = false,
        .removable = (char *)"fixed",
        .reset_methods = strings_a,
        .boot_vga = 0,
        .net_interfaces = strings_a,
        .block_devices = strings_b,
        .drm_cards = strings_c,
        .modalias = (char *)"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
        .errors = {errors_base, 1},
};

static const char *device_change(void *a, void *b, unsigned i) {
        Device *x = a, *d = b;

        switch (i) {
        case 0:
                d->address = (char *)"0000:01:00.1";
                return "address";
        case 1:
                d->vendor_id = 0x8087;
                return "vendor_id";
        case 2:
                d->vendor_id = -1;
                return "vendor_id unknown";
        case 3:
                d->device_id = 0x10d4;
                return "device_id";
        case 4:
                d->subsystem_vendor_id = 0;
                return "subsystem_vendor_id";
        case 5:
                d->subsystem_device_id = -1;
                return "subsystem_device_id";
        case 6:
                d->class_code = 0x020001;
                return "class_code";
        case 7:
                d->revision = 0x02;
                return "revision";
        case 8:
                d->vendor_name = NULL;
                return "vendor_name";
        case 9:
                d->device_name = (char *)"82574L";
                return "device_name";
        case 10:
                d->subsystem_vendor_name = (char *)"Intel";
                return "subsystem_vendor_name";
        case 11:
                d->subsystem_name = NULL;
                return "subsystem_name";
        case 12:
                d->class_name = (char *)"Network controller";
                return "class_name";
        case 13:
                d->header_type = 1;
                return "header_type";
        case 14:
                d->header_type = -1;
                return "header_type unknown";
        case 15:
                d->multifunction = false;
                return "multifunction";
        case 16:
                d->config_read = false;
                return "config_read";
        case 17:
                d->is_pcie = false;
                return "is_pcie";
        case 18:
                d->driver = NULL;
                return "driver";
        case 19:
                d->driver_override = NULL;
                return "driver_override";
        case 20:
                d->group = 6;
                return "group";
        case 21:
                d->group = -1;
                return "group none";
        case 22:
                d->iommu_unit = (char *)"dmar1";
                return "iommu_unit";
        case 23:
                d->numa_node = 1;
                return "numa_node";
        case 24:
                d->numa_node = -1;
                return "numa_node unknown";
        case 25:
                d->parent = NULL;
                return "parent";
        case 26:
                d->sysfs_path = (char *)"devices/pci0000:00/0000:01:00.0";
                return "sysfs_path";
        case 27:
                d->sriov_role = SRIOV_NONE;
                return "sriov_role none";
        case 28:
                d->sriov_role = SRIOV_VF;
                return "sriov_role VF";
        case 29:
                d->sriov_totalvfs = 8;
                return "sriov_totalvfs";
        case 30:
                d->sriov_numvfs = -1;
                return "sriov_numvfs";
        case 31:
                x->sriov_role = d->sriov_role = SRIOV_VF;
                d->sriov_pf = (char *)"0000:00:00.1";
                return "sriov_pf";
        case 32:
                x->sriov_role = d->sriov_role = SRIOV_VF;
                d->sriov_pf = NULL;
                return "sriov_pf unknown";
        case 33:
                d->config_extended = false;
                return "config_extended";
        case 34:
                d->acs_present = false;
                return "acs_present";
        case 35:
                d->acs_cap = 0x7f;
                return "acs_cap";
        case 36:
                d->acs_ctrl = 0;
                return "acs_ctrl";
        case 37:
                d->ats = false;
                return "ats";
        case 38:
                d->pri = true;
                return "pri";
        case 39:
                d->pasid = true;
                return "pasid";
        case 40:
                d->serial_present = false;
                return "serial_present";
        case 41:
                d->serial = UINT64_C(0x0011223344556678);
                return "serial";
        case 42:
                d->reset_methods = strings_b;
                return "reset_methods";
        case 43:
                d->reset_methods = NULL;
                return "reset_methods unknown";
        case 44:
                /* No reset_method file is not the same as a file that names none. */
                x->reset_methods = strings_none;
                d->reset_methods = NULL;
                return "reset_methods empty, unknown";
        case 45:
                d->boot_vga = 1;
                return "boot_vga";
        case 46:
                d->boot_vga = -1;
                return "boot_vga unknown";
        case 47:
                d->removable = (char *)"removable";
                return "removable";
        case 48:
                d->net_interfaces = strings_none;
                return "net_interfaces";
        case 49:
                d->block_devices = strings_c;
                return "block_devices";
        case 50:
                d->drm_cards = NULL;
                return "drm_cards";
        case 51:
                d->modalias = NULL;
                return "modalias";
        default:
                return change_errors(&d->errors, i - 52);
        }
}
#define N_DEVICE_CHANGES (52 + N_ERROR_CHANGES)

/* Fields that count only in some states of others (the way clients are shown them), and what is
 * derived from a compared field. */
static const char *device_same(void *a, void *b, unsigned i) {
        Device *x = a, *d = b;

        switch (i) {
        case 0:
                x->config_read = d->config_read = false;
                d->multifunction = false;
                d->is_pcie = false;
                return "multifunction and is_pcie without config space";
        case 1:
                x->header_type = d->header_type = -1;
                d->is_pcie = false;
                return "is_pcie with an unknown header type";
        case 2:
                x->header_type = 3;
                d->header_type = 7;
                return "header types without a name";
        case 3:
                x->config_extended = d->config_extended = false;
                d->acs_present = false;
                d->ats = false;
                d->pri = d->pasid = true;
                return "ACS, ATS, PRI, PASID without extended config space";
        case 4:
                x->acs_present = d->acs_present = false;
                d->acs_cap = 0;
                d->acs_ctrl = 0xffff;
                return "ACS registers without ACS";
        case 5:
                x->serial_present = d->serial_present = false;
                d->serial = 0;
                return "serial without one";
        case 6:
                d->sriov_pf = NULL;
                return "sriov_pf of a PF";
        case 7:
                x->sriov_role = d->sriov_role = SRIOV_VF;
                d->sriov_totalvfs = d->sriov_numvfs = -1;
                return "sriov_totalvfs and sriov_numvfs of a VF";
        case 8:
                x->sriov_role = d->sriov_role = SRIOV_NONE;
                d->sriov_totalvfs = 1;
                d->sriov_pf = NULL;
                return "SR-IOV fields of a device without SR-IOV";
        case 9:
                x->vendor_id = x->numa_node = x->group = x->boot_vga = -1;
                d->vendor_id = d->numa_node = d->group = d->boot_vga = -2;
                return "unknown numbers";
        case 10:
                x->net_interfaces = NULL;
                d->net_interfaces = strings_none;
                return "net_interfaces none, and NULL";
        case 11:
                d->vfio_bound = true;
                return "vfio_bound (derived from the driver)";
        case 12:
                d->address = fresh(d->address);
                d->vendor_name = fresh(d->vendor_name);
                d->driver = fresh(d->driver);
                d->iommu_unit = fresh(d->iommu_unit);
                d->removable = fresh(d->removable);
                d->modalias = fresh(d->modalias);
                d->reset_methods = strings_a_copy;
                d->net_interfaces = strings_a_copy;
                d->errors.items = errors_copy;
                return "strings at other addresses";
        default:
                return NULL;
        }
}

static bool device_equal_v(const void *a, const void *b) {
        return device_equal(a, b);
}

static void test_device_equal(void **state) {
        assert_int_equal(check_changes(&device_base, sizeof(Device), device_change, device_equal_v, false),
                         N_DEVICE_CHANGES);
        assert_int_equal(check_changes(&device_base, sizeof(Device), device_same, device_equal_v, true), 13);
}

/* ---- groups --------------------------------------------------------------------------------- */

static ReservedRegion regions_base[] = {
        {.start = (char *)"0x00000000000a0000",
         .end = (char *)"0x00000000000bffff",
         .type = (char *)"direct"},
        {.start = (char *)"0x00000000fee00000", .end = (char *)"0x00000000feefffff", .type = (char *)"msi"},
};
static Blocker blockers_base[] = {
        {.kind = BLOCKER_DRIVER,
         .device = (char *)"0000:01:00.0",
         .driver = (char *)"e1000e",
         .reason = (char *)"0000:01:00.0 is bound to e1000e"},
        {.kind = BLOCKER_DIRECT_REGION, .reason = (char *)"group 5 has a direct region"},
};
static TypeRefusal refused_base[] = {
        {.type = (char *)"DMA-FQ", .reason = (char *)"the kernel is older than 6.7"},
};
static ReservedRegion regions_changed[ELEMENTSOF(regions_base)];
static Blocker blockers_changed[ELEMENTSOF(blockers_base)];
static TypeRefusal refused_changed[ELEMENTSOF(refused_base)];

static const Group group_base = {
        .id = 5,
        .type_raw = (char *)"DMA",
        .type = DOMAIN_TYPE_DMA,
        .type_mode = 0644,
        .reserved_regions = regions_base,
        .n_reserved_regions = ELEMENTSOF(regions_base),
        .devices = strings_a,
        .n_devices = 2,
        .viable = false,
        .blockers = blockers_base,
        .n_blockers = ELEMENTSOF(blockers_base),
        .type_change =
                {
                        .writable = true,
                        .allowed = strings_b,
                        .reason = (char *)"unbind 0000:01:00.0 first",
                        .refused = refused_base,
                        .n_refused = ELEMENTSOF(refused_base),
                        .managed_drivers_may_stay = true,
                },
        .vfio_node = false,
        .errors = {errors_base, 1},
};

/* g's reserved regions, blockers or refusals as a copy of the base ones that the caller may change. */
static ReservedRegion *own_regions(Group *g) {
        memcpy(regions_changed, regions_base, sizeof(regions_base));
        return g->reserved_regions = regions_changed;
}

static Blocker *own_blockers(Group *g) {
        memcpy(blockers_changed, blockers_base, sizeof(blockers_base));
        return g->blockers = blockers_changed;
}

static TypeRefusal *own_refused(Group *g) {
        memcpy(refused_changed, refused_base, sizeof(refused_base));
        return g->type_change.refused = refused_changed;
}

static const char *group_change(void *a, void *b, unsigned i) {
        Group *g = b;

        (void)a;
        switch (i) {
        case 0:
                g->id = 6;
                return "id";
        case 1:
                g->type_raw = (char *)"identity";
                return "type_raw";
        case 2:
                g->type_raw = NULL;
                return "type_raw unknown";
        case 3:
                g->devices = strings_c;
                return "devices";
        case 4:
                g->devices = strings_none;
                return "devices none";
        case 5:
                g->n_reserved_regions = 1;
                return "reserved_regions: one fewer";
        case 6:
                own_regions(g)[1].start = (char *)"0x00000000fee00001";
                return "reserved region start";
        case 7:
                own_regions(g)[1].end = (char *)"0x00000000fef00000";
                return "reserved region end";
        case 8:
                own_regions(g)[0].type = (char *)"direct-relaxable";
                return "reserved region type";
        case 9:
                g->viable = true;
                return "viable";
        case 10:
                g->n_blockers = 1;
                return "blockers: one fewer";
        case 11:
                own_blockers(g)[0].kind = BLOCKER_DIRECT_REGION;
                return "blocker kind";
        case 12:
                own_blockers(g)[0].device = NULL;
                return "blocker device";
        case 13:
                own_blockers(g)[0].driver = (char *)"igb";
                return "blocker driver";
        case 14:
                own_blockers(g)[1].reason = (char *)"group 5 has two direct regions";
                return "blocker reason";
        case 15:
                g->type_change.writable = false;
                return "type_change.writable";
        case 16:
                g->type_change.allowed = strings_a;
                return "type_change.allowed";
        case 17:
                g->type_change.allowed = NULL;
                return "type_change.allowed none";
        case 18:
                g->type_change.reason = NULL;
                return "type_change.reason";
        case 19:
                g->type_change.n_refused = 0;
                return "type_change.refused: none";
        case 20:
                own_refused(g)[0].type = (char *)"identity";
                return "refused type";
        case 21:
                own_refused(g)[0].reason = NULL;
                return "refused reason";
        case 22:
                g->vfio_node = true;
                return "vfio_node";
        default:
                return change_errors(&g->errors, i - 23);
        }
}
#define N_GROUP_CHANGES (23 + N_ERROR_CHANGES)

static const char *group_same(void *a, void *b, unsigned i) {
        Group *x = a, *g = b;

        switch (i) {
        case 0:
                x->devices = NULL;
                g->devices = strings_none;
                return "devices none, and NULL";
        case 1:
                own_regions(g)[0].start_addr = 1;
                return "reserved region start_addr (derived from start)";
        case 2:
                g->type_raw = fresh(g->type_raw);
                g->devices = strings_a_copy;
                own_regions(g)[0].type = fresh(regions_base[0].type);
                own_blockers(g)[0].reason = fresh(blockers_base[0].reason);
                own_refused(g)[0].type = fresh(refused_base[0].type);
                g->errors.items = errors_copy;
                return "strings at other addresses";
        default:
                return NULL;
        }
}

static bool group_equal_v(const void *a, const void *b) {
        return group_equal(a, b);
}

static void test_group_equal(void **state) {
        assert_int_equal(check_changes(&group_base, sizeof(Group), group_change, group_equal_v, false),
                         N_GROUP_CHANGES);
        assert_int_equal(check_changes(&group_base, sizeof(Group), group_same, group_equal_v, true), 3);
}

/* ---- loaded records ------------------------------------------------------------------------- */

/* Two reads of one tree are equal item by item, though no string is shared but the interned ones;
 * different items are not. */
static void test_loaded_twice(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        _cleanup_(inventory_freep) Inventory *a = NULL, *b = NULL;

        fake_tree_add_intel_unit(t, "dmar0", "d2008c40660462", "f050da");
        fake_tree_add_group(t, 1, "DMA\n", "0x00000000fee00000 0x00000000feefffff msi\n");
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "e1000e", 1, 0);
        fake_tree_link_unit(t, "0000:00:02.0", NULL, "dmar0");
        fake_tree_add_group(t, 2, "identity\n", "");
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 2, 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &a), 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &b), 0);

        assert_true(host_info_equal(&a->host, &b->host));
        assert_int_equal(a->n_units, 1);
        assert_int_equal(b->n_units, 1);
        assert_true(unit_equal(&a->units[0], &b->units[0]));
        assert_int_equal(a->n_devices, 2);
        assert_int_equal(b->n_devices, 2);
        assert_ptr_not_equal(a->devices[0].address, b->devices[0].address);
        assert_true(device_equal(&a->devices[0], &b->devices[0]));
        assert_true(device_equal(&a->devices[1], &b->devices[1]));
        assert_false(device_equal(&a->devices[0], &b->devices[1]));
        assert_int_equal(a->n_groups, 2);
        assert_int_equal(b->n_groups, 2);
        assert_true(group_equal(&a->groups[0], &b->groups[0]));
        assert_true(group_equal(&a->groups[1], &b->groups[1]));
        assert_false(group_equal(&a->groups[0], &b->groups[1]));
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_item_errors_equal), cmocka_unit_test(test_host_info_equal),
                cmocka_unit_test(test_unit_equal),        cmocka_unit_test(test_device_equal),
                cmocka_unit_test(test_group_equal),       cmocka_unit_test(test_loaded_twice),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
