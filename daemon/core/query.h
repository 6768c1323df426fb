/* Read requests on the live inventory, answered the same way for every transport. */
#pragma once

#include <stdbool.h>

#include "group-state.h"
#include "inventory.h"

typedef enum Viability {
        VIABILITY_ANY,
        VIABILITY_VIABLE,
        VIABILITY_NOT_VIABLE,
} Viability;

/* ListGroups filters: every non-empty filter must match; values within one are alternatives. */
typedef struct GroupFilter {
        char **types;   /* kernel spelling, e.g. "DMA-FQ" */
        size_t n_types;
        Viability viable;
        char **vendors; /* "8086", or a substring of the vendor name (case-insensitive) */
        size_t n_vendors;
        char **classes; /* hex class prefix "03", "0300", or a substring of the class name */
        size_t n_classes;
        char **drivers; /* a member's driver; "none" matches an unbound member */
        size_t n_drivers;
        const GroupStateKind *states; /* core's state (group_status_filter_match() judges it) */
        size_t n_states;
} GroupFilter;

/* Checks the filter's values; -EINVAL with a message naming the bad one. */
int group_filter_verify(const GroupFilter *f, char **ret_message);
bool group_filter_match(const GroupFilter *f, const Inventory *inv, const Group *g);

/* The group a request names: by number, or (device not NULL or empty) by a member's PCI address.
 * -EINVAL (not an address), -ENOENT (no such device), -ENODEV (in no group), with *ret_message. */
int query_resolve_group(const Inventory *inv, unsigned group, const char *device, unsigned *ret, char **ret_message);

/* Accepts "0000:01:00.0" and the short "01:00.0" (domain 0), any case; writes the sysfs spelling
 * into ret (16 bytes). -EINVAL for anything else. */
int pci_address_normalize(const char *s, char ret[static 16]);

/* "no IOMMU group 42 (the host has groups 0-17)" style messages for NOT_FOUND answers. */
char *describe_missing_group(const Inventory *inv, unsigned id);
char *describe_missing_device(const Inventory *inv, const char *address);
