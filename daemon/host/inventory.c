/* The inventory snapshot: loading it in one pass, and lookups. */
#include <errno.h>
#include <inttypes.h>
#include <pci/pci.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "fileio.h"
#include "inventory-private.h"
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
