/* A group's status, computed once for every transport (group-status.h). */
#include "group-status.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host-usage.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "query.h"
#include "string-util.h"
#include "strv.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))

static const char *const owner_kinds[] = {
        [GROUP_OWNER_NONE] = "",
        [GROUP_OWNER_LIBVIRT] = "libvirt",
        [GROUP_OWNER_CLIENT] = "client",
};

const char *group_owner_kind_to_string(GroupOwnerKind k) {
        return k < ELEMENTSOF(owner_kinds) ? owner_kinds[k] : "";
}

static const char *const field_names[_GROUP_STATUS_FIELD_MAX] = {
        [GROUP_STATUS_STATE] = "state",         [GROUP_STATUS_OWNER] = "owner",
        [GROUP_STATUS_USERS] = "users",         [GROUP_STATUS_HOST_USES] = "host_uses",
        [GROUP_STATUS_VIABLE] = "viable",       [GROUP_STATUS_TYPE_CHANGE] = "type_change",
        [GROUP_STATUS_FINDINGS] = "findings",
};

const char *group_status_field_to_string(GroupStatusField f) {
        return f < _GROUP_STATUS_FIELD_MAX ? field_names[f] : NULL;
}

/* The types SetDomainType takes, in the order the verdicts are given. */
static const char *const verdict_types[GROUP_TYPE_VERDICTS] = { "identity", "DMA", "DMA-FQ", "auto" };

void group_status_done(GroupStatus *s) {
        free(s->owner_client);
        free(s->domain_name);
        free(s->domain_uuid);
        FOREACH_ARRAY(u, s->users, s->n_users) {
                free(u->domain_name);
                free(u->domain_uuid);
                free(u->command);
                free(u->text);
        }
        free(s->users);
        host_uses_done(&s->host_uses);
        strv_free(s->type_allowed);
        for (size_t i = 0; i < GROUP_TYPE_VERDICTS; i++)
                free(s->verdicts[i].text);
        strv_free(s->findings);
        free(s->empty_reason);
        *s = (GroupStatus){};
}

static GroupStatusUser *add_user(GroupStatus *s) {
        GroupStatusUser *users = realloc(s->users, (s->n_users + 1) * sizeof(*users));

        if (!users)
                return NULL;
        s->users = users;
        users[s->n_users] = (GroupStatusUser){};
        return &users[s->n_users++];
}

/* The running libvirt domain with a member as hostdev, and every process that holds the group's
 * VFIO node open. */
static int find_users(Operations *ops, const HostUsage *usage, const Group *g, GroupStatus *s) {
        _cleanup_(freep) char *node = strprintf("/dev/vfio/%u", g->id);
        _cleanup_(freep) NodeHolder *holders = NULL;
        GroupStatusUser *u;
        GroupUser user;
        size_t n = 0;
        int r;

        if (!node)
                return -ENOMEM;
        if (operations_group_user(ops, g, &user)) {
                u = add_user(s);
                if (!u)
                        return -ENOMEM;
                u->domain_name = strdup(user.domain_name);
                u->domain_uuid = strdup(user.domain_uuid);
                u->text = strprintf("libvirt domain '%s' (uuid %s)", user.domain_name, user.domain_uuid);
                if (!u->domain_name || !u->domain_uuid || !u->text)
                        return -ENOMEM;
        }
        if (!usage || !g->vfio_node)
                return 0;
        r = host_usage_device_holders(manager_get_roots(operations_get_manager(ops)), usage, node, &holders, &n);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        for (size_t i = 0; i < n; i++) {
                u = add_user(s);
                if (!u)
                        return -ENOMEM;
                u->process = true;
                u->pid = holders[i].pid;
                u->command = strdup(holders[i].comm ?: "");
                u->text = strprintf("process %d (%s) holds %s open", holders[i].pid, holders[i].comm ?: "?", node);
                if (!u->command || !u->text)
                        return -ENOMEM;
        }
        return 0;
}

int group_status_compute(Operations *ops, const HostUsage *usage, const Group *g, GroupStatusFlags flags,
                         GroupStatus *ret) {
        _cleanup_(host_usage_freep) HostUsage *own = NULL;
        GroupStatus s = { .group = g->id, .viable = g->viable, .empty = g->empty };
        const char *owner = NULL;
        size_t n_allowed = 0;
        GroupUser user;
        int r;

        if (!usage && !(flags & GROUP_STATUS_OWNER_ONLY)) {
                r = host_usage_read(manager_get_roots(operations_get_manager(ops)), &own);
                if (r < 0)
                        return r;
                usage = own;
        }
        s.state = operations_group_state(ops, g, &owner);
        if (g->empty_reason) {
                s.empty_reason = strdup(g->empty_reason);
                if (!s.empty_reason)
                        goto oom;
        }
        /* The guest that runs on it now wins over who asked for it. */
        if (s.state == GROUP_IN_USE && operations_group_user(ops, g, &user)) {
                s.owner_kind = GROUP_OWNER_LIBVIRT;
                s.domain_name = strdup(user.domain_name);
                s.domain_uuid = strdup(user.domain_uuid);
                if (!s.domain_name || !s.domain_uuid)
                        goto oom;
        } else if (owner)
                s.owner_kind = GROUP_OWNER_CLIENT;
        if (owner) {
                s.owner_client = strdup(owner);
                if (!s.owner_client)
                        goto oom;
        }

        r = find_users(ops, usage, g, &s);
        if (r >= 0 && !(flags & GROUP_STATUS_OWNER_ONLY))
                r = operations_judge_group(ops, usage, g, &s.host_uses);
        if (r >= 0)
                r = operations_group_findings(ops, g, &s.findings);
        if (r < 0) {
                group_status_done(&s);
                return r;
        }
        if (flags & GROUP_STATUS_OWNER_ONLY) {
                *ret = s;
                return 0;
        }

        s.type_allowed = calloc(1, sizeof(char *));
        if (!s.type_allowed)
                goto oom;
        for (size_t i = 0; i < GROUP_TYPE_VERDICTS; i++) {
                GroupTypeVerdict *v = &s.verdicts[i];

                v->type = verdict_types[i];
                /* An empty group has nothing the operation could act on. */
                if (g->empty) {
                        v->text = strprintf("%s: refused: the group has no members", v->type);
                        if (!v->text)
                                goto oom;
                        continue;
                }
                r = operations_type_verdict(ops, g, &s.host_uses, v->type, &v->allowed, &v->current, &v->text);
                if (r < 0) {
                        group_status_done(&s);
                        return r;
                }
                if (v->allowed && strv_push_dup(&s.type_allowed, &n_allowed, v->type) < 0)
                        goto oom;
        }
        *ret = s;
        return 0;
oom:
        group_status_done(&s);
        return -ENOMEM;
}

/* FNV-1a over the strings that make up a field, each with its terminating NUL. */
#define FNV_OFFSET 0xcbf29ce484222325ULL

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

static uint64_t hash_str(uint64_t h, const char *s) {
        return hash_bytes(h, s ?: "", strlen(s ?: "") + 1);
}

void group_status_digest(const GroupStatus *s, GroupStatusDigest *ret) {
        uint64_t *f = ret->field;
        uint32_t v;

        for (size_t i = 0; i < _GROUP_STATUS_FIELD_MAX; i++)
                f[i] = FNV_OFFSET;
        v = s->state;
        f[GROUP_STATUS_STATE] = hash_bytes(f[GROUP_STATUS_STATE], &v, sizeof(v));
        v = s->owner_kind;
        f[GROUP_STATUS_OWNER] = hash_bytes(f[GROUP_STATUS_OWNER], &v, sizeof(v));
        f[GROUP_STATUS_OWNER] = hash_str(f[GROUP_STATUS_OWNER], s->owner_client);
        f[GROUP_STATUS_OWNER] = hash_str(f[GROUP_STATUS_OWNER], s->domain_name);
        f[GROUP_STATUS_OWNER] = hash_str(f[GROUP_STATUS_OWNER], s->domain_uuid);
        FOREACH_ARRAY(u, s->users, s->n_users)
                f[GROUP_STATUS_USERS] = hash_str(f[GROUP_STATUS_USERS], u->text);
        FOREACH_ARRAY(u, s->host_uses.items, s->host_uses.n)
                f[GROUP_STATUS_HOST_USES] = hash_str(f[GROUP_STATUS_HOST_USES], u->text);
        v = s->viable;
        f[GROUP_STATUS_VIABLE] = hash_bytes(f[GROUP_STATUS_VIABLE], &v, sizeof(v));
        for (size_t i = 0; i < GROUP_TYPE_VERDICTS; i++)
                f[GROUP_STATUS_TYPE_CHANGE] = hash_str(f[GROUP_STATUS_TYPE_CHANGE], s->verdicts[i].text);
        for (char **l = s->findings; l && *l; l++)
                f[GROUP_STATUS_FINDINGS] = hash_str(f[GROUP_STATUS_FINDINGS], *l);
}

unsigned group_status_digest_diff(const GroupStatusDigest *a, const GroupStatusDigest *b) {
        unsigned mask = 0;

        for (size_t i = 0; i < _GROUP_STATUS_FIELD_MAX; i++)
                if (a->field[i] != b->field[i])
                        mask |= 1u << i;
        return mask;
}

/* ---- following the statuses ---------------------------------------------------------------------- */

typedef struct TrackedStatus {
        bool known;
        bool dirty;
        GroupStateKind state;
        GroupStatusDigest digest;
} TrackedStatus;

struct StatusTracker {
        Operations *ops;
        Manager *manager;
        ManagerSubscription *subscription;
        TrackedStatus *groups; /* by group id */
        size_t n_groups;
        unsigned *dirty; /* group ids marked */
        size_t n_dirty, n_dirty_allocated;
        bool all; /* every group is marked */
        struct event *deferred; /* judges what hot-plug marked, once per turn of the loop */
};

static TrackedStatus *tracked(StatusTracker *t, unsigned id) {
        if (id >= t->n_groups) {
                size_t n = MAX((size_t)id + 1, t->n_groups * 2);
                TrackedStatus *g = realloc(t->groups, n * sizeof(*g));

                if (!g)
                        return NULL;
                memset(g + t->n_groups, 0, (n - t->n_groups) * sizeof(*g));
                t->groups = g;
                t->n_groups = n;
        }
        return &t->groups[id];
}

void status_tracker_mark(StatusTracker *t, unsigned group) {
        TrackedStatus *g = tracked(t, group);

        if (!g) {
                t->all = true; /* without memory for one mark, judge them all */
                return;
        }
        if (g->dirty)
                return;
        if (t->n_dirty == t->n_dirty_allocated) {
                size_t n = MAX(t->n_dirty_allocated * 2, (size_t)16);
                unsigned *d = realloc(t->dirty, n * sizeof(*d));

                if (!d) {
                        t->all = true;
                        return;
                }
                t->dirty = d;
                t->n_dirty_allocated = n;
        }
        g->dirty = true;
        t->dirty[t->n_dirty++] = group;
}

/* Judges g; publishes a change when it had a known status that differs. */
static int judge(StatusTracker *t, const HostUsage *usage, const Group *g, bool publish) {
        _cleanup_(group_status_done) GroupStatus s = {};
        GroupStatusDigest digest;
        TrackedStatus *ts;
        unsigned changed;
        int r;

        r = group_status_compute(t->ops, usage, g, GROUP_STATUS_ALL, &s);
        if (r < 0)
                return r;
        ts = tracked(t, g->id);
        if (!ts)
                return -ENOMEM;
        group_status_digest(&s, &digest);
        changed = ts->known ? group_status_digest_diff(&ts->digest, &digest) : 0;
        if (publish && changed) {
                GroupStatusChange c = {
                        .group = g->id,
                        .old_state = (int)ts->state,
                        .new_state = (int)s.state,
                        .changed = changed,
                };

                ts->digest = digest;
                ts->state = s.state;
                manager_publish_status(t->manager, &c);
                return 0;
        }
        ts->known = true;
        ts->digest = digest;
        ts->state = s.state;
        return 0;
}

void status_tracker_flush(StatusTracker *t) {
        _cleanup_(host_usage_freep) HostUsage *usage = NULL;
        const Inventory *inv = manager_get_inventory(t->manager);
        _cleanup_(freep) unsigned *dirty = NULL;
        size_t n_dirty;
        bool all;
        int r;

        if (!t->all && t->n_dirty == 0)
                return;
        /* Marks made while publishing are judged by the next flush. */
        dirty = TAKE_PTR(t->dirty);
        n_dirty = t->n_dirty;
        all = t->all;
        t->n_dirty = t->n_dirty_allocated = 0;
        t->all = false;
        for (size_t i = 0; i < n_dirty; i++)
                if (dirty[i] < t->n_groups)
                        t->groups[dirty[i]].dirty = false;

        r = host_usage_read(manager_get_roots(t->manager), &usage);
        if (r < 0) {
                log_warning_errno(r, "Cannot read what the host uses, group statuses not judged again, ignoring: %m");
                return;
        }
        if (all) {
                FOREACH_ARRAY(g, inv->groups, inv->n_groups)
                        if (judge(t, usage, g, true) < 0)
                                log_oom();
                return;
        }
        for (size_t i = 0; i < n_dirty; i++) {
                const Group *g = inventory_find_group(inv, dirty[i]);

                if (g && judge(t, usage, g, true) < 0)
                        log_oom();
        }
}

static void on_manager_event(Manager *m, const ManagerEvent *event, void *userdata) {
        StatusTracker *t = userdata;
        const InventoryChange *c = event->change;
        TrackedStatus *ts;

        if (!c)
                return;
        if (c->old_device && c->old_device->group >= 0)
                status_tracker_mark(t, (unsigned)c->old_device->group);
        if (c->new_device && c->new_device->group >= 0)
                status_tracker_mark(t, (unsigned)c->new_device->group);
        if (c->kind == INVENTORY_GROUP_REMOVED && c->old_group) {
                /* Its end is the group_removed event; a group that comes back under the number
                 * starts afresh. */
                ts = tracked(t, c->old_group->id);
                if (ts)
                        ts->known = false;
        } else if (c->new_group)
                status_tracker_mark(t, c->new_group->id);
        if (c->kind == INVENTORY_HOST_UPDATED)
                t->all = true;
}

static void on_deferred(evutil_socket_t fd, short what, void *userdata) {
        static const EventCause hotplug = { .kind = EVENT_CAUSE_HOTPLUG };
        StatusTracker *t = userdata;
        const EventCause *saved = manager_set_cause(t->manager, &hotplug);

        status_tracker_flush(t);
        manager_set_cause(t->manager, saved);
}

/* Judging a status reads the host's facts (open nodes, mounts, links): a burst of udev events is
 * judged once, after it. Everything else (an operation, libvirt, a rescan) at once, so that its
 * status events follow it directly. */
static void on_settle(Manager *m, bool rescan, void *userdata) {
        static const EventCause none = {};
        StatusTracker *t = userdata;
        const EventCause *cause = manager_set_cause(m, NULL);

        manager_set_cause(m, cause);
        if (rescan)
                t->all = true;
        if (!rescan && t->deferred && (cause ?: &none)->kind == EVENT_CAUSE_HOTPLUG) {
                event_active(t->deferred, EV_TIMEOUT, 0);
                return;
        }
        status_tracker_flush(t);
}

int status_tracker_new(Operations *ops, Manager *m, struct event_base *base, StatusTracker **ret) {
        _cleanup_(status_tracker_freep) StatusTracker *t = NULL;
        _cleanup_(host_usage_freep) HostUsage *usage = NULL;
        const Inventory *inv = manager_get_inventory(m);
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ops = ops;
        t->manager = m;
        if (base) {
                t->deferred = event_new(base, -1, 0, on_deferred, t);
                if (!t->deferred)
                        return -ENOMEM;
        }
        r = host_usage_read(manager_get_roots(m), &usage);
        if (r < 0)
                return r;
        FOREACH_ARRAY(g, inv->groups, inv->n_groups) {
                r = judge(t, usage, g, false);
                if (r < 0)
                        return r;
        }
        r = manager_subscribe_internal(m, on_manager_event, t, &t->subscription);
        if (r < 0)
                return r;
        manager_set_settle(m, on_settle, t);
        *ret = TAKE_PTR(t);
        return 0;
}

StatusTracker *status_tracker_free(StatusTracker *t) {
        if (!t)
                return NULL;
        if (t->manager)
                manager_set_settle(t->manager, NULL, NULL);
        manager_subscription_free(t->subscription);
        if (t->deferred)
                event_free(t->deferred);
        free(t->groups);
        free(t->dirty);
        free(t);
        return NULL;
}

bool group_status_filter_match(Operations *ops, const GroupFilter *f, const Group *g) {
        GroupStateKind state;

        if (!group_filter_match(f, manager_get_inventory(operations_get_manager(ops)), g))
                return false;
        if (f->n_states == 0)
                return true;
        state = operations_group_state(ops, g, NULL);
        for (size_t i = 0; i < f->n_states; i++)
                if (f->states[i] == state)
                        return true;
        return false;
}
