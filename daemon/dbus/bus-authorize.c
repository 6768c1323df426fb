/* Authorization of D-Bus calls: the sender's credentials go through core's role mapping, the same
 * decision the gRPC Unix socket gets; a caller the mapping refuses is asked about by polkit when
 * polkit is on the bus (org.iommud1.read/operate/administer), and denied otherwise.
 *
 * One sd-bus filter sees every method call before the object dispatch, so property reads,
 * GetManagedObjects and introspection are covered as well as our methods, and no vtable entry can
 * forget its check. A call waiting for polkit is held; on "yes" it is put back into the read queue
 * and passes the filter the second time (the pattern of systemd's bus-polkit). A call from a uid
 * whose groups are not looked up yet (group principals) is held the same way until they are. */
#include "bus-authorize.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "authorize.h"
#include "bus-error.h"
#include "bus-objects.h"
#include "group-cache.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

/* Calls waiting for polkit at once; each holds a message and a pending call. */
#define MAX_PENDING_QUERIES 64

typedef struct BusAuthQuery BusAuthQuery;

struct BusAuthorizer {
        sd_bus *bus;
        const Config *config;
        GroupCache *groups;
        sd_bus_slot *filter;
        BusAuthQuery *queries;
        unsigned n_queries;
};

struct BusAuthQuery {
        BusAuthorizer *authorizer;
        BusAuthQuery *next, *prev;
        sd_bus_message *call;
        sd_bus_slot *polkit_call;
        char *denial; /* core's message, sent if polkit says no */
        bool allowed; /* polkit said yes; the call is back in the read queue */
        bool waiting_groups; /* held until the sender's groups are known */
};

/* Methods that change something, with the role they need (the gRPC method table's roles). Every
 * other call on our objects is a read and needs reader. */
static const struct {
        const char *interface, *member;
        Role role;
} bus_mutations[] = {
        {BUS_MANAGER_INTERFACE, "Rescan", ROLE_OPERATOR}, {BUS_MANAGER_INTERFACE, "ApplyPolicy", ROLE_ADMIN},
        {BUS_MANAGER_INTERFACE, "Reload", ROLE_ADMIN},    {BUS_GROUP_INTERFACE, "SetDomainType", ROLE_ADMIN},
        {BUS_GROUP_INTERFACE, "Prepare", ROLE_OPERATOR},  {BUS_GROUP_INTERFACE, "Release", ROLE_OPERATOR},
        {BUS_GROUP_INTERFACE, "Block", ROLE_ADMIN},       {BUS_GROUP_INTERFACE, "Unblock", ROLE_ADMIN},
};

static const char *const polkit_actions[] = {
        [ROLE_READER] = "org.iommud1.read",
        [ROLE_OPERATOR] = "org.iommud1.operate",
        [ROLE_ADMIN] = "org.iommud1.administer",
};

static bool path_is_ours(const char *path) {
        size_t n = strlen(BUS_PATH);

        return path && strncmp(path, BUS_PATH, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static Role required_role(const char *interface, const char *member) {
        /* Ping and GetMachineId tell nothing about the host's devices. */
        if (interface && strcmp(interface, "org.freedesktop.DBus.Peer") == 0)
                return ROLE_NONE;
        FOREACH_ARRAY (m, bus_mutations, ELEMENTSOF(bus_mutations))
                /* A call without an interface is dispatched on its member name alone. */
                if ((!interface || strcmp(interface, m->interface) == 0) && member &&
                    strcmp(member, m->member) == 0)
                        return m->role;
        return ROLE_READER;
}

static BusAuthQuery *query_free(BusAuthQuery *q) {
        if (!q)
                return NULL;
        if (q->next)
                q->next->prev = q->prev;
        if (q->prev)
                q->prev->next = q->next;
        else
                q->authorizer->queries = q->next;
        q->authorizer->n_queries--;
        sd_bus_slot_unref(q->polkit_call);
        sd_bus_message_unref(q->call);
        free(q->denial);
        free(q);
        return NULL;
}

static void query_deny(BusAuthQuery *q, const char *extra) {
        _cleanup_(freep) char *message = extra ? strprintf("%s; %s", q->denial, extra) : NULL;
        int r;

        r = bus_reply_errno(q->call, -EPERM, message ?: q->denial);
        if (r < 0)
                log_debug_errno(r, "Failed to send an access denied reply, ignoring: %m");
        query_free(q);
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        BusAuthQuery *q = userdata;
        const sd_bus_error *e;
        int authorized, challenge, r;

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* No polkit on this bus: the role mapping's answer stands. */
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        query_deny(q, NULL);
                else {
                        log_warning("polkit CheckAuthorization failed (%s: %s); denying the call.", e->name,
                                    e->message ?: "");
                        query_deny(q, "polkit could not be asked");
                }
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "Unexpected answer from polkit, denying the call: %m");
                query_deny(q, "polkit could not be asked");
                return 0;
        }
        if (!authorized) {
                query_deny(q, challenge ? "polkit wants interactive authentication; allow it on the call "
                                          "(busctl --allow-interactive-authorization)"
                                        : NULL);
                return 0;
        }

        q->allowed = true;
        q->polkit_call = sd_bus_slot_unref(q->polkit_call);
        r = sd_bus_message_rewind(q->call, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(q->authorizer->bus, q->call);
        if (r < 0) {
                log_warning_errno(r, "Failed to resume a call polkit allowed: %m");
                (void)bus_reply_errno(q->call, r, NULL);
                query_free(q);
        }
        return 0;
}

static BusAuthQuery *query_new(BusAuthorizer *a, sd_bus_message *call) {
        BusAuthQuery *q = calloc(1, sizeof(*q));

        if (!q)
                return NULL;
        q->authorizer = a;
        q->call = sd_bus_message_ref(call);
        q->next = a->queries;
        if (q->next)
                q->next->prev = q;
        a->queries = q;
        a->n_queries++;
        return q;
}

static int reply_too_many(sd_bus_message *call) {
        return bus_reply_errno(call, -EUSERS, "too many calls are waiting for authorization; try again later");
}

static int hold_for_groups(BusAuthorizer *a, sd_bus_message *call) {
        if (a->n_queries >= MAX_PENDING_QUERIES)
                return reply_too_many(call);
        BusAuthQuery *q = query_new(a, call);
        if (!q)
                return -ENOMEM;
        q->waiting_groups = true;
        return 1;
}

void bus_authorizer_groups_changed(BusAuthorizer *a) {
        for (BusAuthQuery *q = a->queries, *next; q; q = next) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
                int r;

                next = q->next;
                if (!q->waiting_groups)
                        continue;
                /* Gone from the list first, so the call is judged in full when it comes back. */
                call = sd_bus_message_ref(q->call);
                query_free(q);
                r = sd_bus_message_rewind(call, true);
                if (r >= 0)
                        r = sd_bus_enqueue_for_read(a->bus, call);
                if (r < 0) {
                        log_warning_errno(r, "Failed to resume a call that waited for the user database: %m");
                        (void)bus_reply_errno(call, r, NULL);
                }
        }
}

static int polkit_check(BusAuthorizer *a, sd_bus_message *call, Role needed, char *denial) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = NULL;
        BusAuthQuery *q;
        int r;

        if (a->n_queries >= MAX_PENDING_QUERIES) {
                free(denial);
                return reply_too_many(call);
        }

        r = sd_bus_message_new_method_call(a->bus, &request, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        /* Subject: the calling connection; flag 1 lets polkit ask the user when the caller allows. */
        if (r >= 0)
                r = sd_bus_message_append(
                        request, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s",
                        sd_bus_message_get_sender(call), polkit_actions[needed], 0,
                        sd_bus_message_get_allow_interactive_authorization(call) > 0 ? 1u : 0u, "");
        if (r < 0) {
                free(denial);
                return r;
        }

        q = query_new(a, call);
        if (!q) {
                free(denial);
                return -ENOMEM;
        }
        q->denial = denial;

        /* No timeout of our own: an interactive authentication may take the user a while. */
        r = sd_bus_call_async(a->bus, &q->polkit_call, request, on_polkit_reply, q, UINT64_MAX);
        if (r < 0) {
                query_free(q);
                return r;
        }
        return 1;
}

static int sender_peer(sd_bus_message *m, Peer *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        gid_t gid = (gid_t)-1; /* unknown: equal to no gid: principal */
        pid_t pid = 0;
        int r;

        /* The bus driver vouches for the uid (SO_PEERCRED at connect). The gid is read from /proc
         * by pid, best effort: supplementary groups come from the user database in core, as for
         * the gRPC Unix socket. */
        r = sd_bus_query_sender_creds(
                m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        (void)sd_bus_creds_get_egid(creds, &gid);
        (void)sd_bus_creds_get_pid(creds, &pid);

        *ret = (Peer){.kind = PEER_UNIX, .uid = uid, .gid = gid, .pid = pid};
        return 0;
}

static int on_bus_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusAuthorizer *a = userdata;
        const char *member = sd_bus_message_get_member(m);
        char *denial = NULL;
        Peer peer;
        Role needed;
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL) || !path_is_ours(sd_bus_message_get_path(m)))
                return 0;
        needed = required_role(sd_bus_message_get_interface(m), member);
        if (needed == ROLE_NONE)
                return 0;

        for (BusAuthQuery *q = a->queries; q; q = q->next)
                if (q->call == m && q->allowed) {
                        /* Back from the read queue after polkit said yes. */
                        query_free(q);
                        return 0;
                }

        r = sender_peer(m, &peer);
        if (r < 0) {
                log_warning_errno(r, "Cannot identify the sender %s of %s, denying: %m",
                                  sd_bus_message_get_sender(m) ?: "(none)", member ?: "(none)");
                r = bus_reply_errno(m, -EPERM, "permission denied: the caller could not be identified");
                return r < 0 ? r : 1;
        }

        /* The role may come from a group; the user database is never asked on the loop. */
        if (group_cache_fill(a->groups, &peer) > 0 && authorize_needs_groups(a->config)) {
                r = hold_for_groups(a, m);
                return r < 0 ? r : 1;
        }

        r = authorize_action(a->config, &peer, member ?: "(no member)", needed, &denial);
        if (r == 0)
                return 0;
        if (r == -EPERM)
                r = polkit_check(a, m, needed, denial);
        if (r < 0)
                r = bus_reply_errno(m, r, NULL);
        return r < 0 ? r : 1;
}

int bus_authorizer_new(sd_bus *bus, const Config *config, GroupCache *groups, BusAuthorizer **ret) {
        BusAuthorizer *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->bus = bus;
        a->config = config;
        a->groups = groups;
        r = sd_bus_add_filter(bus, &a->filter, on_bus_message, a);
        if (r < 0) {
                free(a);
                return r;
        }
        *ret = a;
        return 0;
}

BusAuthorizer *bus_authorizer_free(BusAuthorizer *a) {
        if (!a)
                return NULL;
        while (a->queries) {
                /* A call that was allowed and is back in the read queue is simply dropped with the bus. */
                if (!a->queries->allowed)
                        (void)bus_reply_errno(a->queries->call, -ESHUTDOWN, "iommud is shutting down");
                query_free(a->queries);
        }
        sd_bus_slot_unref(a->filter);
        free(a);
        return NULL;
}
