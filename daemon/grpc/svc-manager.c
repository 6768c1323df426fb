/* The iommud.v1.IommuManager service: decode, ask core, encode. */
#include "svc-manager.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "group-status.h"
#include "grpc-server.h"
#include "host-usage.h"
#include "log-ids.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "query.h"
#include "string-util.h"
#include "strv.h"
#include "svc-convert.h"

#define REQUEST(type, r) ((const type *)(r))

typedef struct Watcher Watcher;

/* Events kept packed for Watch with resume: a client that lost its stream, or listed, catches up
 * from here without listing again while its sequence is in the window. */
#define REPLAY_MAX_EVENTS 4096
#define REPLAY_MAX_BYTES (4u << 20)

typedef struct ReplayEvent {
        uint64_t sequence;
        GrpcShared *message;
} ReplayEvent;

/* Pages: AIP-158's page_size, bounded, and a bound on the bytes of one answer. */
#define GROUPS_PAGE_DEFAULT 100
#define GROUPS_PAGE_MAX 1000
#define DEVICES_PAGE_DEFAULT 500
#define DEVICES_PAGE_MAX 5000
#define PAGE_MAX_BYTES (1u << 20)
#define SNAPSHOT_PAGE_GROUPS 200
#define SNAPSHOT_PAGE_DEVICES 500

struct SvcManager {
        Manager *manager;
        Operations *operations;
        GrpcAuthorizeFunc authorize; /* the peer's role, for force (admin only) */
        void *authorize_userdata;
        Watcher *watchers; /* open Watch streams, ended at shutdown */
        ManagerSubscription *recorder; /* fills the window when nobody watches */
        ReplayEvent *replay;           /* ring of REPLAY_MAX_EVENTS */
        size_t replay_first, replay_n, replay_bytes;
        /* GetGroup's replies, packed, by group id: valid while nothing has been published since (the
         * manager's sequence) and core's read snapshot and policy are the same (its generation), so
         * that a busy reader costs a reference, not a status judged and packed again. */
        GrpcShared **group_replies; /* NULL: none */
        size_t n_group_replies, group_replies_bytes;
        uint64_t group_replies_sequence, group_replies_generation;
};

#define MANAGER(userdata) (((SvcManager *)(userdata))->manager)

/* What the GetGroup replies may hold at most; beyond, replies are built for each call. */
#define GROUP_REPLIES_MAX_BYTES (1024 * 1024)

static int reply_arena(GrpcCall *call, ProtoArena *arena, const ProtobufCMessage *msg) {
        int r;

        if (arena->oom || !msg)
                r = grpc_call_fail(call, -ENOMEM, "out of memory while building the reply");
        else
                r = grpc_call_reply(call, msg);
        proto_arena_done(arena);
        return r;
}

static int fail_with_message(GrpcCall *call, int error, char *message) {
        int r = grpc_call_fail(call, error, message);

        free(message);
        return r;
}

/* A group with core's status of it. usage: the host facts read once for many groups, or NULL. */
static Iommud__V1__Group *group_with_state(SvcManager *svc, ProtoArena *a, const Inventory *inv, const Group *g,
                                           bool with_devices, const HostUsage *usage) {
        Iommud__V1__Group *p = group_to_proto(a, inv, g, with_devices);
        _cleanup_(group_status_done) GroupStatus s = {};
        int r;

        if (!p || !svc->operations)
                return p;
        r = group_status_compute(svc->operations, usage, g, GROUP_STATUS_ALL, &s);
        if (r == -ENOMEM)
                a->oom = true;
        else if (r < 0)
                log_debug_errno(r, "Cannot judge the status of group %u, leaving it unspecified: %m", g->id);
        else
                group_status_to_proto(a, p, &s);
        return p;
}

/* The host facts reads share (core's snapshot, at most a second old); NULL without operations, or
 * when they cannot be read: each group then reads what it needs. */
static const HostUsage *read_snapshot(SvcManager *svc, uint64_t *ret_generation) {
        if (!svc->operations) {
                if (ret_generation)
                        *ret_generation = 0;
                return NULL;
        }
        return operations_read_snapshot(svc->operations, ret_generation);
}

/* The host as the inventory shows it, with what core says of the daemon itself. */
static Iommud__V1__GetHostResponse *host_with_status(SvcManager *svc, ProtoArena *a) {
        Iommud__V1__GetHostResponse *p = host_response_to_proto(a, manager_get_inventory(svc->manager));
        const char *reason = svc->operations ? operations_read_only_reason(svc->operations) : NULL;

        if (!p)
                return NULL;
        p->daemon = proto_arena_alloc(a, sizeof(*p->daemon));
        if (p->daemon) {
                *p->daemon = (Iommud__V1__DaemonStatus)IOMMUD__V1__DAEMON_STATUS__INIT;
                p->daemon->read_only = reason != NULL;
                p->daemon->read_only_reason = (char *)(reason ?: "");
        }
        return p;
}

static int on_get_host(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        ProtoArena arena = {};
        Iommud__V1__GetHostResponse *resp = host_with_status(userdata, &arena);

        return reply_arena(call, &arena, resp ? &resp->base : NULL);
}

static int parse_page_size(uint32_t requested, uint32_t def, uint32_t max) {
        return requested == 0 ? (int)def : requested > max ? (int)max : (int)requested;
}

static int bad_token(GrpcCall *call, const char *token) {
        return fail_with_message(call, -EINVAL,
                                 strprintf("page_token '%s' is not one this server gave for this list", token));
}

static int on_list_groups(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__ListGroupsRequest *req = REQUEST(Iommud__V1__ListGroupsRequest, request);
        Iommud__V1__ListGroupsResponse resp = IOMMUD__V1__LIST_GROUPS_RESPONSE__INIT;
        SvcManager *svc = userdata;
        const Inventory *inv = manager_get_inventory(svc->manager);
        const HostUsage *usage;
        _cleanup_(freep) GroupStateKind *states = NULL;
        int page_size = parse_page_size(req->page_size, GROUPS_PAGE_DEFAULT, GROUPS_PAGE_MAX);
        ProtoArena arena = {};
        char *message = NULL, next[32] = "";
        size_t bytes = 0;
        unsigned from = 0;
        GroupFilter filter = {
                .types = req->type,
                .n_types = req->n_type,
                .viable = req->viable == IOMMUD__V1__LIST_GROUPS_REQUEST__VIABILITY__VIABILITY_VIABLE       ? VIABILITY_VIABLE
                          : req->viable == IOMMUD__V1__LIST_GROUPS_REQUEST__VIABILITY__VIABILITY_NOT_VIABLE ? VIABILITY_NOT_VIABLE
                                                                                                            : VIABILITY_ANY,
                .vendors = req->vendor,
                .n_vendors = req->n_vendor,
                .classes = req->class_,
                .n_classes = req->n_class_,
                .drivers = req->driver,
                .n_drivers = req->n_driver,
        };
        int r, n;

        r = group_filter_verify(&filter, &message);
        if (r < 0)
                return fail_with_message(call, r, message);
        if (req->n_state > 0) {
                states = calloc(req->n_state, sizeof(*states));
                if (!states)
                        return -ENOMEM;
                for (size_t i = 0; i < req->n_state; i++) {
                        GroupStateKind k;

                        for (k = 0; k <= GROUP_FAILED; k++)
                                if (group_state_to_proto(k) == req->state[i])
                                        break;
                        if (k > GROUP_FAILED)
                                return fail_with_message(call, -EINVAL,
                                                         strprintf("%d is not a group state", (int)req->state[i]));
                        states[i] = k;
                }
                filter.states = states;
                filter.n_states = req->n_state;
        }
        /* The token is where the next page starts: the first group numbered at least this. */
        if (req->page_token && *req->page_token &&
            (sscanf(req->page_token, "g:%u%n", &from, &n) != 1 || req->page_token[n] != '\0'))
                return bad_token(call, req->page_token);

        usage = read_snapshot(svc, NULL);
        resp.groups = proto_arena_alloc(&arena, (size_t)page_size * sizeof(*resp.groups));
        FOREACH_ARRAY(g, inv->groups, inv->n_groups) {
                bool match = svc->operations ? group_status_filter_match(svc->operations, &filter, g)
                                             : group_filter_match(&filter, inv, g);

                if (!match)
                        continue;
                resp.total_size++;
                if (g->id < from || !resp.groups || *next)
                        continue;
                /* Full: the next page starts here. One group always fits. */
                if (resp.n_groups == (size_t)page_size || (resp.n_groups > 0 && bytes > PAGE_MAX_BYTES)) {
                        snprintf(next, sizeof(next), "g:%u", g->id);
                        continue;
                }
                resp.groups[resp.n_groups] = group_with_state(svc, &arena, inv, g, true, usage);
                if (resp.groups[resp.n_groups])
                        bytes += protobuf_c_message_get_packed_size(&resp.groups[resp.n_groups]->base);
                resp.n_groups++;
        }
        resp.next_page_token = next;
        resp.sequence = manager_get_sequence(svc->manager);
        resp.incarnation = (char *)manager_get_incarnation(svc->manager);
        return reply_arena(call, &arena, &resp.base);
}

static void group_replies_clear(SvcManager *svc) {
        FOREACH_ARRAY(p, svc->group_replies, svc->n_group_replies)
                grpc_shared_unref(*p);
        free(svc->group_replies);
        svc->group_replies = NULL;
        svc->n_group_replies = svc->group_replies_bytes = 0;
}

/* Keeps a packed reply for group id if the budget allows; takes the reference either way. */
static void group_replies_keep(SvcManager *svc, unsigned id, GrpcShared *reply) {
        size_t size = grpc_shared_size(reply);

        if (svc->group_replies_bytes + size > GROUP_REPLIES_MAX_BYTES) {
                grpc_shared_unref(reply);
                return;
        }
        if (id >= svc->n_group_replies) {
                size_t n = MAX((size_t)id + 1, svc->n_group_replies * 2);
                GrpcShared **p = realloc(svc->group_replies, n * sizeof(*p));

                if (!p) {
                        grpc_shared_unref(reply);
                        return;
                }
                memset(p + svc->n_group_replies, 0, (n - svc->n_group_replies) * sizeof(*p));
                svc->group_replies = p;
                svc->n_group_replies = n;
        }
        svc->group_replies[id] = reply;
        svc->group_replies_bytes += size;
}

static int on_get_group(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__GetGroupRequest *req = REQUEST(Iommud__V1__GetGroupRequest, request);
        SvcManager *svc = userdata;
        const Inventory *inv = manager_get_inventory(svc->manager);
        const Group *g = inventory_find_group(inv, req->id);
        uint64_t generation, sequence = manager_get_sequence(svc->manager);
        const HostUsage *usage;
        ProtoArena arena = {};
        Iommud__V1__Group *resp;
        GrpcShared *reply;
        int r;

        if (!g)
                return fail_with_message(call, -ENOENT, describe_missing_group(inv, req->id));
        usage = read_snapshot(svc, &generation);
        if (svc->group_replies_sequence != sequence || svc->group_replies_generation != generation) {
                group_replies_clear(svc);
                svc->group_replies_sequence = sequence;
                svc->group_replies_generation = generation;
        }
        if (g->id < svc->n_group_replies && svc->group_replies[g->id])
                return grpc_call_reply_shared(call, svc->group_replies[g->id]);

        resp = group_with_state(svc, &arena, inv, g, true, usage);
        if (arena.oom || !resp)
                return reply_arena(call, &arena, NULL);
        reply = grpc_shared_new(&resp->base);
        if (!reply)
                return reply_arena(call, &arena, NULL);
        proto_arena_done(&arena);
        r = grpc_call_reply_shared(call, reply);
        group_replies_keep(svc, g->id, reply);
        return r;
}

static int on_get_device(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__GetDeviceRequest *req = REQUEST(Iommud__V1__GetDeviceRequest, request);
        const Inventory *inv = manager_get_inventory(MANAGER(userdata));
        ProtoArena arena = {};
        Iommud__V1__Device *resp;
        const Device *d;
        char address[16];
        char *message = NULL;

        if (pci_address_normalize(req->address, address) < 0) {
                if (asprintf(&message, "'%s' is not a PCI address (expected DDDD:BB:SS.F, e.g. 0000:01:00.0)",
                             req->address) < 0)
                        message = NULL;
                return fail_with_message(call, -EINVAL, message);
        }
        d = inventory_find_device(inv, address);
        if (!d)
                return fail_with_message(call, -ENOENT, describe_missing_device(inv, address));
        resp = device_to_proto(&arena, d);
        return reply_arena(call, &arena, resp ? &resp->base : NULL);
}

static int on_list_devices(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__ListDevicesRequest *req = REQUEST(Iommud__V1__ListDevicesRequest, request);
        Iommud__V1__ListDevicesResponse resp = IOMMUD__V1__LIST_DEVICES_RESPONSE__INIT;
        SvcManager *svc = userdata;
        const Inventory *inv = manager_get_inventory(svc->manager);
        int page_size = parse_page_size(req->page_size, DEVICES_PAGE_DEFAULT, DEVICES_PAGE_MAX);
        const char *from = "";
        ProtoArena arena = {};
        char next[32] = "";
        size_t bytes = 0;

        /* The token is where the next page starts: the first device at this address or after. */
        if (req->page_token && *req->page_token) {
                char address[16];

                if (strncmp(req->page_token, "d:", 2) != 0 || pci_address_normalize(req->page_token + 2, address) < 0 ||
                    !streq(address, req->page_token + 2))
                        return bad_token(call, req->page_token);
                from = req->page_token + 2;
        }
        resp.total_size = (uint32_t)inv->n_devices;
        if (inv->n_devices > 0)
                resp.devices = proto_arena_alloc(&arena, (size_t)page_size * sizeof(*resp.devices));
        FOREACH_ARRAY(d, inv->devices, inv->n_devices) {
                if (!resp.devices || strcmp(d->address, from) < 0)
                        continue;
                if (resp.n_devices == (size_t)page_size || (resp.n_devices > 0 && bytes > PAGE_MAX_BYTES)) {
                        snprintf(next, sizeof(next), "d:%s", d->address);
                        break;
                }
                resp.devices[resp.n_devices] = device_to_proto(&arena, d);
                if (resp.devices[resp.n_devices])
                        bytes += protobuf_c_message_get_packed_size(&resp.devices[resp.n_devices]->base);
                resp.n_devices++;
        }
        resp.next_page_token = next;
        resp.sequence = manager_get_sequence(svc->manager);
        resp.incarnation = (char *)manager_get_incarnation(svc->manager);
        return reply_arena(call, &arena, &resp.base);
}

static int on_list_units(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        Iommud__V1__ListUnitsResponse resp = IOMMUD__V1__LIST_UNITS_RESPONSE__INIT;
        const Inventory *inv = manager_get_inventory(MANAGER(userdata));
        ProtoArena arena = {};

        if (inv->n_units > 0)
                resp.units = proto_arena_alloc(&arena, inv->n_units * sizeof(*resp.units));
        for (size_t i = 0; resp.units && i < inv->n_units; i++)
                resp.units[resp.n_units++] = unit_to_proto(&arena, &inv->units[i]);
        return reply_arena(call, &arena, &resp.base);
}

static int on_rescan(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        Iommud__V1__RescanResponse resp = IOMMUD__V1__RESCAN_RESPONSE__INIT;
        Manager *m = MANAGER(userdata);
        unsigned n;
        int r;

        r = manager_rescan(m, &n);
        if (r < 0)
                return grpc_call_fail(call, r, "rescanning the host failed; see the daemon's log");
        resp.changes = n;
        resp.sequence = manager_get_sequence(m);
        return grpc_call_reply(call, &resp.base);
}

/* ---- Watch ------------------------------------------------------------------------------------ */

struct Watcher {
        SvcManager *svc;
        GrpcCall *call;
        ManagerSubscription *subscription;
        Watcher *prev, *next;
};

static void watcher_free(Watcher *w) {
        if (w->prev)
                w->prev->next = w->next;
        else
                w->svc->watchers = w->next;
        if (w->next)
                w->next->prev = w->prev;
        manager_subscription_free(w->subscription);
        grpc_call_set_userdata(w->call, NULL);
        grpc_call_unref(w->call);
        free(w);
}

static void on_watch_cancel(GrpcCall *call, void *userdata) {
        watcher_free(userdata);
}

static int send_event(Watcher *w, ProtoArena *arena, Iommud__V1__WatchEvent *event) {
        int r;

        if (arena->oom)
                r = -ENOMEM;
        else
                r = grpc_call_send(w->call, &event->base);
        proto_arena_done(arena);
        return r;
}

static void fill_status_event(SvcManager *svc, ProtoArena *a, const Inventory *inv, const GroupStatusChange *c,
                              Iommud__V1__WatchEvent *e) {
        Iommud__V1__WatchEvent__GroupStatusChanged *s = proto_arena_alloc(a, sizeof(*s));
        const Group *g = inventory_find_group(inv, c->group);
        size_t n = 0;

        if (!s)
                return;
        *s = (Iommud__V1__WatchEvent__GroupStatusChanged)IOMMUD__V1__WATCH_EVENT__GROUP_STATUS_CHANGED__INIT;
        s->group = c->group;
        s->old_state = c->old_state >= 0 ? group_state_to_proto((GroupStateKind)c->old_state) : 0;
        s->new_state = group_state_to_proto((GroupStateKind)c->new_state);
        s->changed = proto_arena_alloc(a, _GROUP_STATUS_FIELD_MAX * sizeof(char *));
        for (int f = 0; s->changed && f < _GROUP_STATUS_FIELD_MAX; f++)
                if (c->changed & (1u << f))
                        s->changed[n++] = (char *)group_status_field_to_string((GroupStatusField)f);
        s->n_changed = n;
        if (g)
                s->group_now = group_with_state(svc, a, inv, g, false, NULL);
        e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATUS_CHANGED;
        e->group_status_changed = s;
}

static void fill_event(ProtoArena *a, const Inventory *inv, const InventoryChange *c, Iommud__V1__WatchEvent *e) {
        switch (c->kind) {
        case INVENTORY_DEVICE_ADDED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_ADDED;
                e->device_added = device_to_proto(a, c->new_device);
                break;
        case INVENTORY_DEVICE_REMOVED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_REMOVED;
                e->device_removed = device_to_proto(a, c->old_device);
                break;
        case INVENTORY_DEVICE_DRIVER_CHANGED: {
                Iommud__V1__WatchEvent__DriverChanged *d = proto_arena_alloc(a, sizeof(*d));

                if (!d)
                        return;
                *d = (Iommud__V1__WatchEvent__DriverChanged)IOMMUD__V1__WATCH_EVENT__DRIVER_CHANGED__INIT;
                d->address = c->new_device->address;
                d->old_driver = c->old_device->driver ?: (char *)"";
                d->new_driver = c->new_device->driver ?: (char *)"";
                d->device = device_to_proto(a, c->new_device);
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_DRIVER_CHANGED;
                e->driver_changed = d;
                break;
        }
        case INVENTORY_DEVICE_UPDATED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_UPDATED;
                e->device_updated = device_to_proto(a, c->new_device);
                break;
        case INVENTORY_GROUP_ADDED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_ADDED;
                e->group_added = group_to_proto(a, inv, c->new_group, false);
                break;
        case INVENTORY_GROUP_REMOVED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_REMOVED;
                e->group_removed = group_to_proto(a, inv, c->old_group, false);
                break;
        case INVENTORY_GROUP_TYPE_CHANGED: {
                Iommud__V1__WatchEvent__TypeChanged *t = proto_arena_alloc(a, sizeof(*t));

                if (!t)
                        return;
                *t = (Iommud__V1__WatchEvent__TypeChanged)IOMMUD__V1__WATCH_EVENT__TYPE_CHANGED__INIT;
                t->group = c->new_group->id;
                t->old_type = c->old_group->type_raw ?: (char *)"";
                t->new_type = c->new_group->type_raw ?: (char *)"";
                t->group_now = group_to_proto(a, inv, c->new_group, false);
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_TYPE_CHANGED;
                e->type_changed = t;
                break;
        }
        case INVENTORY_GROUP_UPDATED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_UPDATED;
                e->group_updated = group_to_proto(a, inv, c->new_group, false);
                break;
        case INVENTORY_HOST_UPDATED:
                e->event_case = IOMMUD__V1__WATCH_EVENT__EVENT_HOST_UPDATED;
                e->host_updated = host_response_to_proto(a, inv);
                break;
        default:
                break;
        }
}

static void replay_drop_oldest(SvcManager *svc) {
        ReplayEvent *r = &svc->replay[svc->replay_first];

        svc->replay_bytes -= grpc_shared_size(r->message);
        grpc_shared_unref(r->message);
        *r = (ReplayEvent){};
        svc->replay_first = (svc->replay_first + 1) % REPLAY_MAX_EVENTS;
        svc->replay_n--;
}

/* Takes the reference; the newest stays however big it is. */
static void replay_push(SvcManager *svc, uint64_t sequence, GrpcShared *message) {
        size_t size = grpc_shared_size(message);
        ReplayEvent *r;

        while (svc->replay_n > 0 &&
               (svc->replay_n == REPLAY_MAX_EVENTS || svc->replay_bytes + size > REPLAY_MAX_BYTES))
                replay_drop_oldest(svc);
        r = &svc->replay[(svc->replay_first + svc->replay_n) % REPLAY_MAX_EVENTS];
        *r = (ReplayEvent){ .sequence = sequence, .message = message };
        svc->replay_n++;
        svc->replay_bytes += size;
}

static const ReplayEvent *replay_at(const SvcManager *svc, size_t i) {
        return &svc->replay[(svc->replay_first + i) % REPLAY_MAX_EVENTS];
}

/* The last event packed, which every watcher it goes to is sent: every event enters the window. */
static const ReplayEvent *replay_newest(const SvcManager *svc) {
        return svc->replay_n > 0 ? replay_at(svc, svc->replay_n - 1) : NULL;
}

/* Every event is packed once, into the replay window, for every watcher it goes to. */
static int pack_event(SvcManager *svc, Manager *m, const ManagerEvent *event) {
        Iommud__V1__WatchEvent e = IOMMUD__V1__WATCH_EVENT__INIT;
        const Inventory *inv = manager_get_inventory(m);
        const ReplayEvent *newest = replay_newest(svc);
        ProtoArena arena = {};
        GrpcShared *message;

        if (newest && newest->sequence == event->sequence)
                return 0;
        e.sequence = event->sequence;
        e.incarnation = (char *)manager_get_incarnation(m);
        e.cause = cause_to_proto(&arena, event->cause);
        if (event->change)
                fill_event(&arena, inv, event->change, &e);
        else if (event->status)
                fill_status_event(svc, &arena, inv, event->status, &e);
        if (arena.oom) {
                proto_arena_done(&arena);
                return -ENOMEM;
        }
        message = grpc_shared_new(&e.base);
        proto_arena_done(&arena);
        if (!message)
                return -ENOMEM;
        replay_push(svc, event->sequence, message);
        return 0;
}

static void on_record_event(Manager *m, const ManagerEvent *event, void *userdata) {
        SvcManager *svc = userdata;

        if (pack_event(svc, m, event) < 0)
                log_oom(); /* a resume across this event must re-list: the window has a hole */
}

static void on_manager_event(Manager *m, const ManagerEvent *event, void *userdata) {
        Watcher *w = userdata;
        int r;

        r = pack_event(w->svc, m, event);
        if (r >= 0)
                r = grpc_call_send_shared(w->call, replay_newest(w->svc)->message);
        if (r == -ENOBUFS) {
                /* A watcher that does not read must not make the daemon buffer without bound. */
                log_event(LOG_NOTICE, ((LogFields){ .message_id = LOG_ID_WATCHER_DROPPED }),
                          "Ending a Watch whose client does not keep up.");
                grpc_call_fail(w->call, -ENOBUFS, "this watcher fell too far behind; watch again");
                watcher_free(w);
        } else if (r < 0 && r != -ECONNRESET)
                log_warning_errno(r, "Failed to send a watch event, ignoring: %m");
}

static Iommud__V1__WatchEvent watch_event(SvcManager *svc) {
        Iommud__V1__WatchEvent e = IOMMUD__V1__WATCH_EVENT__INIT;

        e.sequence = manager_get_sequence(svc->manager);
        e.incarnation = (char *)manager_get_incarnation(svc->manager);
        return e;
}

/* The host, then (inventory) every group and device in pages, all with the sequence of now. */
static int send_snapshot(Watcher *w, bool inventory) {
        SvcManager *svc = w->svc;
        const Inventory *inv = manager_get_inventory(svc->manager);
        const HostUsage *usage;
        Iommud__V1__WatchEvent e = watch_event(svc);
        ProtoArena arena = {};
        size_t gi = 0, di = 0;
        int r;

        e.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT;
        e.snapshot = host_with_status(svc, &arena);
        r = send_event(w, &arena, &e);
        if (r < 0 || !inventory)
                return r;
        usage = read_snapshot(svc, NULL);
        do {
                Iommud__V1__WatchEvent__SnapshotPage page = IOMMUD__V1__WATCH_EVENT__SNAPSHOT_PAGE__INIT;
                size_t ng = MIN(inv->n_groups - gi, (size_t)SNAPSHOT_PAGE_GROUPS);
                size_t nd = ng > 0 ? 0 : MIN(inv->n_devices - di, (size_t)SNAPSHOT_PAGE_DEVICES);

                e = watch_event(svc);
                page.groups = ng ? proto_arena_alloc(&arena, ng * sizeof(*page.groups)) : NULL;
                for (size_t i = 0; page.groups && i < ng; i++)
                        page.groups[page.n_groups++] =
                                group_with_state(svc, &arena, inv, &inv->groups[gi + i], false, usage);
                page.devices = nd ? proto_arena_alloc(&arena, nd * sizeof(*page.devices)) : NULL;
                for (size_t i = 0; page.devices && i < nd; i++)
                        page.devices[page.n_devices++] = device_to_proto(&arena, &inv->devices[di + i]);
                gi += ng;
                di += nd;
                page.last = gi == inv->n_groups && di == inv->n_devices;
                e.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT_PAGE;
                e.snapshot_page = &page;
                r = send_event(w, &arena, &e);
                if (r < 0)
                        return r;
        } while (gi < inv->n_groups || di < inv->n_devices);
        return 0;
}

static int send_relist(Watcher *w, uint64_t requested, const char *reason) {
        SvcManager *svc = w->svc;
        Iommud__V1__WatchEvent__RelistRequired relist = IOMMUD__V1__WATCH_EVENT__RELIST_REQUIRED__INIT;
        Iommud__V1__WatchEvent e = watch_event(svc);
        ProtoArena arena = {};

        relist.requested_sequence = requested;
        relist.oldest_sequence = svc->replay_n > 0 ? replay_at(svc, 0)->sequence : 0;
        relist.reason = (char *)reason;
        e.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_RELIST_REQUIRED;
        e.relist_required = &relist;
        return send_event(w, &arena, &e);
}

/* The events after req->after_sequence, from the window; or relist_required when it does not hold
 * them all. */
static int send_replay(Watcher *w, const Iommud__V1__WatchRequest *req) {
        SvcManager *svc = w->svc;
        uint64_t now = manager_get_sequence(svc->manager), after = req->after_sequence;
        int r;

        if (!req->incarnation || !streq(req->incarnation, manager_get_incarnation(svc->manager)))
                return send_relist(w, after, "the sequence was numbered by another iommud instance (it restarted)");
        if (after > now)
                return send_relist(w, after, "the sequence is ahead of this iommud's");
        if (after == now)
                return 0;
        if (svc->replay_n == 0 || replay_at(svc, 0)->sequence > after + 1 || replay_newest(svc)->sequence != now)
                return send_relist(w, after, "the events after the sequence are no longer in the replay window");
        for (size_t i = 0; i < svc->replay_n; i++) {
                const ReplayEvent *e = replay_at(svc, i);

                if (e->sequence <= after)
                        continue;
                r = grpc_call_send_shared(w->call, e->message);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_watch(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__WatchRequest *req = REQUEST(Iommud__V1__WatchRequest, request);
        SvcManager *svc = userdata;
        Manager *m = svc->manager;
        Watcher *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->svc = svc;
        w->next = svc->watchers;
        if (w->next)
                w->next->prev = w;
        svc->watchers = w;
        w->call = grpc_call_ref(call);
        r = manager_subscribe(m, on_manager_event, w, &w->subscription);
        if (r < 0) {
                grpc_call_fail(call, r, r == -EUSERS ? "too many watchers; try again later" : NULL);
                watcher_free(w);
                return 0;
        }
        grpc_call_set_userdata(call, w);
        grpc_call_set_cancel(call, on_watch_cancel, w);

        r = grpc_call_send_headers(call);
        if (r >= 0 && req->send_snapshot)
                r = send_snapshot(w, req->snapshot_inventory);
        else if (r >= 0 && req->resume)
                r = send_replay(w, req);
        if (r < 0) {
                grpc_call_fail(call, r, NULL);
                watcher_free(w);
        }
        return 0;
}

/* ---- operations ------------------------------------------------------------------------------- */

typedef struct OperationCall {
        SvcManager *svc;
        GrpcCall *call;
        bool dry_run;
} OperationCall;

static void on_operation_done(const OperationOutcome *outcome, void *userdata) {
        Iommud__V1__OperationResult resp = IOMMUD__V1__OPERATION_RESULT__INIT;
        OperationCall *oc = userdata;
        const Inventory *inv = manager_get_inventory(oc->svc->manager);
        const Group *g = inventory_find_group(inv, outcome->group);
        ProtoArena arena = {};

        if (outcome->error < 0)
                (void)grpc_call_fail(oc->call, outcome->error, outcome->message);
        else {
                resp.operation_id = outcome->id;
                resp.steps = outcome->steps;
                resp.n_steps = strv_length(outcome->steps);
                resp.dry_run = oc->dry_run;
                /* After a release or an unplug the group may be gone: the steps still tell. */
                if (g)
                        resp.group = group_with_state(oc->svc, &arena, inv, g, true, NULL);
                (void)reply_arena(oc->call, &arena, &resp.base);
        }
        proto_arena_done(&arena);
        grpc_call_unref(oc->call);
        free(oc);
}

static int start_operation(GrpcCall *call, SvcManager *svc, OperationRequest *req) {
        const GrpcPeer *peer = grpc_call_get_peer(call);
        _cleanup_(freep) char *who = NULL;
        char *message = NULL;
        OperationCall *oc;
        int r;

        /* Core decides who may force; the transport says who asks. */
        req->role = peer ? (Role)svc->authorize(peer, svc->authorize_userdata) : ROLE_NONE;
        /* The audit names the person: behind a local peer, its login and sudo user. */
        if (peer) {
                who = audit_describe_process(peer->description, peer->kind == GRPC_PEER_UNIX ? peer->pid : 0);
                if (!who)
                        return -ENOMEM;
        }
        req->client = who;

        oc = calloc(1, sizeof(*oc));
        if (!oc)
                return -ENOMEM;
        oc->svc = svc;
        oc->call = grpc_call_ref(call);
        oc->dry_run = req->dry_run;
        r = operations_start(svc->operations, req, on_operation_done, oc, &message);
        if (r < 0) {
                grpc_call_unref(oc->call);
                free(oc);
                return fail_with_message(call, r, message);
        }
        return 0;
}

static int on_set_domain_type(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__SetDomainTypeRequest *req = REQUEST(Iommud__V1__SetDomainTypeRequest, request);
        OperationRequest op = {
                .kind = OPERATION_SET_DOMAIN_TYPE,
                .group = req->group,
                .type = req->type,
                .force = req->force,
                .dry_run = req->dry_run,
        };

        return start_operation(call, userdata, &op);
}

static int on_prepare_group(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__PrepareGroupRequest *req = REQUEST(Iommud__V1__PrepareGroupRequest, request);
        SvcManager *svc = userdata;
        OperationRequest op = {
                .kind = OPERATION_PREPARE,
                .owner = req->owner && *req->owner ? req->owner : NULL,
                .force = req->force,
                .dry_run = req->dry_run,
        };
        char *message = NULL;
        int r;

        r = query_resolve_group(manager_get_inventory(svc->manager), req->group, req->device, &op.group, &message);
        if (r < 0)
                return fail_with_message(call, r, message);
        return start_operation(call, svc, &op);
}

static int on_release_group(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__ReleaseGroupRequest *req = REQUEST(Iommud__V1__ReleaseGroupRequest, request);
        SvcManager *svc = userdata;
        OperationRequest op = { .kind = OPERATION_RELEASE, .dry_run = req->dry_run };
        char *message = NULL;
        int r;

        r = query_resolve_group(manager_get_inventory(svc->manager), req->group, req->device, &op.group, &message);
        if (r < 0)
                return fail_with_message(call, r, message);
        return start_operation(call, svc, &op);
}

static int on_block_group(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__BlockGroupRequest *req = REQUEST(Iommud__V1__BlockGroupRequest, request);
        OperationRequest op = {
                .kind = OPERATION_BLOCK,
                .group = req->group,
                .force = req->force,
                .dry_run = req->dry_run,
        };

        return start_operation(call, userdata, &op);
}

static int on_unblock_group(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__UnblockGroupRequest *req = REQUEST(Iommud__V1__UnblockGroupRequest, request);
        OperationRequest op = { .kind = OPERATION_UNBLOCK, .group = req->group, .dry_run = req->dry_run };

        return start_operation(call, userdata, &op);
}

/* ---- policy ---------------------------------------------------------------------------------- */

static Iommud__V1__PlanResponse *plan_to_proto(ProtoArena *a, const Plan *plan) {
        Iommud__V1__PlanResponse *p = proto_arena_alloc(a, sizeof(*p));
        size_t n_steps = 0;

        if (!p)
                return NULL;
        *p = (Iommud__V1__PlanResponse)IOMMUD__V1__PLAN_RESPONSE__INIT;
        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                n_steps += g->n_steps;
        p->steps = n_steps ? proto_arena_alloc(a, n_steps * sizeof(*p->steps)) : NULL;
        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                FOREACH_ARRAY(step, g->steps, g->n_steps) {
                        Iommud__V1__PlanStep *ps = proto_arena_alloc(a, sizeof(*ps));

                        if (!ps || !p->steps)
                                return p;
                        *ps = (Iommud__V1__PlanStep)IOMMUD__V1__PLAN_STEP__INIT;
                        ps->group = g->id;
                        ps->action = (char *)plan_step_kind_to_string(step->kind);
                        ps->argument = step->argument ?: (char *)"";
                        ps->reason = step->reason ?: (char *)"";
                        ps->blocked = step->blocked;
                        ps->blocked_reason = step->blocked_reason ?: (char *)"";
                        ps->passthrough_refusal = g->passthrough_refusal ?: (char *)"";
                        p->steps[p->n_steps++] = ps;
                }
        p->conflicts = plan->n_conflicts ? proto_arena_alloc(a, plan->n_conflicts * sizeof(char *)) : NULL;
        FOREACH_ARRAY(c, plan->conflicts, plan->n_conflicts)
                if (p->conflicts)
                        p->conflicts[p->n_conflicts++] = c->message;
        return p;
}

static int on_plan(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        SvcManager *svc = userdata;
        _cleanup_(plan_freep) Plan *plan = NULL;
        ProtoArena arena = {};
        Iommud__V1__PlanResponse *resp;
        int r;

        r = operations_plan(svc->operations, &plan);
        if (r < 0)
                return r;
        resp = plan_to_proto(&arena, plan);
        return reply_arena(call, &arena, resp ? &resp->base : NULL);
}

/* Both maps of a PolicyRule are string -> string: their entry messages have the same layout. */
_Static_assert(offsetof(Iommud__V1__PolicyRule__MatchEntry, value) ==
                       offsetof(Iommud__V1__PolicyRule__PolicyEntry, value),
               "map entries differ");

static void *rule_keys_to_proto(ProtoArena *a, const ProtobufCMessageDescriptor *entry, const RuleKey *keys, size_t n,
                                const char *(*name)(int), size_t *ret_n) {
        Iommud__V1__PolicyRule__MatchEntry **entries = proto_arena_alloc(a, n * sizeof(*entries));

        *ret_n = 0;
        for (size_t i = 0; entries && i < n; i++) {
                Iommud__V1__PolicyRule__MatchEntry *e;

                if (keys[i].line == 0)
                        continue;
                e = proto_arena_alloc(a, entry->sizeof_message);
                if (!e)
                        break;
                protobuf_c_message_init(entry, e);
                e->key = (char *)name((int)i);
                e->value = keys[i].value;
                entries[(*ret_n)++] = e;
        }
        return entries;
}

static const char *match_key_name(int k) {
        return match_key_to_string((MatchKey)k);
}

static const char *action_name(int k) {
        return policy_action_to_string((PolicyAction)k);
}

static int on_get_policy(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Policy *policy = operations_get_policy(((SvcManager *)userdata)->operations);
        Iommud__V1__Policy resp = IOMMUD__V1__POLICY__INIT;
        ProtoArena arena = {};

        resp.rules = policy->n_rules ? proto_arena_alloc(&arena, policy->n_rules * sizeof(*resp.rules)) : NULL;
        FOREACH_ARRAY(rule, policy->rules, policy->n_rules) {
                Iommud__V1__PolicyRule *pr = proto_arena_alloc(&arena, sizeof(*pr));
                const char *base = strrchr(rule->file, '/');

                if (!pr || !resp.rules)
                        break;
                *pr = (Iommud__V1__PolicyRule)IOMMUD__V1__POLICY_RULE__INIT;
                pr->file = rule->file;
                pr->name = (char *)(base ? base + 1 : rule->file);
                pr->match = rule_keys_to_proto(&arena, &iommud__v1__policy_rule__match_entry__descriptor, rule->match,
                                               _MATCH_KEY_MAX, match_key_name, &pr->n_match);
                pr->policy = rule_keys_to_proto(&arena, &iommud__v1__policy_rule__policy_entry__descriptor,
                                                rule->action, _POLICY_ACTION_MAX, action_name, &pr->n_policy);
                resp.rules[resp.n_rules++] = pr;
        }
        return reply_arena(call, &arena, &resp.base);
}

typedef struct ApplyCall {
        SvcManager *svc;
        GrpcCall *call;
} ApplyCall;

static void on_apply_done(const ApplyOutcome *outcome, void *userdata) {
        Iommud__V1__ApplyPolicyResponse resp = IOMMUD__V1__APPLY_POLICY_RESPONSE__INIT;
        ApplyCall *ac = userdata;
        ProtoArena arena = {};

        resp.plan = plan_to_proto(&arena, outcome->plan);
        resp.results = outcome->n_outcomes ? proto_arena_alloc(&arena, outcome->n_outcomes * sizeof(*resp.results))
                                           : NULL;
        FOREACH_ARRAY(o, outcome->outcomes, outcome->n_outcomes) {
                Iommud__V1__OperationResult *r = proto_arena_alloc(&arena, sizeof(*r));

                if (!r || !resp.results)
                        break;
                *r = (Iommud__V1__OperationResult)IOMMUD__V1__OPERATION_RESULT__INIT;
                r->operation_id = o->id;
                r->group_id = o->group;
                r->steps = o->steps;
                r->n_steps = strv_length(o->steps);
                r->error = (char *)(o->error < 0 ? o->message ?: strerror(-o->error) : "");
                resp.results[resp.n_results++] = r;
        }
        (void)reply_arena(ac->call, &arena, &resp.base);
        grpc_call_unref(ac->call);
        free(ac);
}

static int on_apply_policy(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__ApplyPolicyRequest *req = REQUEST(Iommud__V1__ApplyPolicyRequest, request);
        char *message = NULL;
        ApplyCall *ac;
        int r;

        ac = calloc(1, sizeof(*ac));
        if (!ac)
                return -ENOMEM;
        ac->svc = userdata;
        ac->call = grpc_call_ref(call);
        r = operations_apply_policy(ac->svc->operations, -1, req->dry_run, on_apply_done, ac, &message);
        if (r < 0) {
                grpc_call_unref(ac->call);
                free(ac);
                return fail_with_message(call, r, message);
        }
        return 0;
}

/* ---- history ---------------------------------------------------------------------------------- */

static int on_history(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__HistoryRequest *req = REQUEST(Iommud__V1__HistoryRequest, request);
        Iommud__V1__HistoryResponse resp = IOMMUD__V1__HISTORY_RESPONSE__INIT;
        SvcManager *svc = userdata;
        HistoryEntry *entries = NULL;
        ProtoArena arena = {};
        size_t n = 0;
        int r;

        r = operations_history(svc->operations, req->limit, req->group, req->n_group, &entries, &n);
        if (r < 0)
                return grpc_call_fail(call, r, "the operation history cannot be read; see the daemon's log");
        resp.entries = n ? proto_arena_alloc(&arena, n * sizeof(*resp.entries)) : NULL;
        FOREACH_ARRAY(e, entries, n) {
                Iommud__V1__HistoryEntry *p = proto_arena_alloc(&arena, sizeof(*p));

                if (!p || !resp.entries)
                        break;
                *p = (Iommud__V1__HistoryEntry)IOMMUD__V1__HISTORY_ENTRY__INIT;
                p->operation_id = e->id;
                p->operation = e->operation ?: (char *)"";
                p->group = e->group;
                p->argument = e->argument ?: (char *)"";
                p->peer = e->peer ?: (char *)"";
                p->dry_run = e->dry_run;
                p->force = e->force;
                p->started_unix_usec = (int64_t)e->started_usec;
                p->duration_usec = e->duration_usec;
                p->steps = e->steps;
                p->n_steps = strv_length(e->steps);
                p->result = (char *)operation_result_to_string(e->result);
                p->message = e->message ?: (char *)"";
                resp.entries[resp.n_entries++] = p;
        }
        r = reply_arena(call, &arena, &resp.base);
        history_entries_free(entries, n);
        return r;
}

#define METHOD(name, kind, request_type, handler, role)                                                   \
        { "/iommud.v1.IommuManager/" name, kind, &request_type, handler, role }

static const GrpcMethod manager_methods[] = {
        METHOD("GetHost", GRPC_METHOD_UNARY, iommud__v1__get_host_request__descriptor, on_get_host, GRPC_ROLE_READER),
        METHOD("ListGroups", GRPC_METHOD_UNARY, iommud__v1__list_groups_request__descriptor, on_list_groups,
               GRPC_ROLE_READER),
        METHOD("GetGroup", GRPC_METHOD_UNARY, iommud__v1__get_group_request__descriptor, on_get_group,
               GRPC_ROLE_READER),
        METHOD("GetDevice", GRPC_METHOD_UNARY, iommud__v1__get_device_request__descriptor, on_get_device,
               GRPC_ROLE_READER),
        METHOD("ListDevices", GRPC_METHOD_UNARY, iommud__v1__list_devices_request__descriptor, on_list_devices,
               GRPC_ROLE_READER),
        METHOD("ListUnits", GRPC_METHOD_UNARY, iommud__v1__list_units_request__descriptor, on_list_units,
               GRPC_ROLE_READER),
        METHOD("Watch", GRPC_METHOD_SERVER_STREAM, iommud__v1__watch_request__descriptor, on_watch,
               GRPC_ROLE_READER),
        METHOD("Rescan", GRPC_METHOD_UNARY, iommud__v1__rescan_request__descriptor, on_rescan, GRPC_ROLE_OPERATOR),
        METHOD("SetDomainType", GRPC_METHOD_UNARY, iommud__v1__set_domain_type_request__descriptor,
               on_set_domain_type, GRPC_ROLE_ADMIN),
        METHOD("PrepareGroup", GRPC_METHOD_UNARY, iommud__v1__prepare_group_request__descriptor, on_prepare_group,
               GRPC_ROLE_OPERATOR),
        METHOD("ReleaseGroup", GRPC_METHOD_UNARY, iommud__v1__release_group_request__descriptor, on_release_group,
               GRPC_ROLE_OPERATOR),
        METHOD("BlockGroup", GRPC_METHOD_UNARY, iommud__v1__block_group_request__descriptor, on_block_group,
               GRPC_ROLE_ADMIN),
        METHOD("UnblockGroup", GRPC_METHOD_UNARY, iommud__v1__unblock_group_request__descriptor, on_unblock_group,
               GRPC_ROLE_ADMIN),
        METHOD("GetPolicy", GRPC_METHOD_UNARY, iommud__v1__get_policy_request__descriptor, on_get_policy,
               GRPC_ROLE_READER),
        METHOD("Plan", GRPC_METHOD_UNARY, iommud__v1__plan_request__descriptor, on_plan, GRPC_ROLE_READER),
        METHOD("ApplyPolicy", GRPC_METHOD_UNARY, iommud__v1__apply_policy_request__descriptor, on_apply_policy,
               GRPC_ROLE_ADMIN),
        METHOD("History", GRPC_METHOD_UNARY, iommud__v1__history_request__descriptor, on_history,
               GRPC_ROLE_READER),
};

int svc_manager_new(GrpcServer *server, Manager *manager, Operations *operations, GrpcAuthorizeFunc authorize,
                    void *authorize_userdata, SvcManager **ret) {
        SvcManager *svc;
        int r;

        svc = calloc(1, sizeof(*svc));
        if (!svc)
                return -ENOMEM;
        svc->manager = manager;
        svc->operations = operations;
        svc->authorize = authorize;
        svc->authorize_userdata = authorize_userdata;
        svc->replay = calloc(REPLAY_MAX_EVENTS, sizeof(*svc->replay));
        if (!svc->replay) {
                free(svc);
                return -ENOMEM;
        }
        r = manager_subscribe_internal(manager, on_record_event, svc, &svc->recorder);
        if (r >= 0)
                r = grpc_server_add_methods(server, manager_methods, ELEMENTSOF(manager_methods), svc);
        if (r < 0) {
                manager_subscription_free(svc->recorder);
                free(svc->replay);
                free(svc);
                return r;
        }
        *ret = svc;
        return 0;
}

void svc_manager_end_watches(SvcManager *svc) {
        /* A Watch never ends by itself; without this a graceful shutdown would wait out its drain
         * time for every open stream. */
        while (svc->watchers) {
                Watcher *w = svc->watchers;

                grpc_call_fail(w->call, -ESHUTDOWN, "iommud is shutting down; watch again when it is back");
                watcher_free(w);
        }
}

void svc_manager_recheck_watches(SvcManager *svc, GrpcAuthorizeFunc authorize, void *userdata) {
        for (Watcher *w = svc->watchers, *next; w; w = next) {
                const GrpcPeer *peer = grpc_call_get_peer(w->call);

                next = w->next;
                if (peer && authorize(peer, userdata) >= GRPC_ROLE_READER)
                        continue;
                grpc_call_fail_status(w->call, GRPC_STATUS_PERMISSION_DENIED,
                                      "Watch requires role reader, which the reloaded settings no longer give");
                watcher_free(w);
        }
}

SvcManager *svc_manager_free(SvcManager *svc) {
        if (!svc)
                return NULL;
        while (svc->watchers)
                watcher_free(svc->watchers);
        manager_subscription_free(svc->recorder);
        while (svc->replay_n > 0)
                replay_drop_oldest(svc);
        free(svc->replay);
        group_replies_clear(svc);
        free(svc);
        return NULL;
}
