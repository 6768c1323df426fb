/* Shared between the inventory readers inside daemon/host; not used by other layers. */
#pragma once

#include <stdbool.h>

#include "inventory.h"

struct pci_access;

struct HostReader {
        const HostRoots *roots;
        struct pci_access *pacc;
};

/* What a full read lists once and every device and group then looks up, instead of asking the file
 * system once per item. A NULL list (single-item refreshes, or a listing that failed) means: ask. */
typedef struct HostListing {
        char **groups; /* sorted entries of sys/kernel/iommu_groups */
        size_t n_groups;
        char **vfio; /* sorted entries of dev/vfio; empty when the directory does not exist */
        size_t n_vfio;
} HostListing;

void host_listing_done(HostListing *l);
/* Whether name is in the sorted strv l of n names. */
bool sorted_strv_contains(char *const *l, size_t n, const char *name);

/* Reads every entry of sys/bus/pci/devices. Tree-level problems go to tree_errors. */
int devices_load(const HostRoots *roots, struct pci_access *pacc, const HostListing *listing,
                 ItemErrors *tree_errors, Device **ret, size_t *ret_n);
void devices_free(Device *devices, size_t n);
/* One device; d must be zeroed. Fails only on OOM. device_done() frees what it holds. listing may be
 * NULL. */
int device_load(const HostRoots *roots, struct pci_access *pacc, const HostListing *listing, const char *address,
                Device *d);
void device_done(Device *d);

/* Reads the groups listing names and judges viability and permitted type changes. */
int groups_load(const HostRoots *roots, const Inventory *inv, const HostListing *listing, ItemErrors *tree_errors,
                Group **ret, size_t *ret_n);
void groups_free(Group *groups, size_t n);
/* One group, judged against the devices in inv; g must be zeroed. listing may be NULL. */
int group_load(const HostRoots *roots, const Inventory *inv, const HostListing *listing, unsigned id, Group *g);
void group_done(Group *g);

/* libpci set up to name devices and to parse config space handed to it; NULL on OOM. */
struct pci_access *libpci_open(const HostRoots *roots, const char *pci_ids);
void inventory_count_errors(Inventory *inv);

/* Whether the string is a PCI address as sysfs names devices: "0000:00:1f.3". */
bool pci_address_is_valid(const char *s);

