/* The inventory snapshot: loading it in one pass, lookups, and its single JSON mapping. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pci/pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "fileio.h"
#include "inventory-private.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "strv.h"

/* libpci reports fatal problems (a corrupt pci.ids) through a callback that must not return. */
__attribute__((noreturn, format(printf, 1, 2))) static void on_libpci_error(char *msg, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, msg);
        vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        log_error("libpci: %s", buf);
        abort();
}

__attribute__((format(printf, 1, 2))) static void on_libpci_warning(char *msg, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, msg);
        vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        log_debug("libpci: %s", buf);
}

__attribute__((format(printf, 1, 2))) static void on_libpci_debug(char *msg, ...) {
}

struct pci_access *libpci_open(const HostRoots *roots, const char *pci_ids) {
        struct pci_access *pacc = pci_alloc();
        char *sysfs_bus = NULL;

        if (!pacc)
                return NULL;
        pacc->error = on_libpci_error;
        pacc->warning = on_libpci_warning;
        pacc->debug = on_libpci_debug;
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        /* Config space is handed to libpci from our own root-confined reads (pci_setup_cache); point
         * its sysfs path into the root anyway, so that nothing can make it read the real /sys. */
        if (asprintf(&sysfs_bus, "%s/sys/bus/pci", roots->sysfs_path) >= 0) {
                pci_set_param(pacc, "sysfs.path", sysfs_bus);
                free(sysfs_bus);
        }
        pci_set_name_list_path(pacc, (char *)(pci_ids ?: PCI_IDS_PATH), 0);
        pci_init(pacc);
        return pacc;
}

static int compare_devices(const void *key, const void *elem) {
        return strcmp(key, ((const Device *)elem)->address);
}

const Device *inventory_find_device(const Inventory *inv, const char *address) {
        if (!address || inv->n_devices == 0)
                return NULL;
        return bsearch(address, inv->devices, inv->n_devices, sizeof(Device), compare_devices);
}

static int compare_group_id(const void *key, const void *elem) {
        unsigned id = *(const unsigned *)key, other = ((const Group *)elem)->id;

        return id < other ? -1 : id > other;
}

const Group *inventory_find_group(const Inventory *inv, unsigned id) {
        if (inv->n_groups == 0)
                return NULL;
        return bsearch(&id, inv->groups, inv->n_groups, sizeof(Group), compare_group_id);
}

void inventory_count_errors(Inventory *inv) {
        inv->n_errors = inv->errors.n + inv->host.errors.n;
        FOREACH_ARRAY(u, inv->units, inv->n_units)
                inv->n_errors += u->errors.n;
        FOREACH_ARRAY(d, inv->devices, inv->n_devices)
                inv->n_errors += d->errors.n;
        FOREACH_ARRAY(g, inv->groups, inv->n_groups)
                inv->n_errors += g->errors.n;
}

int host_reader_new(const HostRoots *roots, const char *pci_ids, HostReader **ret) {
        HostReader *reader;

        reader = calloc(1, sizeof(*reader));
        if (!reader)
                return -ENOMEM;
        reader->roots = roots;
        reader->pacc = libpci_open(roots, pci_ids);
        if (!reader->pacc) {
                free(reader);
                return -ENOMEM;
        }
        *ret = reader;
        return 0;
}

HostReader *host_reader_free(HostReader *reader) {
        if (!reader)
                return NULL;
        pci_cleanup(reader->pacc);
        free(reader);
        return NULL;
}

int inventory_read(HostReader *reader, Inventory **ret) {
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        _cleanup_(host_listing_done) HostListing listing = {};
        int r;

        inv = calloc(1, sizeof(*inv));
        if (!inv)
                return -ENOMEM;

        r = host_info_load(reader->roots, &inv->host);
        if (r < 0)
                return r;

        r = units_load(reader->roots, &inv->host, &inv->units, &inv->n_units);
        if (r < 0)
                return r;

        /* Listed once for every device and group; on failure each asks for itself. */
        if (read_dir_at(reader->roots->sysfs_fd, "sys/kernel/iommu_groups", &listing.groups, &listing.n_groups) < 0)
                listing.groups = NULL;
        r = read_dir_at(reader->roots->dev_fd, "dev/vfio", &listing.vfio, &listing.n_vfio);
        if (r == -ENOENT)
                listing.vfio = calloc(1, sizeof(char *));

        r = devices_load(reader->roots, reader->pacc, &listing, &inv->errors, &inv->devices, &inv->n_devices);
        if (r < 0)
                return r;

        r = groups_load(reader->roots, inv, &listing, &inv->errors, &inv->groups, &inv->n_groups);
        if (r < 0)
                return r;

        inventory_count_errors(inv);
        *ret = TAKE_PTR(inv);
        return 0;
}

int inventory_load(const HostRoots *roots, const char *pci_ids, Inventory **ret) {
        _cleanup_(host_reader_freep) HostReader *reader = NULL;
        int r;

        r = host_reader_new(roots, pci_ids, &reader);
        if (r < 0)
                return r;
        return inventory_read(reader, ret);
}

Inventory *inventory_free(Inventory *inv) {
        if (!inv)
                return NULL;
        host_info_done(&inv->host);
        units_free(inv->units, inv->n_units);
        devices_free(inv->devices, inv->n_devices);
        groups_free(inv->groups, inv->n_groups);
        item_errors_done(&inv->errors);
        free(inv);
        return NULL;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_object *json_hex_or_null(int32_t v, int digits) {
        char buf[16];

        if (v < 0)
                return NULL;
        snprintf(buf, sizeof(buf), "%0*" PRIx32, digits, (uint32_t)v);
        return json_object_new_string(buf);
}

static json_object *json_int_or_null(int v) {
        return v >= 0 ? json_object_new_int(v) : NULL;
}

static json_object *json_strv(char *const *l) {
        json_object *a = json_object_new_array();

        for (; l && *l; l++)
                json_object_array_add(a, json_object_new_string(*l));
        return a;
}

static const char *header_type_to_string(int t) {
        switch (t) {
        case 0:
                return "endpoint";
        case 1:
                return "bridge";
        case 2:
                return "cardbus";
        default:
                return NULL;
        }
}

static json_object *sriov_to_json(const Device *d) {
        json_object *o;

        if (d->sriov_role == SRIOV_NONE)
                return NULL;
        o = json_object_new_object();
        json_object_object_add(o, "role", json_object_new_string(d->sriov_role == SRIOV_PF ? "pf" : "vf"));
        if (d->sriov_role == SRIOV_PF) {
                json_object_object_add(o, "totalvfs", json_int_or_null(d->sriov_totalvfs));
                json_object_object_add(o, "numvfs", json_int_or_null(d->sriov_numvfs));
        } else
                json_object_object_add(o, "pf", json_string_or_null(d->sriov_pf));
        return o;
}

static json_object *acs_to_json(const Device *d) {
        json_object *o;
        char buf[8];

        if (!d->config_extended)
                return NULL; /* unknown: the extended config space was not readable */
        o = json_object_new_object();
        json_object_object_add(o, "present", json_object_new_boolean(d->acs_present));
        if (d->acs_present) {
                snprintf(buf, sizeof(buf), "%04x", d->acs_cap);
                json_object_object_add(o, "cap", json_object_new_string(buf));
                snprintf(buf, sizeof(buf), "%04x", d->acs_ctrl);
                json_object_object_add(o, "ctrl", json_object_new_string(buf));
        }
        return o;
}

json_object *device_to_json(const Device *d) {
        json_object *o = json_object_new_object();
        char serial[32];

        json_object_object_add(o, "address", json_object_new_string(d->address));
        json_object_object_add(o, "vendor_id", json_hex_or_null(d->vendor_id, 4));
        json_object_object_add(o, "device_id", json_hex_or_null(d->device_id, 4));
        json_object_object_add(o, "subsystem_vendor_id", json_hex_or_null(d->subsystem_vendor_id, 4));
        json_object_object_add(o, "subsystem_device_id", json_hex_or_null(d->subsystem_device_id, 4));
        json_object_object_add(o, "class", json_hex_or_null(d->class_code, 6));
        json_object_object_add(o, "revision", json_hex_or_null(d->revision, 2));
        json_object_object_add(o, "vendor_name", json_string_or_null(d->vendor_name));
        json_object_object_add(o, "device_name", json_string_or_null(d->device_name));
        json_object_object_add(o, "subsystem_vendor_name", json_string_or_null(d->subsystem_vendor_name));
        json_object_object_add(o, "subsystem_name", json_string_or_null(d->subsystem_name));
        json_object_object_add(o, "class_name", json_string_or_null(d->class_name));
        json_object_object_add(o, "header_type", json_string_or_null(header_type_to_string(d->header_type)));
        json_object_object_add(o, "multifunction", d->config_read ? json_object_new_boolean(d->multifunction) : NULL);
        json_object_object_add(o, "pcie", d->config_read && d->header_type >= 0 ? json_object_new_boolean(d->is_pcie) : NULL);
        json_object_object_add(o, "driver", json_string_or_null(d->driver));
        json_object_object_add(o, "driver_override", json_string_or_null(d->driver_override));
        json_object_object_add(o, "group", json_int_or_null(d->group));
        json_object_object_add(o, "iommu_unit", json_string_or_null(d->iommu_unit));
        json_object_object_add(o, "numa_node", json_int_or_null(d->numa_node));
        json_object_object_add(o, "parent", json_string_or_null(d->parent));
        json_object_object_add(o, "sysfs_path", json_string_or_null(d->sysfs_path));
        json_object_object_add(o, "sriov", sriov_to_json(d));
        json_object_object_add(o, "acs", acs_to_json(d));
        json_object_object_add(o, "ats", d->config_extended ? json_object_new_boolean(d->ats) : NULL);
        json_object_object_add(o, "pri", d->config_extended ? json_object_new_boolean(d->pri) : NULL);
        json_object_object_add(o, "pasid", d->config_extended ? json_object_new_boolean(d->pasid) : NULL);
        if (d->serial_present) {
                /* lspci's spelling: bytes high to low, dash separated. */
                snprintf(serial, sizeof(serial), "%02x-%02x-%02x-%02x-%02x-%02x-%02x-%02x",
                         (unsigned)(d->serial >> 56) & 0xff, (unsigned)(d->serial >> 48) & 0xff,
                         (unsigned)(d->serial >> 40) & 0xff, (unsigned)(d->serial >> 32) & 0xff,
                         (unsigned)(d->serial >> 24) & 0xff, (unsigned)(d->serial >> 16) & 0xff,
                         (unsigned)(d->serial >> 8) & 0xff, (unsigned)d->serial & 0xff);
                json_object_object_add(o, "serial", json_object_new_string(serial));
        } else
                json_object_object_add(o, "serial", NULL);
        json_object_object_add(o, "reset_methods", d->reset_methods ? json_strv(d->reset_methods) : NULL);
        json_object_object_add(o, "boot_vga", d->boot_vga >= 0 ? json_object_new_boolean(d->boot_vga) : NULL);
        json_object_object_add(o, "removable", json_string_or_null(d->removable));
        json_object_object_add(o, "net_interfaces", json_strv(d->net_interfaces));
        json_object_object_add(o, "block_devices", json_strv(d->block_devices));
        json_object_object_add(o, "drm_cards", json_strv(d->drm_cards));
        json_object_object_add(o, "modalias", json_string_or_null(d->modalias));
        json_object_object_add(o, "errors", item_errors_to_json(&d->errors));
        return o;
}

json_object *group_to_json(const Group *g) {
        json_object *o = json_object_new_object(), *regions = json_object_new_array(),
                    *blockers = json_object_new_array(), *type_change = json_object_new_object(), *refused;

        json_object_object_add(o, "id", json_object_new_int((int)g->id));
        json_object_object_add(o, "type", json_string_or_null(g->type_raw));
        json_object_object_add(o, "devices", json_strv(g->devices));

        FOREACH_ARRAY(r, g->reserved_regions, g->n_reserved_regions) {
                json_object *region = json_object_new_object();

                json_object_object_add(region, "start", json_object_new_string(r->start));
                json_object_object_add(region, "end", json_object_new_string(r->end));
                json_object_object_add(region, "type", json_object_new_string(r->type));
                json_object_array_add(regions, region);
        }
        json_object_object_add(o, "reserved_regions", regions);

        json_object_object_add(o, "viable", json_object_new_boolean(g->viable));
        FOREACH_ARRAY(b, g->blockers, g->n_blockers) {
                json_object *blocker = json_object_new_object();

                json_object_object_add(blocker, "device", json_string_or_null(b->device));
                json_object_object_add(blocker, "driver", json_string_or_null(b->driver));
                json_object_object_add(blocker, "reason", json_string_or_null(b->reason));
                json_object_object_add(blocker, "kind", json_string_or_null(blocker_kind_to_string(b->kind)));
                json_object_array_add(blockers, blocker);
        }
        json_object_object_add(o, "blockers", blockers);

        json_object_object_add(type_change, "writable", json_object_new_boolean(g->type_change.writable));
        json_object_object_add(type_change, "allowed", json_strv(g->type_change.allowed));
        json_object_object_add(type_change, "reason", json_string_or_null(g->type_change.reason));
        refused = json_object_new_array();
        FOREACH_ARRAY(r, g->type_change.refused, g->type_change.n_refused) {
                json_object *refusal = json_object_new_object();

                json_object_object_add(refusal, "type", json_object_new_string(r->type));
                json_object_object_add(refusal, "reason", json_string_or_null(r->reason));
                json_object_array_add(refused, refusal);
        }
        json_object_object_add(type_change, "refused", refused);
        json_object_object_add(o, "type_change", type_change);

        json_object_object_add(o, "vfio_node", json_object_new_boolean(g->vfio_node));
        json_object_object_add(o, "errors", item_errors_to_json(&g->errors));
        return o;
}


/* ---- streaming ----------------------------------------------------------------------------------- */

