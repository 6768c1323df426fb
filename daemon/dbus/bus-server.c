/* The D-Bus service as a whole: the connection, the objects, the name, and the Manager's events
 * turned into PropertiesChanged, InterfacesAdded and InterfacesRemoved. */
#include "bus-server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-authorize.h"
#include "bus-error.h"
#include "bus-libevent.h"
#include "bus-objects.h"
#include "host-usage.h"
#include "log.h"
#include "macro.h"
#include "manager.h"

static int open_bus(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (strcmp(address, "system") == 0)
                return sd_bus_open_system_with_description(ret, "iommud");
        if (strcmp(address, "session") == 0)
                return sd_bus_open_user_with_description(ret, "iommud");

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_set_description(bus, "iommud");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int emit_object_added(sd_bus *bus, int (*path_of)(const void *, char **), const void *object) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = path_of(object, &path);
        if (r < 0)
                return r;
        return sd_bus_emit_object_added(bus, path);
}

static int group_path_of(const void *g, char **ret) {
        return group_bus_path(((const Group *)g)->id, ret);
}

static int device_path_of(const void *d, char **ret) {
        return device_bus_path(((const Device *)d)->address, ret);
}

/* The object is gone from the inventory already, so sd-bus cannot look its interfaces up: name them. */
static int emit_object_removed(sd_bus *bus, int (*path_of)(const void *, char **), const void *object,
                               const char *interface) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = path_of(object, &path);
        if (r < 0)
                return r;
        return sd_bus_emit_interfaces_removed(bus, path, interface, "org.freedesktop.DBus.Peer",
                                              "org.freedesktop.DBus.Introspectable",
                                              "org.freedesktop.DBus.Properties", NULL);
}

static int emit_change(sd_bus *bus, const InventoryChange *c) {
        int r;

        switch (c->kind) {
        case INVENTORY_DEVICE_ADDED:
                r = emit_object_added(bus, device_path_of, c->new_device);
                return r < 0 ? r : manager_bus_emit_changes(bus, false);
        case INVENTORY_DEVICE_REMOVED:
                r = emit_object_removed(bus, device_path_of, c->old_device, BUS_DEVICE_INTERFACE);
                return r < 0 ? r : manager_bus_emit_changes(bus, false);
        case INVENTORY_DEVICE_DRIVER_CHANGED:
        case INVENTORY_DEVICE_UPDATED:
                return device_bus_emit_changes(bus, c->old_device, c->new_device);
        case INVENTORY_GROUP_ADDED:
                r = emit_object_added(bus, group_path_of, c->new_group);
                return r < 0 ? r : manager_bus_emit_changes(bus, false);
        case INVENTORY_GROUP_REMOVED:
                r = emit_object_removed(bus, group_path_of, c->old_group, BUS_GROUP_INTERFACE);
                return r < 0 ? r : manager_bus_emit_changes(bus, false);
        case INVENTORY_GROUP_TYPE_CHANGED:
        case INVENTORY_GROUP_UPDATED:
                return group_bus_emit_changes(bus, c->old_group, c->new_group);
        case INVENTORY_HOST_UPDATED:
                return manager_bus_emit_changes(bus, true);
        default:
                return 0;
        }
}

static void on_manager_event(Manager *m, const ManagerEvent *event, void *userdata) {
        BusServer *s = userdata;
        int r;

        if (!event->change) {
                r = group_bus_emit_status(s->bus, event->status);
                if (r < 0)
                        log_warning_errno(r, "Failed to emit the D-Bus signal for change %llu (status of group %u), "
                                          "ignoring: %m", (unsigned long long)event->sequence, event->status->group);
                bus_libevent_rearm(s->event);
                return;
        }
        r = emit_change(s->bus, event->change);
        if (r < 0)
                log_warning_errno(r, "Failed to emit the D-Bus signal for change %llu (%s), ignoring: %m",
                                  (unsigned long long)event->sequence,
                                  inventory_change_kind_to_string(event->change->kind));
        /* Signals that did not fit into the socket wait for write readiness. */
        bus_libevent_rearm(s->event);
}

static void on_bus_disconnect(BusLibevent *b, int error, void *userdata) {
        BusServer *s = userdata;

        log_warning_errno(error, "Lost the D-Bus connection, continuing without D-Bus: %m");
        /* Nothing more can be sent; gRPC goes on. */
        s->subscription = manager_subscription_free(s->subscription);
}

BusServer *bus_server_of(sd_bus *bus) {
        return sd_bus_slot_get_userdata(sd_bus_get_current_slot(bus));
}

int bus_server_new(struct event_base *base, Manager *manager, Operations *operations, const Config *config,
                   GroupCache *groups, const char *address, BusReloadFunc reload, void *userdata,
                   BusServer **ret) {
        _cleanup_(bus_server_freep) BusServer *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = manager;
        s->operations = operations;
        s->config = config;
        s->reload = reload;
        s->reload_userdata = userdata;

        r = bus_error_register();
        if (r < 0)
                return r;
        r = open_bus(address, &s->bus);
        if (r < 0)
                return r;
        r = bus_authorizer_new(s->bus, config, groups, &s->authorizer);
        if (r >= 0)
                r = manager_bus_register(s);
        if (r >= 0)
                r = group_bus_register(s);
        if (r >= 0)
                r = device_bus_register(s);
        if (r < 0)
                return r;

        /* Objects first, then the name: a client that sees the name appear finds everything. */
        r = sd_bus_request_name(s->bus, BUS_NAME, 0);
        if (r < 0)
                return r;

        r = manager_subscribe_internal(manager, on_manager_event, s, &s->subscription);
        if (r < 0)
                return r;
        r = bus_libevent_attach(base, s->bus, on_bus_disconnect, s, &s->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

void bus_server_groups_changed(BusServer *s) {
        bus_authorizer_groups_changed(s->authorizer);
}

BusServer *bus_server_free(BusServer *s) {
        if (!s)
                return NULL;
        manager_subscription_free(s->subscription);
        host_usage_free(s->usage);
        bus_authorizer_free(s->authorizer);
        bus_libevent_free(s->event);
        /* Flush: the answers of the last calls and the name's release reach the bus. */
        sd_bus_flush_close_unref(s->bus);
        free(s);
        return NULL;
}
