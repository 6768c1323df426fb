/* Group filters, address parsing and not-found messages for the read API. */
#include "query.h"
#include "string-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "parse.h"

static bool is_hex(const char *s) {
        return *s && strspn(s, "0123456789abcdefABCDEF") == strlen(s);
}

int group_filter_verify(const GroupFilter *f, char **ret_message) {
        for (size_t i = 0; i < f->n_types; i++)
                if (domain_type_from_string(f->types[i]) == DOMAIN_TYPE_UNKNOWN) {
                        if (asprintf(ret_message,
                                     "unknown domain type '%s' (expected identity, DMA, DMA-FQ, blocked, "
                                     "unmanaged or unknown)",
                                     f->types[i]) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
        for (size_t i = 0; i < f->n_classes; i++)
                if (is_hex(f->classes[i]) && strlen(f->classes[i]) > 6) {
                        if (asprintf(ret_message, "class filter '%s' is longer than a class code (6 hex digits)",
                                     f->classes[i]) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
        return 0;
}

static bool any_member(const Inventory *inv, const Group *g, bool (*test)(const Device *d, const char *value),
                       char **values, size_t n_values) {
        if (n_values == 0)
                return true;
        for (char **m = g->devices; m && *m; m++) {
                const Device *d = inventory_find_device(inv, *m);

                if (!d)
                        continue;
                for (size_t i = 0; i < n_values; i++)
                        if (test(d, values[i]))
                                return true;
        }
        return false;
}

static bool vendor_matches(const Device *d, const char *value) {
        char id[16];

        if (d->vendor_id >= 0 && strlen(value) == 4 && is_hex(value)) {
                snprintf(id, sizeof(id), "%04x", (unsigned)d->vendor_id);
                if (strcasecmp(id, value) == 0)
                        return true;
        }
        return d->vendor_name && strcasestr(d->vendor_name, value);
}

static bool class_matches(const Device *d, const char *value) {
        char code[16];

        if (d->class_code >= 0 && is_hex(value)) {
                snprintf(code, sizeof(code), "%06x", (unsigned)d->class_code);
                if (strncasecmp(code, value, strlen(value)) == 0)
                        return true;
        }
        return d->class_name && strcasestr(d->class_name, value);
}

static bool driver_matches(const Device *d, const char *value) {
        if (strcmp(value, "none") == 0)
                return !d->driver;
        return d->driver && strcmp(d->driver, value) == 0;
}

bool group_filter_match(const GroupFilter *f, const Inventory *inv, const Group *g) {
        if (f->n_types > 0) {
                bool found = false;

                for (size_t i = 0; i < f->n_types && !found; i++)
                        found = g->type_raw && strcmp(g->type_raw, f->types[i]) == 0;
                if (!found)
                        return false;
        }
        if (f->viable == VIABILITY_VIABLE && !g->viable)
                return false;
        if (f->viable == VIABILITY_NOT_VIABLE && g->viable)
                return false;
        return any_member(inv, g, vendor_matches, f->vendors, f->n_vendors) &&
               any_member(inv, g, class_matches, f->classes, f->n_classes) &&
               any_member(inv, g, driver_matches, f->drivers, f->n_drivers);
}

int pci_address_normalize(const char *s, char ret[static 16]) {
        unsigned domain = 0, bus, slot, function;
        char tail;
        int n;

        if (!s || strlen(s) > 15)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                        return -EINVAL;

        n = sscanf(s, "%x:%x:%x.%x%c", &domain, &bus, &slot, &function, &tail);
        if (n != 4) {
                domain = 0;
                n = sscanf(s, "%x:%x.%x%c", &bus, &slot, &function, &tail);
                if (n != 3)
                        return -EINVAL;
        }
        if (domain > 0xffff || bus > 0xff || slot > 0x1f || function > 7)
                return -EINVAL;

        snprintf(ret, 16, "%04x:%02x:%02x.%x", domain, bus, slot, function);
        return 0;
}

char *describe_missing_group(const Inventory *inv, unsigned id) {
        char *s = NULL;
        int k;

        if (inv->n_groups == 0)
                k = asprintf(&s, "no IOMMU group %u: the host has no IOMMU groups (%s)", id,
                             inv->host.iommu_off_reason ?: "the IOMMU is on but translates no device");
        else
                k = asprintf(&s, "no IOMMU group %u (the host has %zu groups, %u to %u)", id, inv->n_groups,
                             inv->groups[0].id, inv->groups[inv->n_groups - 1].id);
        return k < 0 ? NULL : s;
}

char *describe_missing_device(const Inventory *inv, const char *address) {
        char *s = NULL;

        if (asprintf(&s, "no PCI device %s (the host has %zu PCI devices)", address, inv->n_devices) < 0)
                return NULL;
        return s;
}

int query_resolve_group(const Inventory *inv, unsigned group, const char *device, unsigned *ret, char **ret_message) {
        char address[16];
        const Device *d;

        if (!device || !*device) {
                *ret = group;
                return 0;
        }
        if (pci_address_normalize(device, address) < 0) {
                *ret_message = strprintf("'%s' is not a PCI address (expected DDDD:BB:SS.F, e.g. 0000:01:00.0)", device);
                return -EINVAL;
        }
        d = inventory_find_device(inv, address);
        if (!d) {
                *ret_message = describe_missing_device(inv, address);
                return -ENOENT;
        }
        if (d->group < 0) {
                *ret_message = strprintf("%s is in no IOMMU group: the IOMMU does not translate it", address);
                return -ENODEV;
        }
        *ret = (unsigned)d->group;
        return 0;
}
