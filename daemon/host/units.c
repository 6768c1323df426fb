/* IOMMU units from sys/class/iommu: their kind, raw registers, decoded features and translated devices. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "inventory-private.h"
#include "inventory.h"
#include "macro.h"
#include "parse.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

static const char *const unit_kind_table[_UNIT_KIND_MAX] = {
        [UNIT_KIND_OTHER] = "other",
        [UNIT_KIND_INTEL_VTD] = "intel-vtd",
        [UNIT_KIND_AMD_VI] = "amd-vi",
        [UNIT_KIND_VIRTIO_IOMMU] = "virtio-iommu",
        [UNIT_KIND_ARM_SMMU_V3] = "arm-smmu-v3",
        [UNIT_KIND_ARM_SMMU] = "arm-smmu",
};

const char *unit_kind_to_string(UnitKind k) {
        if ((unsigned)k >= _UNIT_KIND_MAX)
                return NULL;
        return unit_kind_table[k];
}

/* ---- register decoding --------------------------------------------------------------------- */

typedef struct FeatureBit {
        unsigned bit;
        const char *name;
} FeatureBit;

/* VT-d Capability Register. Bit positions as the kernel reads them (drivers/iommu/intel/iommu.h cap_*()
 * macros, include/linux/intel-iommu.h before 5.19); names after the VT-d spec's field descriptions. */
static const FeatureBit intel_cap_bits[] = {
        {3, "advanced-fault-logging"},         /* AFL */
        {4, "required-write-buffer-flushing"}, /* RWBF */
        {5, "protected-low-memory-region"},    /* PLMR */
        {6, "protected-high-memory-region"},   /* PHMR */
        {7, "caching-mode"},                   /* CM */
        {22, "zero-length-read"},              /* ZLR */
        {34, "second-level-2m-pages"},         /* SLLPS bit 0: 21-bit offset */
        {35, "second-level-1g-pages"},         /* SLLPS bit 1: 30-bit offset */
        {39, "page-selective-invalidation"},   /* PSI */
        {54, "write-draining"},                /* DWD */
        {55, "read-draining"},                 /* DRD */
        {56, "first-level-1g-pages"},          /* FL1GP */
        {59, "posted-interrupts"},             /* PI */
        {60, "first-level-5-level-paging"},    /* FL5LP */
};

/* VT-d Extended Capability Register, same sources. Bits the kernel dropped or reads version-dependently
 * (ECS 24, DIS 27, VCS 44) are left out rather than named wrongly. */
static const FeatureBit intel_ecap_bits[] = {
        {0, "page-walk-coherency"},                /* C */
        {1, "queued-invalidation"},                /* QI */
        {2, "device-tlb"},                         /* DT */
        {3, "interrupt-remapping"},                /* IR */
        {4, "extended-interrupt-mode"},            /* EIM */
        {6, "pass-through"},                       /* PT */
        {7, "snoop-control"},                      /* SC */
        {25, "memory-type"},                       /* MTS */
        {26, "nested-translation"},                /* NEST */
        {29, "page-request"},                      /* PRS */
        {30, "execute-request"},                   /* ERS */
        {31, "supervisor-request"},                /* SRS */
        {33, "no-write-flag"},                     /* NWFS */
        {34, "extended-accessed-flag"},            /* EAFS */
        {40, "pasid"},                             /* PASID */
        {41, "device-tlb-invalidation-throttle"},  /* DIT */
        {42, "page-drain"},                        /* PDS */
        {43, "scalable-mode"},                     /* SMTS */
        {45, "second-level-accessed-dirty"},       /* SLADS */
        {46, "second-level-translation"},          /* SLTS */
        {47, "first-level-translation"},           /* FLTS */
        {48, "scalable-mode-page-walk-coherency"}, /* SMPWC */
        {49, "rid-pasid"},                         /* RPS */
};

/* AMD-Vi capability header (PCI config space): the bits drivers/iommu/amd/amd_iommu_types.h defines
 * (IOMMU_CAP_IOTLB, IOMMU_CAP_NPCACHE, IOMMU_CAP_EFR); NpCache is why the kernel goes strict in a VM. */
static const FeatureBit amd_cap_bits[] = {
        {24, "IotlbSup"},
        {26, "NpCache"},
        {27, "EFRSup"},
};

/* AMD-Vi Extended Feature Register: the single-bit FEATURE_* definitions of amd_iommu_types.h, named as in
 * the AMD IOMMU spec. Multi-bit fields (HATS, GATS, GLX, SMIF, PASmax) are not features and stay raw. */
static const FeatureBit amd_efr_bits[] = {
        {0, "PreFSup"}, {1, "PPRSup"}, {2, "XTSup"},   {3, "NXSup"},  {4, "GTSup"},
        {6, "IASup"},   {7, "GASup"},  {8, "HESup"},   {9, "PCSup"},  {21, "GAMSup"},
        {48, "GIoSup"}, {49, "HASup"}, {50, "EPHSup"}, {52, "HDSup"}, {63, "SNPSup"},
};

/* amd-iommu/features: "EFR" alone before EFR2 support (5.10), then "EFR2:EFR" (6.1, and 6.3.2's source:
 * iommu->features2, iommu->features), then "EFR:EFR2" (6.12's source: amd_iommu_efr, amd_iommu_efr2).
 * The boundary is 6.7: commit 7b7563a93437 "iommu/amd: Consolidate feature detection and reporting logic"
 * (IOMMU pull for v6.7) replaced the per-IOMMU fields with those globals. That commit's hunk was not read,
 * so 6.4-6.6 are inferred. Observed under QEMU: 6.1 "0:29d3", 6.12 "29d3:0". */
#define AMD_EFR_FIRST_MAJOR 6
#define AMD_EFR_FIRST_MINOR 7

static int decode_bits(uint64_t value, const FeatureBit *bits, size_t n_bits, char ***present,
                       size_t *n_present, char ***absent, size_t *n_absent) {
        for (size_t i = 0; i < n_bits; i++) {
                int r;

                if (value & (UINT64_C(1) << bits[i].bit))
                        r = strv_push_dup(present, n_present, bits[i].name);
                else
                        r = strv_push_dup(absent, n_absent, bits[i].name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads one register file below the unit. Missing or unreadable is an item error; the value stays NULL. */
static int read_register(int dir_fd, const char *unit, const char *file, ItemErrors *errors, char **ret) {
        _cleanup_(freep) char *path = NULL;
        int r;

        path = strprintf("sys/class/iommu/%s/%s", unit, file);
        if (!path)
                return -ENOMEM;
        r = read_attr_at(dir_fd, path, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = NULL;
                item_errors_add(errors, path, r, "cannot read");
        }
        return 0;
}

/* Parses a register the kernel printed with "%llx" or "%x". Returns 1 with *ret set, 0 when the text is
 * missing or garbage (garbage is recorded as an item error), -ENOMEM. */
static int parse_register(const Unit *u, const char *file, const char *text, ItemErrors *errors,
                          uint64_t *ret) {
        _cleanup_(freep) char *path = NULL;

        if (!text)
                return 0;
        if (parse_u64(text, 16, ret) >= 0)
                return 1;
        path = strprintf("sys/class/iommu/%s/%s", u->name, file);
        if (!path)
                return -ENOMEM;
        item_errors_add(errors, path, 0, "invalid value '%s'", text);
        return 0;
}

typedef struct Features {
        char **present, **absent;
        size_t n_present, n_absent;
} Features;

static int decode_register(Unit *u, const char *file, const char *text, const FeatureBit *bits,
                           size_t n_bits, Features *f) {
        uint64_t v;
        int r;

        r = parse_register(u, file, text, &u->errors, &v);
        if (r <= 0)
                return r;
        return decode_bits(v, bits, n_bits, &f->present, &f->n_present, &f->absent, &f->n_absent);
}

static int load_intel(int dir_fd, Unit *u, Features *f) {
        int r;

        r = read_register(dir_fd, u->name, "intel-iommu/cap", &u->errors, &u->intel_cap);
        if (r < 0)
                return r;
        r = read_register(dir_fd, u->name, "intel-iommu/ecap", &u->errors, &u->intel_ecap);
        if (r < 0)
                return r;
        r = read_register(dir_fd, u->name, "intel-iommu/version", &u->errors, &u->intel_version);
        if (r < 0)
                return r;
        r = read_register(dir_fd, u->name, "intel-iommu/address", &u->errors, &u->intel_address);
        if (r < 0)
                return r;

        r = decode_register(u, "intel-iommu/cap", u->intel_cap, intel_cap_bits, ELEMENTSOF(intel_cap_bits),
                            f);
        if (r < 0)
                return r;
        r = decode_register(u, "intel-iommu/ecap", u->intel_ecap, intel_ecap_bits,
                            ELEMENTSOF(intel_ecap_bits), f);
        if (r < 0)
                return r;
        return 0;
}

/* Picks the EFR out of amd-iommu/features: one field before 6.0, two fields whose order depends on the
 * kernel version after. Returns 1 with *ret_efr set, 0 when it cannot be told (an item error), -ENOMEM. */
static int amd_features_efr(Unit *u, const HostInfo *host, uint64_t *ret_efr) {
        _cleanup_(freep) char *first = NULL, *path = NULL;
        const char *colon, *second;
        uint64_t a, b;
        bool efr_first;

        path = strprintf("sys/class/iommu/%s/amd-iommu/features", u->name);
        if (!path)
                return -ENOMEM;

        colon = strchr(u->amd_features, ':');
        if (!colon) {
                if (parse_u64(u->amd_features, 16, ret_efr) < 0)
                        goto invalid;
                return 1;
        }

        first = strndup(u->amd_features, (size_t)(colon - u->amd_features));
        if (!first)
                return -ENOMEM;
        second = colon + 1;
        if (parse_u64(first, 16, &a) < 0 || parse_u64(second, 16, &b) < 0)
                goto invalid;

        if (!host || !host->kernel_version_known) {
                item_errors_add(
                        &u->errors, path, 0,
                        "'%s' holds EFR and EFR2, whose order changed in %d.%d, and the kernel version is "
                        "unknown: not decoded",
                        u->amd_features, AMD_EFR_FIRST_MAJOR, AMD_EFR_FIRST_MINOR);
                return 0;
        }

        efr_first = host->kernel_major > AMD_EFR_FIRST_MAJOR ||
                    (host->kernel_major == AMD_EFR_FIRST_MAJOR && host->kernel_minor >= AMD_EFR_FIRST_MINOR);
        *ret_efr = efr_first ? a : b;
        return 1;

invalid:
        item_errors_add(&u->errors, path, 0, "invalid value '%s'", u->amd_features);
        return 0;
}

static int load_amd(int dir_fd, const HostInfo *host, Unit *u, Features *f) {
        uint64_t efr;
        int r;

        r = read_register(dir_fd, u->name, "amd-iommu/cap", &u->errors, &u->amd_cap);
        if (r < 0)
                return r;
        r = read_register(dir_fd, u->name, "amd-iommu/features", &u->errors, &u->amd_features);
        if (r < 0)
                return r;

        r = decode_register(u, "amd-iommu/cap", u->amd_cap, amd_cap_bits, ELEMENTSOF(amd_cap_bits), f);
        if (r < 0)
                return r;

        if (!u->amd_features)
                return 0;
        r = amd_features_efr(u, host, &efr);
        if (r <= 0)
                return r;
        return decode_bits(efr, amd_efr_bits, ELEMENTSOF(amd_efr_bits), &f->present, &f->n_present,
                           &f->absent, &f->n_absent);
}

/* ---- kind, parent PCI function, devices ------------------------------------------------------ */

/* pci_address_is_valid() on a path component, which is not NUL-terminated. */
static bool is_pci_address(const char *s, size_t len) {
        char buf[64];

        if (len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = 0;
        return pci_address_is_valid(buf);
}

static bool is_virtio_name(const char *s, size_t len) {
        if (len <= 6 || strncmp(s, "virtio", 6) != 0)
                return false;
        for (size_t i = 6; i < len; i++)
                if (!isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

typedef struct Component {
        const char *s;
        size_t len;
} Component;

/* Splits a link target into its path components, pointing into it. */
static int split_path(const char *path, Component **ret, size_t *ret_n) {
        _cleanup_(freep) Component *c = NULL;
        size_t n = 0;

        for (const char *p = path; *p;) {
                size_t len = strcspn(p, "/");

                if (len > 0) {
                        Component *e = array_append(&c, &n, sizeof(Component));

                        if (!e)
                                return -ENOMEM;
                        *e = (Component){p, len};
                }
                p += len;
                while (*p == '/')
                        p++;
        }
        *ret = TAKE_PTR(c);
        *ret_n = n;
        return 0;
}

/* The class device sits at <parent>/iommu/<name>; returns the index of that "iommu" component, or -1. */
static ssize_t find_iommu_component(const Component *c, size_t n) {
        for (size_t i = n; i > 0; i--)
                if (c[i - 1].len == 5 && strncmp(c[i - 1].s, "iommu", 5) == 0)
                        return (ssize_t)(i - 1);
        return -1;
}

static bool target_has_virtio(const Component *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (is_virtio_name(c[i].s, c[i].len))
                        return true;
        return false;
}

static int record_error(Unit *u, const char *file, int error) {
        _cleanup_(freep) char *path = NULL;

        path = strprintf("sys/class/iommu/%s%s%s", u->name, file ? "/" : "", file ?: "");
        if (!path)
                return -ENOMEM;
        item_errors_add(&u->errors, path, error, "cannot read");
        return 0;
}

/* Whether sys/class/iommu/<unit>/<file> exists; an error is recorded and counts as no. */
static int unit_has(int dir_fd, Unit *u, const char *file, bool *ret) {
        _cleanup_(freep) char *path = NULL;
        int r;

        path = strprintf("sys/class/iommu/%s/%s", u->name, file);
        if (!path)
                return -ENOMEM;
        r = exists_at(dir_fd, path);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = false;
                return record_error(u, file, r);
        }
        *ret = r > 0;
        return 0;
}

static int set_pci_device(Unit *u, const char *s, size_t len) {
        u->pci_device = strndup(s, len);
        return u->pci_device ? 0 : -ENOMEM;
}

static int load_identity(int dir_fd, Unit *u) {
        _cleanup_(freep) char *link = NULL, *device_link = NULL, *target = NULL, *device = NULL;
        _cleanup_(freep) Component *c = NULL;
        bool intel, amd;
        size_t n = 0;
        ssize_t at;
        int r;

        link = strprintf("sys/class/iommu/%s", u->name);
        if (!link)
                return -ENOMEM;
        r = read_link_at(dir_fd, link, &target);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                r = record_error(u, NULL, r);
                if (r < 0)
                        return r;
        } else {
                r = split_path(target, &c, &n);
                if (r < 0)
                        return r;
        }

        /* The parent device: absent for VT-d (a virtual device), the PCI function for AMD-Vi, virtioN for
         * virtio-iommu. */
        device_link = strprintf("sys/class/iommu/%s/device", u->name);
        if (!device_link)
                return -ENOMEM;
        r = read_link_basename_at(dir_fd, device_link, &device);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && r != -ENOENT) {
                r = record_error(u, "device", r);
                if (r < 0)
                        return r;
        }

        r = unit_has(dir_fd, u, "intel-iommu", &intel);
        if (r < 0)
                return r;
        r = unit_has(dir_fd, u, "amd-iommu", &amd);
        if (r < 0)
                return r;

        if (intel)
                u->kind = UNIT_KIND_INTEL_VTD;
        else if (amd)
                u->kind = UNIT_KIND_AMD_VI;
        else if (strncmp(u->name, "smmu3.", 6) == 0)
                u->kind = UNIT_KIND_ARM_SMMU_V3;
        else if (strncmp(u->name, "smmu.", 5) == 0)
                u->kind = UNIT_KIND_ARM_SMMU;
        else if (target_has_virtio(c, n) || (device && is_virtio_name(device, strlen(device))))
                u->kind = UNIT_KIND_VIRTIO_IOMMU;
        else
                u->kind = UNIT_KIND_OTHER;

        at = find_iommu_component(c, n);
        if (u->kind == UNIT_KIND_AMD_VI) {
                if (at >= 1 && is_pci_address(c[at - 1].s, c[at - 1].len))
                        return set_pci_device(u, c[at - 1].s, c[at - 1].len);
                if (device && is_pci_address(device, strlen(device)))
                        return set_pci_device(u, device, strlen(device));
                item_errors_add(&u->errors, link, 0, "cannot tell the IOMMU's PCI function from '%s'",
                                target ?: device ?: "(no link)");
                return 0;
        }
        /* virtio-iommu over virtio-mmio has no PCI function; only the PCI transport names one. */
        if (u->kind == UNIT_KIND_VIRTIO_IOMMU && at >= 2 && is_virtio_name(c[at - 1].s, c[at - 1].len) &&
            is_pci_address(c[at - 2].s, c[at - 2].len))
                return set_pci_device(u, c[at - 2].s, c[at - 2].len);
        return 0;
}

static int load_devices(int dir_fd, Unit *u) {
        _cleanup_(freep) char *path = NULL;
        int r;

        path = strprintf("sys/class/iommu/%s/devices", u->name);
        if (!path)
                return -ENOMEM;
        r = read_dir_at(dir_fd, path, &u->devices, &u->n_devices);
        if (r == -ENOMEM)
                return r;
        /* The kernel always creates devices/, but a fixture kept in git cannot hold an empty directory. */
        if (r == -ENOENT) {
                u->devices = calloc(1, sizeof(char *));
                return u->devices ? 0 : -ENOMEM;
        }
        if (r < 0)
                return record_error(u, "devices", r);
        return 0;
}

static void unit_done(Unit *u) {
        free(u->name);
        free(u->intel_cap);
        free(u->intel_ecap);
        free(u->intel_version);
        free(u->intel_address);
        free(u->amd_cap);
        free(u->amd_features);
        strv_free(u->features);
        strv_free(u->features_absent);
        free(u->pci_device);
        strv_free(u->devices);
        item_errors_done(&u->errors);
        *u = (Unit){};
}

static int load_unit(int dir_fd, const HostInfo *host, const char *name, Unit *u) {
        Features f = {};
        int r;

        u->name = strdup(name);
        if (!u->name)
                return -ENOMEM;

        r = load_identity(dir_fd, u);
        if (r >= 0 && u->kind == UNIT_KIND_INTEL_VTD)
                r = load_intel(dir_fd, u, &f);
        else if (r >= 0 && u->kind == UNIT_KIND_AMD_VI)
                r = load_amd(dir_fd, host, u, &f);
        /* Hand the lists over even on failure, so unit_done() frees them. */
        u->features = f.present;
        u->features_absent = f.absent;
        if (r < 0)
                return r;

        return load_devices(dir_fd, u);
}

int units_load(const HostRoots *roots, const HostInfo *host, Unit **ret, size_t *ret_n) {
        _cleanup_(strv_freep) char **names = NULL;
        Unit *units;
        size_t n = 0;
        int r;

        r = read_dir_at(roots->sysfs_fd, "sys/class/iommu", &names, &n);
        /* No class directory: a kernel without IOMMU support has no units, which is a fact, not an error. */
        if (r == -ENOENT || r == -ENOTDIR) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;

        units = calloc(n ?: 1, sizeof(Unit));
        if (!units)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = load_unit(roots->sysfs_fd, host, names[i], &units[i]);
                if (r < 0) {
                        units_free(units, i + 1);
                        return r;
                }
        }

        *ret = units;
        *ret_n = n;
        return 0;
}

void units_free(Unit *units, size_t n) {
        if (!units)
                return;
        for (size_t i = 0; i < n; i++)
                unit_done(&units[i]);
        free(units);
}

/* ---- equality ------------------------------------------------------------------------------ */

bool unit_equal(const Unit *a, const Unit *b) {
        if (!streq_ptr(a->name, b->name) ||
            !streq_ptr(unit_kind_to_string(a->kind), unit_kind_to_string(b->kind)) ||
            !streq_ptr(a->pci_device, b->pci_device))
                return false;
        /* Registers: only the kind's own are shown. */
        if (a->kind == UNIT_KIND_INTEL_VTD &&
            (!streq_ptr(a->intel_cap, b->intel_cap) || !streq_ptr(a->intel_ecap, b->intel_ecap) ||
             !streq_ptr(a->intel_version, b->intel_version) ||
             !streq_ptr(a->intel_address, b->intel_address)))
                return false;
        if (a->kind == UNIT_KIND_AMD_VI &&
            (!streq_ptr(a->amd_cap, b->amd_cap) || !streq_ptr(a->amd_features, b->amd_features)))
                return false;
        /* devices is NULL when the devices/ directory could not be read: not the same as none. */
        return strv_equal(a->features, b->features) && strv_equal(a->features_absent, b->features_absent) &&
               !a->devices == !b->devices && strv_equal(a->devices, b->devices) &&
               item_errors_equal(&a->errors, &b->errors);
}
