/* The org.iommud1 D-Bus service: the Manager, its groups and devices on a bus, on the daemon's loop. */
#pragma once

#include <stdio.h>

typedef struct Config Config;
typedef struct GroupCache GroupCache;
typedef struct Manager Manager;
typedef struct Operations Operations;
struct event_base;

typedef struct BusServer BusServer;

/* The daemon's "reload the settings" (the Reload method); 0 or -errno. */
typedef int (*BusReloadFunc)(void *userdata);

/* Connects to address ("system", "session" or a D-Bus address such as "unix:path=/run/bus"),
 * publishes the objects, takes the name org.iommud1 and follows the Manager's events. The group
 * methods run as operations; operations must outlive the server, or be freed first (pending calls
 * are then answered with its cancellation). config is borrowed and read at every call, so a
 * reloaded config applies at once; groups (borrowed) answers for group principals. Returns -errno
 * without logging, so that the caller decides whether that is fatal. */
int bus_server_new(struct event_base *base, Manager *manager, Operations *operations, const Config *config,
                   GroupCache *groups, const char *address, BusReloadFunc reload, void *userdata,
                   BusServer **ret);
/* The group cache has new answers (calls waiting for them go on). */
void bus_server_groups_changed(BusServer *s);
BusServer *bus_server_free(BusServer *s);
static inline void bus_server_freep(BusServer **s) {
        bus_server_free(*s);
}

/* The introspection XML of org.iommud1.Manager, .Group and .Device (iommud --bus-introspect). */
int bus_server_print_introspection(FILE *f);
