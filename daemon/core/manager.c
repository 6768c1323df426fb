/* The live inventory and the event bus that reports its changes. */
#include "manager.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log-ids.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "string-util.h"
#include "uevent-monitor.h"

struct ManagerSubscription {
        Manager *manager;
        ManagerEventFunc callback;
        void *userdata;
        bool dead;    /* freed while the bus was publishing; unlinked afterwards */
        bool counted; /* a client's: counts against max_subscribers */
        ManagerSubscription *next;
};

struct Manager {
        struct event_base *base;
        HostRoots *roots;
        HostReader *reader;
        Inventory *inventory;
        UeventMonitor *uevents;
        struct event *rescan_timer;
        /* Groups whose member left: the kernel frees such a group only after the device's last
         * uevent, so they are read again until they are gone or whole (GROUP_CHECK_TRIES times). */
        struct event *group_check_timer;
        unsigned *group_checks;
        size_t n_group_checks;
        unsigned group_check_tries;

        uint64_t sequence;
        ManagerSubscription *subscribers;
        unsigned n_subscribers, max_subscribers;
        unsigned publishing; /* nesting depth of publish(); subscriptions are unlinked only at 0 */
        unsigned n_changes;  /* counted during one rescan or refresh */
        ManagerStats stats;
        char incarnation[33];
        const EventCause *cause;
        ManagerSettleFunc settle;
        void *settle_userdata;
        bool settling;
        bool rescanning; /* settled once, at the end */
};

static const char *const cause_kinds[_EVENT_CAUSE_KIND_MAX] = {
        [EVENT_CAUSE_UNKNOWN] = "",        [EVENT_CAUSE_OPERATION] = "operation", [EVENT_CAUSE_LIBVIRT] = "libvirt",
        [EVENT_CAUSE_HOTPLUG] = "hotplug", [EVENT_CAUSE_RESCAN] = "rescan",       [EVENT_CAUSE_START] = "start",
};

const char *event_cause_kind_to_string(EventCauseKind k) {
        return k < _EVENT_CAUSE_KIND_MAX ? cause_kinds[k] : "";
}

char *event_cause_describe(const EventCause *c) {
        switch (c ? c->kind : EVENT_CAUSE_UNKNOWN) {
        case EVENT_CAUSE_OPERATION:
                return strprintf("operation %llu (%s) by %s", (unsigned long long)c->operation_id,
                                 c->operation ?: "?", c->peer ?: "iommud");
        case EVENT_CAUSE_LIBVIRT:
                return strprintf("libvirt domain '%s' (uuid %s) %s", c->domain_name ?: "?", c->domain_uuid ?: "?",
                                 c->started ? "started" : "stopped");
        case EVENT_CAUSE_HOTPLUG:
                return strdup("hot-plug (a udev event)");
        case EVENT_CAUSE_RESCAN:
                return strdup("a rescan of the host");
        case EVENT_CAUSE_START:
                return strdup("iommud's start");
        default:
                return strdup("");
        }
}

const char *manager_get_incarnation(const Manager *m) {
        return m->incarnation;
}

const EventCause *manager_set_cause(Manager *m, const EventCause *cause) {
        const EventCause *old = m->cause;

        m->cause = cause;
        return old;
}

void manager_set_settle(Manager *m, ManagerSettleFunc settle, void *userdata) {
        m->settle = settle;
        m->settle_userdata = userdata;
}

static void settle(Manager *m, bool rescan) {
        /* Changes published while settling are settled by the same call. */
        if (!m->settle || m->settling || m->publishing > 0 || (m->rescanning && !rescan))
                return;
        m->settling = true;
        m->settle(m, rescan, m->settle_userdata);
        m->settling = false;
}

const Inventory *manager_get_inventory(const Manager *m) {
        return m->inventory;
}

uint64_t manager_get_sequence(const Manager *m) {
        return m->sequence;
}

const HostRoots *manager_get_roots(const Manager *m) {
        return m->roots;
}

unsigned manager_n_subscribers(const Manager *m) {
        return m->n_subscribers;
}

const ManagerStats *manager_get_stats(const Manager *m) {
        return &m->stats;
}

static double now_seconds(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unlink_dead_subscribers(Manager *m) {
        ManagerSubscription **p = &m->subscribers;

        while (*p) {
                ManagerSubscription *s = *p;

                if (s->dead) {
                        *p = s->next;
                        free(s);
                } else
                        p = &s->next;
        }
}

static void publish(Manager *m, ManagerEvent *event) {
        static const EventCause unknown = {};

        event->sequence = ++m->sequence;
        event->cause = m->cause ?: &unknown;
        m->n_changes++;
        m->publishing++;
        for (ManagerSubscription *s = m->subscribers; s; s = s->next)
                if (!s->dead)
                        s->callback(m, event, s->userdata);
        m->publishing--;
        if (m->publishing == 0)
                unlink_dead_subscribers(m);
}

static void on_inventory_change(const InventoryChange *change, void *userdata);

#define GROUP_CHECK_INTERVAL_USEC (100 * 1000)
#define GROUP_CHECK_TRIES 30

static void group_check_later(Manager *m, unsigned group) {
        struct timeval tv = { .tv_usec = GROUP_CHECK_INTERVAL_USEC };
        unsigned *slot;

        if (!m->group_check_timer)
                return; /* no loop (--dump): nothing follows the host anyway */
        FOREACH_ARRAY(g, m->group_checks, m->n_group_checks)
                if (*g == group)
                        return;
        slot = array_append(&m->group_checks, &m->n_group_checks, sizeof(*slot));
        if (!slot) {
                log_oom();
                return;
        }
        *slot = group;
        m->group_check_tries = 0;
        evtimer_add(m->group_check_timer, &tv);
}

/* Settled: the kernel no longer shows the group, or shows it with members that are all known. */
static bool group_settled(const Inventory *inv, unsigned id) {
        const Group *g = inventory_find_group(inv, id);

        if (!g)
                return true;
        if (g->n_devices == 0)
                return false;
        for (char **a = g->devices; a && *a; a++)
                if (!inventory_find_device(inv, *a))
                        return false;
        return true;
}

static void on_group_check_timer(evutil_socket_t fd, short what, void *userdata) {
        static const EventCause hotplug = { .kind = EVENT_CAUSE_HOTPLUG };
        struct timeval tv = { .tv_usec = GROUP_CHECK_INTERVAL_USEC };
        Manager *m = userdata;
        const EventCause *saved = manager_set_cause(m, &hotplug);
        size_t kept = 0;

        for (size_t i = 0; i < m->n_group_checks; i++) {
                unsigned id = m->group_checks[i];
                int r = inventory_refresh_group(m->reader, m->inventory, id, on_inventory_change, m);

                if (r < 0)
                        log_warning_errno(r, "Failed to read group %u again after its member left, ignoring: %m", id);
                if (r >= 0 && !group_settled(m->inventory, id) && m->group_check_tries + 1 < GROUP_CHECK_TRIES)
                        m->group_checks[kept++] = id;
        }
        manager_set_cause(m, saved);
        m->n_group_checks = kept;
        m->group_check_tries++;
        if (kept > 0)
                evtimer_add(m->group_check_timer, &tv);
}

static void on_inventory_change(const InventoryChange *change, void *userdata) {
        Manager *m = userdata;
        ManagerEvent event = { .change = change };

        if (change->kind == INVENTORY_DEVICE_REMOVED && change->old_device && change->old_device->group >= 0)
                group_check_later(m, (unsigned)change->old_device->group);
        publish(m, &event);
        log_debug("event %llu: %s", (unsigned long long)event.sequence, inventory_change_kind_to_string(change->kind));
        settle(m, false);
}

void manager_publish_status(Manager *m, const GroupStatusChange *change) {
        ManagerEvent event = { .status = change };

        publish(m, &event);
        log_debug("event %llu: status of group %u", (unsigned long long)event.sequence, change->group);
}

static int rescan(Manager *m, unsigned *ret_n_changes) {
        _cleanup_(inventory_freep) Inventory *old = NULL;
        Inventory *new = NULL;
        double start = now_seconds();
        int r;

        r = inventory_read(m->reader, &new);
        if (r < 0)
                return log_error_errno(r, "Failed to rescan the host: %m");

        /* Swap first, so subscribers that look at the inventory see the new state. */
        old = m->inventory;
        m->inventory = new;
        m->n_changes = 0;
        m->rescanning = true;
        inventory_diff(old, new, on_inventory_change, m);
        m->rescanning = false;
        /* What only a rescan sees (host uses) is judged again for every group. */
        settle(m, true);
        histogram_observe(&m->stats.rescans, now_seconds() - start);

        log_debug("Rescan: %u changes.", m->n_changes);
        if (ret_n_changes)
                *ret_n_changes = m->n_changes;
        return 0;
}

int manager_rescan(Manager *m, unsigned *ret_n_changes) {
        static const EventCause cause = { .kind = EVENT_CAUSE_RESCAN };
        const EventCause *saved = manager_set_cause(m, m->cause ?: &cause);
        int r = rescan(m, ret_n_changes);

        manager_set_cause(m, saved);
        return r;
}

int manager_refresh_device(Manager *m, const char *address) {
        return inventory_refresh_device(m->reader, m->inventory, address, on_inventory_change, m);
}

void manager_handle_uevent(Manager *m, int subsystem, const char *action, const char *sysname) {
        static const EventCause hotplug = { .kind = EVENT_CAUSE_HOTPLUG };
        const EventCause *saved = manager_set_cause(m, &hotplug);
        unsigned group;
        int r;

        m->stats.uevents++;
        switch (subsystem) {
        case UEVENT_PCI:
                r = inventory_refresh_device(m->reader, m->inventory, sysname, on_inventory_change, m);
                break;
        case UEVENT_VFIO:
                /* /dev/vfio/<N> came or went; "vfio" itself (the container node) is host state. */
                if (sscanf(sysname, "%u", &group) == 1)
                        r = inventory_refresh_group(m->reader, m->inventory, group, on_inventory_change, m);
                else
                        r = inventory_refresh_host(m->reader, m->inventory, on_inventory_change, m);
                break;
        case UEVENT_MISC:
                r = inventory_refresh_host(m->reader, m->inventory, on_inventory_change, m);
                break;
        default:
                r = 0;
                break;
        }
        manager_set_cause(m, saved);
        if (r < 0)
                log_warning_errno(r, "Failed to update the inventory after '%s' of %s, ignoring: %m", action, sysname);
}

static void on_uevent(UeventSubsystem subsystem, const char *action, const char *sysname, void *userdata) {
        manager_handle_uevent(userdata, subsystem, action, sysname);
}

static void on_rescan_timer(evutil_socket_t fd, short what, void *userdata) {
        (void)manager_rescan(userdata, NULL);
}

/* Random; where there is no entropy yet, the time and pid still differ from the last run's. */
static void new_incarnation(char ret[static 33]) {
        uint8_t id[16] = {};

        if (getrandom(id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id)) {
                uint64_t t = (uint64_t)(now_seconds() * 1e9);
                uint32_t pid = (uint32_t)getpid();

                memcpy(id, &t, sizeof(t));
                memcpy(id + 8, &pid, sizeof(pid));
        }
        for (size_t i = 0; i < sizeof(id); i++)
                snprintf(ret + 2 * i, 3, "%02x", id[i]);
}

int manager_new(struct event_base *base, const ManagerOptions *options, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_oom();
        m->base = base;
        m->max_subscribers = options->max_subscribers;
        new_incarnation(m->incarnation);
        histogram_init(&m->stats.rescans, histogram_seconds_bounds, histogram_seconds_n_bounds);

        r = host_roots_open(options->sysfs_root, options->proc_root, options->dev_root, &m->roots);
        if (r < 0)
                return r;
        r = host_reader_new(m->roots, options->pci_ids, &m->reader);
        if (r < 0)
                return log_oom();
        r = inventory_read(m->reader, &m->inventory);
        if (r < 0)
                return log_error_errno(r, "Failed to read the host inventory: %m");
        if (m->inventory->n_errors > 0)
                log_event(LOG_WARNING, ((LogFields){ .message_id = LOG_ID_HOST_PROBLEMS }),
                          "%zu problems while reading the host; the API reports them per item.",
                          m->inventory->n_errors);

        if (options->udev) {
                /* Start listening only after the first read: a change in between is caught by the
                 * next rescan, while an event about a device we have not read yet would be lost. */
                r = uevent_monitor_new(base, on_uevent, m, &m->uevents);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen to udev events: %m");
        }

        m->group_check_timer = evtimer_new(base, on_group_check_timer, m);
        if (!m->group_check_timer)
                return log_oom();

        if (options->rescan_interval_sec > 0) {
                struct timeval tv = { .tv_sec = options->rescan_interval_sec };

                m->rescan_timer = event_new(base, -1, EV_PERSIST, on_rescan_timer, m);
                if (!m->rescan_timer || event_add(m->rescan_timer, &tv) < 0)
                        return log_oom();
        }

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Subscribers own their subscriptions; detach what is left so a late free is harmless. */
        for (ManagerSubscription *s = m->subscribers, *next; s; s = next) {
                next = s->next;
                s->manager = NULL;
                s->next = NULL;
        }
        if (m->rescan_timer)
                event_free(m->rescan_timer);
        if (m->group_check_timer)
                event_free(m->group_check_timer);
        free(m->group_checks);
        uevent_monitor_free(m->uevents);
        inventory_free(m->inventory);
        host_reader_free(m->reader);
        host_roots_free(m->roots);
        free(m);
        return NULL;
}

static int subscribe(Manager *m, bool counted, ManagerEventFunc callback, void *userdata,
                     ManagerSubscription **ret) {
        ManagerSubscription *s;

        if (counted && m->max_subscribers > 0 && m->n_subscribers >= m->max_subscribers)
                return -EUSERS;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->counted = counted;
        s->callback = callback;
        s->userdata = userdata;
        s->next = m->subscribers;
        m->subscribers = s;
        if (counted)
                m->n_subscribers++;
        *ret = s;
        return 0;
}

int manager_subscribe(Manager *m, ManagerEventFunc callback, void *userdata, ManagerSubscription **ret) {
        return subscribe(m, true, callback, userdata, ret);
}

int manager_subscribe_internal(Manager *m, ManagerEventFunc callback, void *userdata, ManagerSubscription **ret) {
        return subscribe(m, false, callback, userdata, ret);
}

ManagerSubscription *manager_subscription_free(ManagerSubscription *s) {
        Manager *m;

        if (!s)
                return NULL;
        m = s->manager;
        if (!m) {
                free(s);
                return NULL;
        }
        if (s->counted)
                m->n_subscribers--;
        s->dead = true;
        s->manager = NULL;
        if (m->publishing == 0)
                unlink_dead_subscribers(m);
        return NULL;
}
