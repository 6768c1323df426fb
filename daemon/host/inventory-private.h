/* Shared between the inventory readers inside daemon/host; not used by other layers. */
#pragma once

#include <stdbool.h>

#include "inventory.h"

struct pci_access;

struct HostReader {
        const HostRoots *roots;
        struct pci_access *pacc;
};

/* Reads every entry of sys/bus/pci/devices. Tree-level problems go to tree_errors. */
int devices_load(const HostRoots *roots, struct pci_access *pacc, ItemErrors *tree_errors, Device **ret,
                 size_t *ret_n);
void devices_free(Device *devices, size_t n);
/* One device; d must be zeroed. Fails only on OOM. device_done() frees what it holds. */
int device_load(const HostRoots *roots, struct pci_access *pacc, const char *address, Device *d);
void device_done(Device *d);

/* Reads sys/kernel/iommu_groups and judges viability and permitted type changes. */
int groups_load(const HostRoots *roots, const Inventory *inv, ItemErrors *tree_errors, Group **ret,
                size_t *ret_n);
void groups_free(Group *groups, size_t n);
/* One group, judged against the devices in inv; g must be zeroed. */
int group_load(const HostRoots *roots, const Inventory *inv, unsigned id, Group *g);
void group_done(Group *g);

/* libpci set up to name devices and to parse config space handed to it; NULL on OOM. */
struct pci_access *libpci_open(const HostRoots *roots, const char *pci_ids);
void inventory_count_errors(Inventory *inv);

/* Whether the string is a PCI address as sysfs names devices: "0000:00:1f.3". */
bool pci_address_is_valid(const char *s);

