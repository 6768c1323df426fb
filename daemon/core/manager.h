/* The Manager owns the live inventory: it builds it, keeps it current from udev events and rescans,
 * and publishes every change, numbered, to its subscribers (gRPC Watch streams, D-Bus signals). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "histogram.h"
#include "inventory.h"
#include "roots.h"

struct event_base;

typedef struct Manager Manager;
typedef struct ManagerSubscription ManagerSubscription;

typedef struct ManagerOptions {
        const char *sysfs_root, *proc_root, *dev_root; /* NULL = "/" */
        const char *pci_ids;                           /* NULL = built-in default */
        unsigned rescan_interval_sec;                  /* safety-net rescan; 0 = never */
        bool udev;                                     /* follow udev events */
        unsigned max_subscribers;
} ManagerOptions;

/* A change, numbered from 1 in the order published. The change's pointers are valid only during
 * the callback; the inventory it describes is already updated. */
typedef struct ManagerEvent {
        uint64_t sequence;
        const InventoryChange *change;
} ManagerEvent;

typedef void (*ManagerEventFunc)(Manager *m, const ManagerEvent *event, void *userdata);

/* Opens the roots and reads the first inventory; fails with a logged message when the roots are
 * unusable. Starts following udev and the periodic rescan when the options ask for them. */
int manager_new(struct event_base *base, const ManagerOptions *options, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}

const Inventory *manager_get_inventory(const Manager *m);
/* The number of the last event published (0 before any). */
uint64_t manager_get_sequence(const Manager *m);

/* Re-reads all roots and publishes only the differences. *ret_n_changes (may be NULL) says how many. */
int manager_rescan(Manager *m, unsigned *ret_n_changes);

/* The roots the manager reads (and operations write). */
const HostRoots *manager_get_roots(const Manager *m);

/* Re-reads one device and its groups now and publishes the differences (after an operation). */
int manager_refresh_device(Manager *m, const char *address);

/* The udev event handler, public so that tests can feed events without udev. */
void manager_handle_uevent(Manager *m, int subsystem, const char *action, const char *sysname);

/* Every event from now on goes to callback, until the subscription is freed (which is allowed inside
 * the callback). -EUSERS when max_subscribers are subscribed. */
int manager_subscribe(Manager *m, ManagerEventFunc callback, void *userdata, ManagerSubscription **ret);
/* The same for the daemon's own modules: never limited, not counted. */
int manager_subscribe_internal(Manager *m, ManagerEventFunc callback, void *userdata, ManagerSubscription **ret);
ManagerSubscription *manager_subscription_free(ManagerSubscription *s);
static inline void manager_subscription_freep(ManagerSubscription **s) {
        manager_subscription_free(*s);
}
unsigned manager_n_subscribers(const Manager *m);

/* What the manager counted since it started, for the metrics. */
typedef struct ManagerStats {
        uint64_t uevents;  /* udev events handled */
        Histogram rescans; /* seconds per full rescan */
} ManagerStats;

const ManagerStats *manager_get_stats(const Manager *m);
