/* Inside the D-Bus transport: the server's state and what each object file provides. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "bus-server.h"
#include "bus-util.h"
#include "inventory.h"

#define BUS_NAME "org.iommud1"
#define BUS_PATH "/org/iommud1"
#define BUS_GROUP_PREFIX BUS_PATH "/group"
#define BUS_DEVICE_PREFIX BUS_PATH "/device"
#define BUS_MANAGER_INTERFACE "org.iommud1.Manager"
#define BUS_GROUP_INTERFACE "org.iommud1.Group"
#define BUS_DEVICE_INTERFACE "org.iommud1.Device"

typedef struct BusAuthorizer BusAuthorizer;
typedef struct BusLibevent BusLibevent;
typedef struct Config Config;
typedef struct Manager Manager;
typedef struct ManagerSubscription ManagerSubscription;
typedef struct Operations Operations;

struct BusServer {
        sd_bus *bus;
        BusLibevent *event;
        Manager *manager;
        Operations *operations;
        const Config *config;
        BusReloadFunc reload;
        void *reload_userdata;
        ManagerSubscription *subscription;
        BusAuthorizer *authorizer;
        /* The host's facts (open nodes, mounts, links) read for the message being answered, so that
         * GetAll or GetManagedObjects reads them once, not once per group and property. */
        struct HostUsage *usage;
        uint64_t usage_cookie;
        const void *usage_message;
};

extern const sd_bus_vtable manager_vtable[];
extern const sd_bus_vtable group_vtable[];
extern const sd_bus_vtable device_vtable[];

/* Each registers its vtable (the groups and devices as fallback vtables with a find function and a
 * node enumerator) on s->bus, with the lifetime of the bus. */
int manager_bus_register(BusServer *s);
int group_bus_register(BusServer *s);
int device_bus_register(BusServer *s);

/* Object paths: "/org/iommud1/group/7", "/org/iommud1/device/0000_3a01_3a00_2e0". */
int group_bus_path(unsigned id, char **ret);
int device_bus_path(const char *address, char **ret);

/* PropertiesChanged for what differs between the two states of one object. */
int group_bus_emit_changes(sd_bus *bus, const Group *old, const Group *new);
typedef struct GroupStatusChange GroupStatusChange;
int group_bus_emit_status(sd_bus *bus, const GroupStatusChange *c);
int device_bus_emit_changes(sd_bus *bus, const Device *old, const Device *new);
/* The Manager's properties after a host change (all) or a group/device added or removed (counts). */
int manager_bus_emit_changes(sd_bus *bus, bool host);

/* The server of a fallback vtable's getter or method: their userdata is the object found, the
 * server is the registration's (the current slot's) userdata. */
BusServer *bus_server_of(sd_bus *bus);
