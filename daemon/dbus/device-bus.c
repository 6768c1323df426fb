/* org.iommud1.Device on /org/iommud1/device/<escaped address>: one object per PCI device. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "bus-objects.h"
#include "macro.h"
#include "manager.h"
#include "string-util.h"
#include "strv.h"

int device_bus_path(const char *address, char **ret) {
        return sd_bus_path_encode(BUS_DEVICE_PREFIX, address, ret);
}

static int device_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                       void **ret_found, sd_bus_error *ret_error) {
        BusServer *s = userdata;
        _cleanup_(freep) char *address = NULL;
        const Device *d;

        if (sd_bus_path_decode(path, BUS_DEVICE_PREFIX, &address) <= 0)
                return 0;
        d = inventory_find_device(manager_get_inventory(s->manager), address);
        if (!d)
                return 0;
        *ret_found = (void *)d;
        return 1;
}

static int device_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                            sd_bus_error *ret_error) {
        BusServer *s = userdata;
        const Inventory *inv = manager_get_inventory(s->manager);
        _cleanup_(strv_freep) char **nodes = NULL;
        size_t n = 0;

        FOREACH_ARRAY (d, inv->devices, inv->n_devices) {
                char *path = NULL;

                if (device_bus_path(d->address, &path) < 0 || strv_push(&nodes, &n, path) < 0) {
                        free(path);
                        return -ENOMEM;
                }
        }
        *ret_nodes = TAKE_PTR(nodes);
        return 0;
}

static int property_get_group_object(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *ret_error) {
        const Device *d = userdata;
        _cleanup_(freep) char *group_path = NULL;

        /* "/" is the usual "no object" for an object path property. */
        if (d->group < 0)
                return sd_bus_message_append_basic(reply, 'o', "/");
        if (group_bus_path(d->group, &group_path) < 0)
                return -ENOMEM;
        return sd_bus_message_append_basic(reply, 'o', group_path);
}

static int property_get_sriov_role(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *ret_error) {
        const Device *d = userdata;

        return sd_bus_message_append_basic(reply, 's',
                                           d->sriov_role == SRIOV_PF   ? "pf"
                                           : d->sriov_role == SRIOV_VF ? "vf"
                                                                       : "none");
}

int device_bus_emit_changes(sd_bus *bus, const Device *old, const Device *new) {
        _cleanup_(freep) char *path = NULL;
        BusChangedNames c = {};
        int r;

        bus_changed_add_if(&c, old->vendor_id != new->vendor_id, "VendorId");
        bus_changed_add_if(&c, old->device_id != new->device_id, "DeviceId");
        bus_changed_add_if(&c, old->subsystem_vendor_id != new->subsystem_vendor_id, "SubsystemVendorId");
        bus_changed_add_if(&c, old->subsystem_device_id != new->subsystem_device_id, "SubsystemDeviceId");
        bus_changed_add_if(&c, old->class_code != new->class_code, "ClassCode");
        bus_changed_add_if(&c, old->revision != new->revision, "Revision");
        bus_changed_add_if(&c, !streq_ptr(old->vendor_name, new->vendor_name), "VendorName");
        bus_changed_add_if(&c, !streq_ptr(old->device_name, new->device_name), "DeviceName");
        bus_changed_add_if(&c, !streq_ptr(old->class_name, new->class_name), "ClassName");
        bus_changed_add_if(&c, !streq_ptr(old->driver, new->driver), "Driver");
        bus_changed_add_if(&c, !streq_ptr(old->driver_override, new->driver_override), "DriverOverride");
        bus_changed_add_if(&c, old->group != new->group, "Group");
        bus_changed_add_if(&c, old->group != new->group, "GroupObject");
        bus_changed_add_if(&c, !streq_ptr(old->iommu_unit, new->iommu_unit), "IommuUnit");
        bus_changed_add_if(&c, old->numa_node != new->numa_node, "NumaNode");
        bus_changed_add_if(&c, !streq_ptr(old->parent, new->parent), "Parent");
        bus_changed_add_if(&c, old->sriov_role != new->sriov_role, "SriovRole");
        bus_changed_add_if(&c, !streq_ptr(old->sriov_pf, new->sriov_pf), "SriovPhysicalFunction");
        bus_changed_add_if(&c, old->sriov_numvfs != new->sriov_numvfs, "SriovNumVfs");
        bus_changed_add_if(&c, old->vfio_bound != new->vfio_bound, "VfioBound");
        bus_changed_add_if(&c, old->boot_vga != new->boot_vga, "BootVga");
        bus_changed_add_if(&c, !strv_equal(old->reset_methods, new->reset_methods), "ResetMethods");
        bus_changed_add_if(&c, !strv_equal(old->net_interfaces, new->net_interfaces), "NetInterfaces");
        bus_changed_add_if(&c, !strv_equal(old->block_devices, new->block_devices), "BlockDevices");
        bus_changed_add_if(&c, !strv_equal(old->drm_cards, new->drm_cards), "DrmCards");
        if (c.n == 0)
                return 0;

        r = device_bus_path(new->address, &path);
        if (r < 0)
                return r;
        return bus_emit_changed(bus, path, BUS_DEVICE_INTERFACE, &c);
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define INT_PROPERTY(name, field)                                                                           \
        SD_BUS_PROPERTY(name, "i", bus_property_get_int, offsetof(Device, field), CHANGES)
#define STRING_PROPERTY(name, field)                                                                        \
        SD_BUS_PROPERTY(name, "s", bus_property_get_string, offsetof(Device, field), CHANGES)
#define STRV_PROPERTY(name, field)                                                                          \
        SD_BUS_PROPERTY(name, "as", bus_property_get_strv, offsetof(Device, field), CHANGES)

/* Numbers that can be unknown are int32 with -1 for "unknown", as in the JSON dump. */
const sd_bus_vtable device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Address", "s", bus_property_get_string, offsetof(Device, address),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        INT_PROPERTY("VendorId", vendor_id),
        INT_PROPERTY("DeviceId", device_id),
        INT_PROPERTY("SubsystemVendorId", subsystem_vendor_id),
        INT_PROPERTY("SubsystemDeviceId", subsystem_device_id),
        INT_PROPERTY("ClassCode", class_code),
        INT_PROPERTY("Revision", revision),
        STRING_PROPERTY("VendorName", vendor_name),
        STRING_PROPERTY("DeviceName", device_name),
        STRING_PROPERTY("ClassName", class_name),
        STRING_PROPERTY("Driver", driver),
        STRING_PROPERTY("DriverOverride", driver_override),
        INT_PROPERTY("Group", group),
        SD_BUS_PROPERTY("GroupObject", "o", property_get_group_object, 0, CHANGES),
        STRING_PROPERTY("IommuUnit", iommu_unit),
        INT_PROPERTY("NumaNode", numa_node),
        STRING_PROPERTY("Parent", parent),
        SD_BUS_PROPERTY("SriovRole", "s", property_get_sriov_role, 0, CHANGES),
        STRING_PROPERTY("SriovPhysicalFunction", sriov_pf),
        INT_PROPERTY("SriovNumVfs", sriov_numvfs),
        SD_BUS_PROPERTY("VfioBound", "b", bus_property_get_bool, offsetof(Device, vfio_bound), CHANGES),
        INT_PROPERTY("BootVga", boot_vga),
        STRV_PROPERTY("ResetMethods", reset_methods),
        STRV_PROPERTY("NetInterfaces", net_interfaces),
        STRV_PROPERTY("BlockDevices", block_devices),
        STRV_PROPERTY("DrmCards", drm_cards),
        SD_BUS_VTABLE_END,
};

int device_bus_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback_vtable(s->bus, NULL, BUS_DEVICE_PREFIX, BUS_DEVICE_INTERFACE, device_vtable,
                                       device_find, s);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(s->bus, NULL, BUS_DEVICE_PREFIX, device_enumerate, s);
}
