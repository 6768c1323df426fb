/* org.iommud1.Group on /org/iommud1/group/<id>: one object per IOMMU group of the live inventory, and
 * the group operations, answered when they have finished. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "bus-error.h"
#include "bus-libevent.h"
#include "bus-objects.h"
#include "group-status.h"
#include "host-usage.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "parse.h"
#include "string-util.h"
#include "strv.h"

int group_bus_path(unsigned id, char **ret) {
        *ret = strprintf(BUS_GROUP_PREFIX "/%u", id);
        return *ret ? 0 : -ENOMEM;
}

static int group_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                      sd_bus_error *ret_error) {
        BusServer *s = userdata;
        _cleanup_(freep) char *name = NULL;
        const Group *g;
        uint32_t id;

        if (sd_bus_path_decode(path, BUS_GROUP_PREFIX, &name) <= 0 || parse_u32(name, 10, &id) < 0)
                return 0;
        g = inventory_find_group(manager_get_inventory(s->manager), id);
        if (!g)
                return 0;
        *ret_found = (void *)g;
        return 1;
}

static int group_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                           sd_bus_error *ret_error) {
        BusServer *s = userdata;
        const Inventory *inv = manager_get_inventory(s->manager);
        _cleanup_(strv_freep) char **nodes = NULL;
        size_t n = 0;

        FOREACH_ARRAY (g, inv->groups, inv->n_groups) {
                char *path = NULL;

                if (group_bus_path(g->id, &path) < 0 || strv_push(&nodes, &n, path) < 0) {
                        free(path);
                        return -ENOMEM;
                }
        }
        *ret_nodes = TAKE_PTR(nodes);
        return 0;
}

static int property_get_domain_type(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *ret_error) {
        const Group *g = userdata;

        return sd_bus_message_append_basic(reply, 's', domain_type_to_string(g->type) ?: "");
}

/* The host's facts for the message being answered, read once per message; NULL outside one (a
 * signal), where each status reads its own. */
static const HostUsage *usage_of_message(sd_bus *bus, BusServer *s) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        uint64_t cookie = 0;

        if (!m || sd_bus_message_get_cookie(m, &cookie) < 0)
                return NULL;
        if (s->usage && s->usage_message == m && s->usage_cookie == cookie)
                return s->usage;
        s->usage = host_usage_free(s->usage);
        if (host_usage_read(manager_get_roots(s->manager), &s->usage) < 0)
                return NULL;
        s->usage_message = m;
        s->usage_cookie = cookie;
        return s->usage;
}

/* Core's status of the group (group-status.h), mapped. The owner's parts need no host facts. */
static int status_of(sd_bus *bus, const Group *g, GroupStatusFlags flags, GroupStatus *ret) {
        BusServer *s = bus_server_of(bus);
        const HostUsage *usage = flags & GROUP_STATUS_OWNER_ONLY ? NULL : usage_of_message(bus, s);

        return group_status_compute(s->operations, usage, g, flags, ret);
}

/* "host", "vfio-ready", "blocked", "transitioning", "in-use", "failed" */
static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(group_status_done) GroupStatus st = {};
        int r = status_of(bus, userdata, GROUP_STATUS_OWNER_ONLY, &st);

        return r < 0 ? r : sd_bus_message_append_basic(reply, 's', group_state_to_string(st.state));
}

/* Owner: who it was prepared for ("" when none); OwnerKind "", "libvirt", "client";
 * OwnerDomainName and OwnerDomainUuid: the libvirt domain that uses it now. */
static int property_get_owner(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(group_status_done) GroupStatus st = {};
        const char *v;
        int r = status_of(bus, userdata, GROUP_STATUS_OWNER_ONLY, &st);

        if (r < 0)
                return r;
        if (streq(property, "OwnerKind"))
                v = group_owner_kind_to_string(st.owner_kind);
        else if (streq(property, "OwnerDomainName"))
                v = st.domain_name;
        else if (streq(property, "OwnerDomainUuid"))
                v = st.domain_uuid;
        else
                v = st.owner_client;
        return sd_bus_message_append_basic(reply, 's', v ?: "");
}

/* Who holds it: "libvirt domain 'vm1' (uuid ...)", "process 42 (qemu) holds /dev/vfio/7 open". */
static int property_get_users(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(group_status_done) GroupStatus st = {};
        int r = status_of(bus, userdata, GROUP_STATUS_ALL, &st);

        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "s");
        FOREACH_ARRAY (u, st.users, st.n_users)
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', u->text);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* What the host does with it: (kind, device, text, forcible). */
static int property_get_host_uses(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(group_status_done) GroupStatus st = {};
        int r = status_of(bus, userdata, GROUP_STATUS_ALL, &st);

        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssb)");
        FOREACH_ARRAY (u, st.host_uses.items, st.host_uses.n)
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(sssb)", host_use_kind_to_string(u->kind), u->device ?: "",
                                                  u->text ?: "", u->forcible);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* SetDomainType's verdict per type: (type, allowed, text). */
static int property_get_type_verdicts(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(group_status_done) GroupStatus st = {};
        int r = status_of(bus, userdata, GROUP_STATUS_ALL, &st);

        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sbs)");
        for (size_t i = 0; r >= 0 && i < GROUP_TYPE_VERDICTS; i++)
                r = sd_bus_message_append(reply, "(sbs)", st.verdicts[i].type ?: "", st.verdicts[i].allowed,
                                          st.verdicts[i].text ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_get_empty(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const Group *g = userdata;

        if (streq(property, "Empty"))
                return sd_bus_message_append(reply, "b", g->empty);
        return sd_bus_message_append_basic(reply, 's', g->empty_reason ?: "");
}

/* Core's findings on the group (retired records, records of other hardware, why it FAILED). */
static int property_get_findings(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const BusServer *s = bus_server_of(bus);
        _cleanup_(strv_freep) char **findings = NULL;
        int r;

        r = operations_group_findings(s->operations, userdata, &findings);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, findings);
}

static int property_get_blockers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const Group *g = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        FOREACH_ARRAY (b, g->blockers, g->n_blockers)
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(sss)", b->device ?: "", b->driver ?: "",
                                                  b->reason ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_get_reserved_regions(sd_bus *bus, const char *path, const char *interface,
                                         const char *property, sd_bus_message *reply, void *userdata,
                                         sd_bus_error *ret_error) {
        const Group *g = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(tts)");
        FOREACH_ARRAY (rr, g->reserved_regions, g->n_reserved_regions)
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(tts)", rr->start_addr, rr->end_addr,
                                                  rr->type ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static bool blockers_equal(const Group *a, const Group *b) {
        if (a->n_blockers != b->n_blockers)
                return false;
        for (size_t i = 0; i < a->n_blockers; i++)
                if (!streq_ptr(a->blockers[i].device, b->blockers[i].device) ||
                    !streq_ptr(a->blockers[i].driver, b->blockers[i].driver) ||
                    !streq_ptr(a->blockers[i].reason, b->blockers[i].reason))
                        return false;
        return true;
}

static bool reserved_regions_equal(const Group *a, const Group *b) {
        if (a->n_reserved_regions != b->n_reserved_regions)
                return false;
        for (size_t i = 0; i < a->n_reserved_regions; i++)
                if (a->reserved_regions[i].start_addr != b->reserved_regions[i].start_addr ||
                    a->reserved_regions[i].end_addr != b->reserved_regions[i].end_addr ||
                    !streq_ptr(a->reserved_regions[i].type, b->reserved_regions[i].type))
                        return false;
        return true;
}

int group_bus_emit_changes(sd_bus *bus, const Group *old, const Group *new) {
        _cleanup_(freep) char *path = NULL;
        BusChangedNames c = {};

        bus_changed_add_if(&c, old->type != new->type, "DomainType");
        bus_changed_add_if(&c, !strv_equal(old->devices, new->devices), "Devices");
        bus_changed_add_if(&c, old->viable != new->viable, "Viable");
        bus_changed_add_if(&c, !blockers_equal(old, new), "Blockers");
        bus_changed_add_if(&c, old->type_change.writable != new->type_change.writable, "TypeChangeWritable");
        bus_changed_add_if(&c, !strv_equal(old->type_change.allowed, new->type_change.allowed),
                           "TypeChangeAllowed");
        bus_changed_add_if(&c, !streq_ptr(old->type_change.reason, new->type_change.reason),
                           "TypeChangeReason");
        bus_changed_add_if(&c, !reserved_regions_equal(old, new), "ReservedRegions");
        bus_changed_add_if(&c, old->vfio_node != new->vfio_node, "VfioNode");
        if (c.n == 0)
                return 0;

        if (group_bus_path(new->id, &path) < 0)
                return -ENOMEM;
        return bus_emit_changed(bus, path, BUS_GROUP_INTERFACE, &c);
}

/* A status change published by core: the properties that show the parts that changed. */
int group_bus_emit_status(sd_bus *bus, const GroupStatusChange *c) {
        _cleanup_(freep) char *path = NULL;
        BusChangedNames n = {};

        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_STATE), "State");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_OWNER), "Owner");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_OWNER), "OwnerKind");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_OWNER), "OwnerDomainName");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_OWNER), "OwnerDomainUuid");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_USERS), "Users");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_HOST_USES), "HostUses");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_TYPE_CHANGE), "TypeChangeVerdicts");
        bus_changed_add_if(&n, c->changed & (1u << GROUP_STATUS_FINDINGS), "Findings");
        if (n.n == 0)
                return 0;
        if (group_bus_path(c->group, &path) < 0)
                return -ENOMEM;
        return bus_emit_changed(bus, path, BUS_GROUP_INTERFACE, &n);
}

/* ---- operations ------------------------------------------------------------------------------- */

/* One method call waiting for its operation. */
typedef struct BusOperation {
        BusServer *server;
        sd_bus_message *call;
        char *client;
        unsigned group;
        bool starting; /* inside operations_start(): the done callback leaves freeing to the caller */
        bool done;
} BusOperation;

static BusOperation *bus_operation_free(BusOperation *o) {
        if (!o)
                return NULL;
        sd_bus_message_unref(o->call);
        free(o->client);
        free(o);
        return NULL;
}

static void on_operation_done(const OperationOutcome *outcome, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusOperation *o = userdata;
        int r;

        if (outcome->error < 0)
                r = bus_reply_errno(o->call, outcome->error, outcome->message);
        else {
                r = sd_bus_message_new_method_return(o->call, &reply);
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, outcome->steps);
                if (r >= 0)
                        r = sd_bus_send(NULL, reply, NULL);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to answer %s on group %u, ignoring: %m",
                                sd_bus_message_get_member(o->call), o->group);
        /* Finished on the executor's wakeup, outside any bus dispatch. */
        bus_libevent_rearm(o->server->event);

        o->done = true;
        if (!o->starting)
                bus_operation_free(o);
}

/* "dbus :1.42 uid=1000 pid=77" and what core adds about the person behind the process. */
static char *describe_sender(sd_bus_message *m) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(freep) char *base = NULL;
        uid_t uid = (uid_t)-1;
        pid_t pid = 0;

        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT, &creds) >= 0) {
                (void)sd_bus_creds_get_euid(creds, &uid);
                (void)sd_bus_creds_get_pid(creds, &pid);
        }
        if (uid == (uid_t)-1)
                return strprintf("dbus %s", sd_bus_message_get_sender(m) ?: "peer");
        base = strprintf("dbus %s uid=%u pid=%d", sd_bus_message_get_sender(m) ?: "peer", (unsigned)uid, (int)pid);
        return base ? audit_describe_process(base, pid) : NULL;
}

/* Starts the operation; the call is answered when it has finished, with the steps taken. */
static int start_operation(sd_bus_message *m, const Group *g, OperationRequest *req) {
        BusServer *s = bus_server_of(sd_bus_message_get_bus(m));
        _cleanup_(freep) char *message = NULL;
        BusOperation *o;
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->server = s;
        o->call = sd_bus_message_ref(m);
        o->group = g->id;
        o->client = describe_sender(m);
        if (!o->client) {
                bus_operation_free(o);
                return -ENOMEM;
        }
        req->group = g->id;
        req->client = o->client;

        o->starting = true;
        r = operations_start(s->operations, req, on_operation_done, o, &message);
        o->starting = false;
        if (r < 0) {
                bus_operation_free(o);
                return bus_reply_errno(m, r, message);
        }
        if (o->done)
                bus_operation_free(o);
        return 1;
}

static int method_set_domain_type(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OperationRequest req = {.kind = OPERATION_SET_DOMAIN_TYPE};
        int dry_run, r;

        r = sd_bus_message_read(m, "sb", &req.type, &dry_run);
        if (r < 0)
                return r;
        req.dry_run = dry_run;
        return start_operation(m, userdata, &req);
}

static int method_prepare(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OperationRequest req = {.kind = OPERATION_PREPARE};
        int r;

        r = sd_bus_message_read(m, "s", &req.owner);
        if (r < 0)
                return r;
        if (!*req.owner)
                req.owner = NULL;
        return start_operation(m, userdata, &req);
}

static int method_release(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OperationRequest req = {.kind = OPERATION_RELEASE};

        return start_operation(m, userdata, &req);
}

static int method_block(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OperationRequest req = {.kind = OPERATION_BLOCK};

        return start_operation(m, userdata, &req);
}

static int method_unblock(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OperationRequest req = {.kind = OPERATION_UNBLOCK};

        return start_operation(m, userdata, &req);
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
/* Without it sd-bus demands CAP_SYS_ADMIN on the system bus; bus-authorize.c decides instead. */
#define UNPRIVILEGED SD_BUS_VTABLE_UNPRIVILEGED

const sd_bus_vtable group_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", bus_property_get_unsigned, offsetof(Group, id),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DomainType", "s", property_get_domain_type, 0, CHANGES),
        SD_BUS_PROPERTY("Devices", "as", bus_property_get_strv, offsetof(Group, devices), CHANGES),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, CHANGES),
        SD_BUS_PROPERTY("Owner", "s", property_get_owner, 0, CHANGES),
        SD_BUS_PROPERTY("OwnerKind", "s", property_get_owner, 0, CHANGES),
        SD_BUS_PROPERTY("OwnerDomainName", "s", property_get_owner, 0, CHANGES),
        SD_BUS_PROPERTY("OwnerDomainUuid", "s", property_get_owner, 0, CHANGES),
        SD_BUS_PROPERTY("Users", "as", property_get_users, 0, CHANGES),
        SD_BUS_PROPERTY("HostUses", "a(sssb)", property_get_host_uses, 0, CHANGES),
        SD_BUS_PROPERTY("TypeChangeVerdicts", "a(sbs)", property_get_type_verdicts, 0, CHANGES),
        SD_BUS_PROPERTY("Empty", "b", property_get_empty, 0, CHANGES),
        SD_BUS_PROPERTY("EmptyReason", "s", property_get_empty, 0, CHANGES),
        SD_BUS_PROPERTY("Findings", "as", property_get_findings, 0, CHANGES),
        SD_BUS_PROPERTY("Viable", "b", bus_property_get_bool, offsetof(Group, viable), CHANGES),
        SD_BUS_PROPERTY("Blockers", "a(sss)", property_get_blockers, 0, CHANGES),
        SD_BUS_PROPERTY("TypeChangeWritable", "b", bus_property_get_bool,
                        offsetof(Group, type_change.writable), CHANGES),
        SD_BUS_PROPERTY("TypeChangeAllowed", "as", bus_property_get_strv,
                        offsetof(Group, type_change.allowed), CHANGES),
        SD_BUS_PROPERTY("TypeChangeReason", "s", bus_property_get_string,
                        offsetof(Group, type_change.reason), CHANGES),
        SD_BUS_PROPERTY("ReservedRegions", "a(tts)", property_get_reserved_regions, 0, CHANGES),
        SD_BUS_PROPERTY("VfioNode", "b", bus_property_get_bool, offsetof(Group, vfio_node), CHANGES),
        SD_BUS_METHOD_WITH_ARGS("SetDomainType", SD_BUS_ARGS("s", type, "b", dry_run),
                                SD_BUS_RESULT("as", steps), method_set_domain_type, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Prepare", SD_BUS_ARGS("s", owner), SD_BUS_RESULT("as", steps),
                                method_prepare, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", steps), method_release,
                                UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Block", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", steps), method_block,
                                UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unblock", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", steps), method_unblock,
                                UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int group_bus_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback_vtable(s->bus, NULL, BUS_GROUP_PREFIX, BUS_GROUP_INTERFACE, group_vtable,
                                       group_find, s);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(s->bus, NULL, BUS_GROUP_PREFIX, group_enumerate, s);
}
