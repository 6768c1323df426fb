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

typedef enum EventCauseKind {
        EVENT_CAUSE_UNKNOWN,
        EVENT_CAUSE_OPERATION, /* operation operation_id (operation) asked for by peer */
        EVENT_CAUSE_LIBVIRT,   /* libvirt domain domain_name started (started) or stopped */
        EVENT_CAUSE_HOTPLUG,   /* a udev event */
        EVENT_CAUSE_RESCAN,    /* a rescan found it */
        EVENT_CAUSE_START,     /* the daemon's start (recovery) */
        _EVENT_CAUSE_KIND_MAX,
} EventCauseKind;

/* Why the inventory or a group's status changed. */
typedef struct EventCause {
        EventCauseKind kind;
        uint64_t operation_id;
        const char *operation; /* "PrepareGroup", ... */
        const char *peer;      /* who asked */
        const char *domain_name, *domain_uuid;
        bool started;          /* libvirt: the domain started (else stopped) */
} EventCause;

const char *event_cause_kind_to_string(EventCauseKind k); /* "", "operation", "libvirt", "hotplug", "rescan", "start" */
/* "operation 12 (PrepareGroup) by unix uid=0 ...", "libvirt domain 'vm1' stopped", "hot-plug"; the
 * caller frees it. */
char *event_cause_describe(const EventCause *c);

/* A group's status changed (group-status.h): which parts, and the state before and now. */
typedef struct GroupStatusChange {
        unsigned group;
        int old_state, new_state; /* GroupStateKind; -1 when the group had no status before */
        unsigned changed;         /* bit mask of GroupStatusField */
} GroupStatusChange;

/* A change, numbered from 1 in the order published: either an inventory change or a group's status
 * change, with its cause (never NULL). The pointers are valid only during the callback; the
 * inventory it describes is already updated. */
typedef struct ManagerEvent {
        uint64_t sequence;
        const InventoryChange *change;   /* NULL for a status change */
        const GroupStatusChange *status; /* NULL for an inventory change */
        const EventCause *cause;
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
/* This daemon instance, in which sequence numbers count (random, 32 hex digits, new at every start). */
const char *manager_get_incarnation(const Manager *m);

/* The cause of what is published from now on (NULL: unknown, or hot-plug while a uevent is handled,
 * rescan while rescanning); returns the one before, to be set back. cause must stay valid until then. */
const EventCause *manager_set_cause(Manager *m, const EventCause *cause);
/* Publishes a group's status change with the current cause. */
void manager_publish_status(Manager *m, const GroupStatusChange *change);

/* Called after each top-level publication (the subscribers have seen an event) and after each rescan
 * (rescan true), so that what depends on the inventory can publish its own changes after the change
 * that caused them. One hook; NULL removes it. */
typedef void (*ManagerSettleFunc)(Manager *m, bool rescan, void *userdata);
void manager_set_settle(Manager *m, ManagerSettleFunc settle, void *userdata);

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
