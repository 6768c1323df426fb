/* The host's IOMMU as data: host settings, IOMMU units, groups and PCI devices, read in one pass.
 *
 * An Inventory is an immutable snapshot. Every item carries the problems met while reading it
 * (ItemError): a garbage or unreadable file never aborts the scan and never yields a guessed
 * value; the field is left unknown and the error says which file and why. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HostRoots HostRoots;

typedef struct ItemError {
        char *file;    /* path relative to the root it was read from, e.g. "sys/bus/pci/devices/…/class" */
        char *message; /* what was wrong: "No such file or directory", "invalid value 'zz'", … */
} ItemError;

typedef struct ItemErrors {
        ItemError *items;
        size_t n;
} ItemErrors;

/* Records a problem with 'file' (errno if error != 0, else 'message'). Never fails loudly: on OOM the
 * error is dropped, because the caller is already in an error path. */
void item_errors_add(ItemErrors *errors, const char *file, int error, const char *message_format, ...)
        __attribute__((format(printf, 4, 5)));
void item_errors_done(ItemErrors *errors);
bool item_errors_equal(const ItemErrors *a, const ItemErrors *b);

/* ---- host ---------------------------------------------------------------------------------- */

typedef enum DomainType {
        DOMAIN_TYPE_UNKNOWN = 0, /* could not be read or derived */
        DOMAIN_TYPE_IDENTITY,
        DOMAIN_TYPE_DMA,
        DOMAIN_TYPE_DMA_FQ,
        DOMAIN_TYPE_BLOCKED,
        DOMAIN_TYPE_UNMANAGED,
        DOMAIN_TYPE_KERNEL_UNKNOWN, /* the kernel itself printed "unknown" */
        _DOMAIN_TYPE_MAX,
} DomainType;

/* The kernel's spelling: "identity", "DMA", "DMA-FQ", "blocked", "unmanaged", "unknown"; NULL for
 * DOMAIN_TYPE_UNKNOWN. */
const char *domain_type_to_string(DomainType t);
DomainType domain_type_from_string(const char *s);

typedef struct KernelParams {
        /* Raw values as given on the command line (last one wins), NULL when absent. */
        char *iommu;             /* iommu= */
        char *iommu_passthrough; /* iommu.passthrough= */
        char *iommu_strict;      /* iommu.strict= */
        char *intel_iommu;       /* intel_iommu= */
        char *amd_iommu;         /* amd_iommu= */
} KernelParams;

typedef struct HostInfo {
        char *kernel_release; /* proc/sys/kernel/osrelease */
        unsigned kernel_major, kernel_minor;
        bool kernel_version_known;

        char *cmdline; /* proc/cmdline */
        KernelParams params;

        bool iommu_enabled;      /* at least one unit in sys/class/iommu or one group */
        char *iommu_off_reason;  /* why not, when iommu_enabled is false; NULL otherwise */
        bool acpi_dmar;          /* sys/firmware/acpi/tables/DMAR exists */
        bool acpi_ivrs;          /* sys/firmware/acpi/tables/IVRS exists */

        /* What the command line implies for the default domain type, when it says anything:
         * DOMAIN_TYPE_UNKNOWN when the command line leaves it to Kconfig and the IOMMU driver. */
        DomainType cmdline_default_type;
        char *cmdline_default_type_source; /* e.g. "iommu=pt", "iommu.strict=0" */

        /* Driver options on the command line that make the IOMMU driver force a device's domain
         * type, replayed in order as the kernel parses them. */
        int intel_intgpu_mapped;   /* -1 not said; 1 intel_iommu=on, 0 intel_iommu=intgpu_off (Debian) */
        bool intel_igfx_off;       /* intel_iommu=igfx_off */
        bool amd_force_isolation;  /* amd_iommu=force_isolation */

        /* VFIO */
        bool vfio_loaded;              /* proc/modules or sys/module/vfio */
        bool vfio_pci_loaded;
        bool vfio_iommu_type1_loaded;
        bool dev_vfio_vfio;            /* dev/vfio/vfio exists */
        bool dev_iommu;                /* dev/iommu exists (iommufd) */
        int allow_unsafe_interrupts;   /* -1 unknown (module not loaded), 0, 1 */

        ItemErrors errors;
} HostInfo;

/* Fills *info from proc and sys; always succeeds except on OOM (problems land in info->errors). */
int host_info_load(const HostRoots *roots, HostInfo *info);
void host_info_done(HostInfo *info);
/* Whether a and b differ in nothing an API client is shown (fields that are unknown in both are equal,
 * whatever they hold); strings compare by content. The same holds for the *_equal() below. */
bool host_info_equal(const HostInfo *a, const HostInfo *b);

/* ---- IOMMU units ----------------------------------------------------------------------------- */

typedef enum UnitKind {
        UNIT_KIND_OTHER = 0,
        UNIT_KIND_INTEL_VTD,
        UNIT_KIND_AMD_VI,
        UNIT_KIND_VIRTIO_IOMMU,
        UNIT_KIND_ARM_SMMU_V3,
        UNIT_KIND_ARM_SMMU,
        _UNIT_KIND_MAX,
} UnitKind;

const char *unit_kind_to_string(UnitKind k); /* "intel-vtd", "amd-vi", "virtio-iommu", "arm-smmu-v3", … */

typedef struct Unit {
        char *name; /* sys/class/iommu/<name> */
        UnitKind kind;

        /* Raw registers as the kernel prints them (hex strings), NULL when the kind has none. */
        char *intel_cap, *intel_ecap, *intel_version, *intel_address;
        char *amd_cap, *amd_features;

        /* Decoded: feature name -> present. Names are the spec's (Intel: "pass-through",
         * "scalable-mode", "nested-translation", "pasid", "page-selective-invalidation",
         * "caching-mode"; AMD EFR: "PreFSup", "PPRSup", "XTSup", "NXSup", "GTSup", "IASup",
         * "GASup", "HESup", "PCSup", …). */
        char **features;      /* strv of features present */
        char **features_absent; /* strv of known features absent */

        char *pci_device; /* the PCI function that is the IOMMU (AMD-Vi, virtio-iommu), or NULL */
        char **devices;   /* strv: addresses of the devices it translates (sys/class/iommu/X/devices) */
        size_t n_devices;

        ItemErrors errors;
} Unit;

/* Reads sys/class/iommu. host is used for the kernel version (AMD's features field order). */
int units_load(const HostRoots *roots, const HostInfo *host, Unit **ret, size_t *ret_n);
void units_free(Unit *units, size_t n);
bool unit_equal(const Unit *a, const Unit *b);

/* ---- PCI devices ----------------------------------------------------------------------------- */

typedef enum SriovRole {
        SRIOV_NONE = 0,
        SRIOV_PF,
        SRIOV_VF,
} SriovRole;

typedef struct Device {
        char *address; /* "0000:00:02.0", the sysfs name */

        /* -1 when unreadable; otherwise 0..0xffff (class 0..0xffffff). */
        int32_t vendor_id, device_id, subsystem_vendor_id, subsystem_device_id, class_code;
        int32_t revision;
        char *vendor_name, *device_name, *subsystem_vendor_name, *subsystem_name, *class_name;

        int header_type;  /* -1 unknown, else PCI header layout (0 endpoint, 1 bridge, 2 cardbus) */
        bool multifunction;

        char *driver;          /* NULL when unbound */
        char *driver_override; /* NULL when "(null)" / unset */
        int group;             /* -1 when in no group */
        char *iommu_unit;      /* NULL when none */
        int numa_node;         /* -1 when none or unknown */
        char *parent;          /* upstream PCI bridge address, NULL on a root bus */
        char *sysfs_path;      /* "devices/pci0000:00/0000:00:1c.0/0000:01:00.0" (the link target) */

        SriovRole sriov_role;
        int sriov_totalvfs, sriov_numvfs; /* PF only, -1 unknown */
        char *sriov_pf;                   /* VF only: its PF's address */

        bool config_read;      /* config space was readable */
        bool config_extended;  /* more than the first 256 bytes were readable */
        bool is_pcie;
        bool acs_present;       /* meaningful only when config_extended */
        uint16_t acs_cap, acs_ctrl;
        bool serial_present;
        uint64_t serial;
        /* PCIe extended capabilities the IOMMU drivers judge a device by (meaningful only when
         * config_extended): ATS, PRI and PASID make AMD-Vi keep a device in an identity domain. */
        bool ats, pri, pasid;
        /* sys/.../removable as printed ("removable", "fixed", "unknown"); NULL when the file does not
         * exist. The PCI core marks a device removable exactly when it marks it untrusted (below a
         * port the firmware calls external-facing), and creates no file for the others. */
        char *removable;

        char **reset_methods; /* strv, NULL when the kernel has no reset_method file */
        int boot_vga;         /* -1 when no file, else 0/1 */
        char **net_interfaces, **block_devices, **drm_cards; /* strv, possibly empty, never NULL */
        char *modalias;
        bool vfio_bound; /* bound to vfio-pci or a VFIO variant driver */

        ItemErrors errors;
} Device;

/* A driver that may stay bound while VFIO uses the group: vfio-pci, its variants, pci-stub, pcieport
 * (the kernel's driver_managed_dma drivers). */
bool driver_is_dma_managed(const char *driver);
/* vfio-pci or one of its variant drivers. */
bool driver_is_vfio(const char *driver);

/* ---- groups ---------------------------------------------------------------------------------- */

typedef struct ReservedRegion {
        char *start, *end; /* exactly as the kernel prints them: "0x00000000fee00000" */
        uint64_t start_addr, end_addr;
        char *type; /* "direct", "direct-relaxable", "reserved", "msi" */
} ReservedRegion;

typedef enum BlockerKind {
        BLOCKER_DRIVER,        /* a member's driver: preparing the whole group moves it */
        BLOCKER_DIRECT_REGION, /* a region the kernel keeps mapped 1:1: nothing iommud does helps */
        _BLOCKER_KIND_MAX,
} BlockerKind;

const char *blocker_kind_to_string(BlockerKind k); /* "driver", "direct-region" */

typedef struct Blocker {
        BlockerKind kind;
        char *device; /* NULL for a blocker of the whole group (a direct region) */
        char *driver;
        char *reason; /* human sentence naming group, device or region, and the fix if there is one */
} Blocker;

/* A type the kernel refuses for a group whatever is bound to it: no unbinding can make it writable. */
typedef struct TypeRefusal {
        char *type;   /* kernel spelling, or "auto" */
        char *reason; /* names the member or unit and the kernel rule */
} TypeRefusal;

typedef struct TypeChangeRules {
        bool writable;   /* the running kernel can write this group's type at all */
        char **allowed;  /* strv of types that may be written now, without unbinding anything, in kernel
                          * spelling plus "auto" */
        char *reason;    /* why not (or what must happen first), NULL when nothing is in the way */
        TypeRefusal *refused; /* types the kernel refuses for this group in any state */
        size_t n_refused;
        /* The kernel lets drivers that manage DMA themselves (vfio-pci, pci-stub, pcieport) stay bound
         * while the type changes (6.4 on); otherwise every member must be unbound first. */
        bool managed_drivers_may_stay;
} TypeChangeRules;

/* The refusal of 'type' for this group, NULL when the kernel would accept it (after unbinding). */
const TypeRefusal *type_change_refusal(const TypeChangeRules *t, const char *type);

typedef struct Group {
        unsigned id;
        char *type_raw; /* exactly as read, without the newline; NULL when unreadable */
        DomainType type;
        int type_mode;  /* permission bits of the type attribute, -1 when they could not be read */
        ReservedRegion *reserved_regions;
        size_t n_reserved_regions;
        char **devices; /* strv of member addresses, sorted */
        size_t n_devices;

        bool viable;
        Blocker *blockers;
        size_t n_blockers;

        TypeChangeRules type_change;
        bool vfio_node; /* dev/vfio/<id> exists: a VFIO driver holds a member */
        /* The kernel shows the group without members: its last device left, and the kernel frees it
         * once nothing holds it (a VFIO user may). empty_reason (static) says what can be told. */
        bool empty;
        const char *empty_reason;

        ItemErrors errors;
} Group;

/* ---- the whole snapshot ---------------------------------------------------------------------- */

typedef struct Inventory {
        HostInfo host;
        Unit *units;
        size_t n_units;
        Group *groups; /* sorted by id */
        size_t n_groups;
        Device *devices; /* sorted by address */
        size_t n_devices;

        ItemErrors errors; /* problems with the tree itself: bad entry names, missing directories */
        size_t n_errors;   /* all item errors, for the one summary warning */
} Inventory;

/* What reads the host: the roots (borrowed; they must outlive the reader) and libpci with its
 * pci.ids names, kept loaded across reads. pci_ids may be NULL for the built-in default path. */
typedef struct HostReader HostReader;
int host_reader_new(const HostRoots *roots, const char *pci_ids, HostReader **ret);
HostReader *host_reader_free(HostReader *reader);
static inline void host_reader_freep(HostReader **r) {
        host_reader_free(*r);
}

/* Reads everything. Fails only on OOM; file-level problems are item errors. */
int inventory_read(HostReader *reader, Inventory **ret);
/* inventory_read() with a reader of its own, for one-shot use (--dump, tests). */
int inventory_load(const HostRoots *roots, const char *pci_ids, Inventory **ret);
Inventory *inventory_free(Inventory *inv);
static inline void inventory_freep(Inventory **inv) {
        inventory_free(*inv);
}

const Device *inventory_find_device(const Inventory *inv, const char *address);
const Group *inventory_find_group(const Inventory *inv, unsigned id);

/* ---- changes --------------------------------------------------------------------------------- */

typedef enum InventoryChangeKind {
        INVENTORY_DEVICE_ADDED,
        INVENTORY_DEVICE_REMOVED,
        INVENTORY_DEVICE_DRIVER_CHANGED, /* bound, unbound, or bound to another driver */
        INVENTORY_DEVICE_UPDATED,        /* anything else about the device */
        INVENTORY_GROUP_ADDED,
        INVENTORY_GROUP_REMOVED,
        INVENTORY_GROUP_TYPE_CHANGED,
        INVENTORY_GROUP_UPDATED, /* members, viability, reserved regions, permitted type changes */
        INVENTORY_HOST_UPDATED,  /* host settings or IOMMU units */
        _INVENTORY_CHANGE_MAX,
} InventoryChangeKind;

const char *inventory_change_kind_to_string(InventoryChangeKind k);

/* One difference between two states. Pointers are valid only during the callback. A group id that
 * now holds none of the devices it held before is a different group: it is reported as removed
 * and added, never as updated, because the kernel reuses group numbers. */
typedef struct InventoryChange {
        InventoryChangeKind kind;
        const Device *old_device, *new_device;
        const Group *old_group, *new_group;
} InventoryChange;

typedef void (*InventoryChangeFunc)(const InventoryChange *change, void *userdata);

/* Reports every difference from old to new: devices by address, then groups by id, then host. */
void inventory_diff(const Inventory *old, const Inventory *new, InventoryChangeFunc cb, void *userdata);

/* Re-reads one device and the groups it left or joined, updates inv in place and reports the
 * differences (a udev event's worth of change, without a full read). */
int inventory_refresh_device(HostReader *reader, Inventory *inv, const char *address, InventoryChangeFunc cb,
                             void *userdata);

/* Re-reads one group (its /dev/vfio node appeared or went) and reports the differences. */
int inventory_refresh_group(HostReader *reader, Inventory *inv, unsigned id, InventoryChangeFunc cb,
                            void *userdata);
/* Re-reads host settings and IOMMU units (a module loaded, /dev/iommu appeared). */
int inventory_refresh_host(HostReader *reader, Inventory *inv, InventoryChangeFunc cb, void *userdata);

/* What the inventory diff compares to tell an item changed (see host_info_equal()). */
bool device_equal(const Device *a, const Device *b);
bool group_equal(const Group *a, const Group *b);
