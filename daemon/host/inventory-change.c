/* Differences between inventory states: a full diff after a rescan, and in-place refreshes of one device. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "inventory-private.h"
#include "macro.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

static const char *const change_kind_names[_INVENTORY_CHANGE_MAX] = {
        [INVENTORY_DEVICE_ADDED] = "device-added",
        [INVENTORY_DEVICE_REMOVED] = "device-removed",
        [INVENTORY_DEVICE_DRIVER_CHANGED] = "driver-changed",
        [INVENTORY_DEVICE_UPDATED] = "device-updated",
        [INVENTORY_GROUP_ADDED] = "group-added",
        [INVENTORY_GROUP_REMOVED] = "group-removed",
        [INVENTORY_GROUP_TYPE_CHANGED] = "type-changed",
        [INVENTORY_GROUP_UPDATED] = "group-updated",
        [INVENTORY_HOST_UPDATED] = "host-updated",
};

const char *inventory_change_kind_to_string(InventoryChangeKind k) {
        return k < _INVENTORY_CHANGE_MAX ? change_kind_names[k] : NULL;
}

static void emit(InventoryChangeFunc cb, void *userdata, InventoryChangeKind kind, const Device *old_device,
                 const Device *new_device, const Group *old_group, const Group *new_group) {
        InventoryChange change = {
                .kind = kind,
                .old_device = old_device,
                .new_device = new_device,
                .old_group = old_group,
                .new_group = new_group,
        };

        cb(&change, userdata);
}

static void diff_device(const Device *old, const Device *new, InventoryChangeFunc cb, void *userdata) {
        if (!old && !new)
                return;
        if (!old) {
                emit(cb, userdata, INVENTORY_DEVICE_ADDED, NULL, new, NULL, NULL);
                return;
        }
        if (!new) {
                emit(cb, userdata, INVENTORY_DEVICE_REMOVED, old, NULL, NULL, NULL);
                return;
        }
        if (!streq_ptr(old->driver, new->driver)) {
                emit(cb, userdata, INVENTORY_DEVICE_DRIVER_CHANGED, old, new, NULL, NULL);
                return;
        }
        if (!device_equal(old, new))
                emit(cb, userdata, INVENTORY_DEVICE_UPDATED, old, new, NULL, NULL);
}

static bool groups_share_a_member(const Group *a, const Group *b) {
        for (char **m = a->devices; m && *m; m++)
                if (strv_contains(b->devices, *m))
                        return true;
        return false;
}

static void diff_group(const Group *old, const Group *new, InventoryChangeFunc cb, void *userdata) {
        if (!old && !new)
                return;
        /* A group that lost or regained its last member is the same group, shown empty between. */
        if (old && new && !groups_share_a_member(old, new) && old->n_devices > 0 && new->n_devices > 0) {
                /* Same number, different hardware: the kernel reused the id. */
                emit(cb, userdata, INVENTORY_GROUP_REMOVED, NULL, NULL, old, NULL);
                emit(cb, userdata, INVENTORY_GROUP_ADDED, NULL, NULL, NULL, new);
                return;
        }
        if (!old) {
                emit(cb, userdata, INVENTORY_GROUP_ADDED, NULL, NULL, NULL, new);
                return;
        }
        if (!new) {
                emit(cb, userdata, INVENTORY_GROUP_REMOVED, NULL, NULL, old, NULL);
                return;
        }
        if (!streq_ptr(old->type_raw, new->type_raw))
                emit(cb, userdata, INVENTORY_GROUP_TYPE_CHANGED, NULL, NULL, old, new);
        else if (!group_equal(old, new))
                emit(cb, userdata, INVENTORY_GROUP_UPDATED, NULL, NULL, old, new);
}

static bool host_changed(const HostInfo *old_host, const Unit *old_units, size_t n_old_units,
                         const HostInfo *new_host, const Unit *new_units, size_t n_new_units) {
        if (n_old_units != n_new_units || !host_info_equal(old_host, new_host))
                return true;
        for (size_t k = 0; k < n_old_units; k++)
                if (!unit_equal(&old_units[k], &new_units[k]))
                        return true;
        return false;
}

void inventory_diff(const Inventory *old, const Inventory *new, InventoryChangeFunc cb, void *userdata) {
        size_t i = 0, j = 0;

        /* Both arrays are sorted: walk them side by side. */
        while (i < old->n_devices || j < new->n_devices) {
                int c = i >= old->n_devices   ? 1
                        : j >= new->n_devices ? -1
                                              : strcmp(old->devices[i].address, new->devices[j].address);

                if (c < 0)
                        diff_device(&old->devices[i++], NULL, cb, userdata);
                else if (c > 0)
                        diff_device(NULL, &new->devices[j++], cb, userdata);
                else
                        diff_device(&old->devices[i++], &new->devices[j++], cb, userdata);
        }

        i = j = 0;
        while (i < old->n_groups || j < new->n_groups) {
                int c = i >= old->n_groups   ? 1
                        : j >= new->n_groups ? -1
                        : old->groups[i].id < new->groups[j].id ? -1
                        : old->groups[i].id > new->groups[j].id ? 1
                                                                : 0;

                if (c < 0)
                        diff_group(&old->groups[i++], NULL, cb, userdata);
                else if (c > 0)
                        diff_group(NULL, &new->groups[j++], cb, userdata);
                else
                        diff_group(&old->groups[i++], &new->groups[j++], cb, userdata);
        }

        /* Host settings and units change rarely (module loads), so they are compared whole. */
        if (host_changed(&old->host, old->units, old->n_units, &new->host, new->units, new->n_units))
                emit(cb, userdata, INVENTORY_HOST_UPDATED, NULL, NULL, NULL, NULL);
}

/* Index where 'key' is or would be inserted in a sorted array. */
static size_t device_position(const Inventory *inv, const char *address, bool *ret_found) {
        size_t lo = 0, hi = inv->n_devices;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(inv->devices[mid].address, address);

                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

static size_t group_position(const Inventory *inv, unsigned id, bool *ret_found) {
        size_t lo = 0, hi = inv->n_groups;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (inv->groups[mid].id == id) {
                        *ret_found = true;
                        return mid;
                }
                if (inv->groups[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

/* Puts *item (or nothing, when item is NULL) at pos, replacing the element there when found. The
 * replaced element is moved to *ret_old for the caller to free. */
static int array_put(void **array, size_t *n, size_t elem_size, size_t pos, bool found, const void *item,
                     void *ret_old) {
        uint8_t *a;

        if (found)
                memcpy(ret_old, (uint8_t *)*array + pos * elem_size, elem_size);

        if (item && found) {
                memcpy((uint8_t *)*array + pos * elem_size, item, elem_size);
                return 0;
        }
        if (item) {
                a = realloc(*array, (*n + 1) * elem_size);
                if (!a)
                        return -ENOMEM;
                memmove(a + (pos + 1) * elem_size, a + pos * elem_size, (*n - pos) * elem_size);
                memcpy(a + pos * elem_size, item, elem_size);
                *array = a;
                (*n)++;
                return 0;
        }
        if (found) {
                a = *array;
                memmove(a + pos * elem_size, a + (pos + 1) * elem_size, (*n - pos - 1) * elem_size);
                (*n)--;
        }
        return 0;
}

int inventory_refresh_group(HostReader *reader, Inventory *inv, unsigned id, InventoryChangeFunc cb, void *userdata) {
        _cleanup_(freep) char *dir = NULL;
        Group new = {}, old = {};
        bool found, exists;
        size_t pos;
        int r;

        if (asprintf(&dir, "sys/kernel/iommu_groups/%u", id) < 0)
                return -ENOMEM;
        exists = exists_at(reader->roots->sysfs_fd, dir) > 0;
        if (exists) {
                r = group_load(reader->roots, inv, NULL, id, &new);
                if (r < 0) {
                        group_done(&new);
                        return r;
                }
                /* The kernel sends the last member's remove event before it frees the group: an
                 * empty group is one on its way out, and no event will tell us when it is gone --
                 * unless a VFIO user holds it, whose node's removal is an event. A rescan shows
                 * every group the kernel shows. */
                if (new.n_devices == 0 && !new.vfio_node) {
                        group_done(&new);
                        exists = false;
                }
        }

        pos = group_position(inv, id, &found);
        /* Counted here, not over the whole model: an event costs the same on any host. */
        inv->n_errors += (exists ? new.errors.n : 0) - (found ? inv->groups[pos].errors.n : 0);
        /* In place first: whoever is told about the change reads the inventory as it is now. */
        r = array_put((void **)&inv->groups, &inv->n_groups, sizeof(Group), pos, found, exists ? &new : NULL, &old);
        if (r < 0) {
                group_done(&new);
                return r;
        }
        diff_group(found ? &old : NULL, exists ? &inv->groups[pos] : NULL, cb, userdata);
        if (found)
                group_done(&old);
        return 0;
}

int inventory_refresh_device(HostReader *reader, Inventory *inv, const char *address, InventoryChangeFunc cb,
                             void *userdata) {
        _cleanup_(freep) char *entry = NULL;
        Device new = {}, old = {};
        int old_group = -1, new_group;
        bool found, exists;
        size_t pos;
        int r;

        if (!pci_address_is_valid(address))
                return -EINVAL;
        if (asprintf(&entry, "sys/bus/pci/devices/%s", address) < 0)
                return -ENOMEM;

        exists = exists_at(reader->roots->sysfs_fd, entry) > 0;
        if (exists) {
                r = device_load(reader->roots, reader->pacc, NULL, address, &new);
                if (r < 0) {
                        device_done(&new);
                        return r;
                }
        }
        new_group = exists ? new.group : -1;

        pos = device_position(inv, address, &found);
        if (found)
                old_group = inv->devices[pos].group;
        inv->n_errors += (exists ? new.errors.n : 0) - (found ? inv->devices[pos].errors.n : 0);
        /* In place first: whoever is told about the change reads the inventory as it is now. */
        r = array_put((void **)&inv->devices, &inv->n_devices, sizeof(Device), pos, found, exists ? &new : NULL,
                      &old);
        if (r < 0) {
                device_done(&new);
                return r;
        }
        diff_device(found ? &old : NULL, exists ? &inv->devices[pos] : NULL, cb, userdata);
        if (found)
                device_done(&old);

        /* The groups follow the device: the one it left, the one it joined. */
        if (old_group >= 0) {
                r = inventory_refresh_group(reader, inv, (unsigned)old_group, cb, userdata);
                if (r < 0)
                        return r;
        }
        if (new_group >= 0 && new_group != old_group) {
                r = inventory_refresh_group(reader, inv, (unsigned)new_group, cb, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int inventory_refresh_host(HostReader *reader, Inventory *inv, InventoryChangeFunc cb, void *userdata) {
        HostInfo host = {};
        Unit *units = NULL;
        size_t n_units = 0;
        bool changed;
        int r;

        r = host_info_load(reader->roots, &host);
        if (r >= 0)
                r = units_load(reader->roots, &host, &units, &n_units);
        if (r < 0) {
                host_info_done(&host);
                return r;
        }

        changed = host_changed(&inv->host, inv->units, inv->n_units, &host, units, n_units);

        host_info_done(&inv->host);
        units_free(inv->units, inv->n_units);
        inv->host = host;
        inv->units = units;
        inv->n_units = n_units;
        inventory_count_errors(inv);

        if (changed)
                emit(cb, userdata, INVENTORY_HOST_UPDATED, NULL, NULL, NULL, NULL);
        return 0;
}
