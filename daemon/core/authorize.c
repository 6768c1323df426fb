/* Authorization: the role of a peer is the highest [Roles] list with a principal that matches it. */
#include "authorize.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

const char *role_to_string(Role r) {
        static const char *const names[] = {
                [ROLE_NONE] = "none",
                [ROLE_READER] = "reader",
                [ROLE_OPERATOR] = "operator",
                [ROLE_ADMIN] = "admin",
        };

        if ((unsigned)r >= ELEMENTSOF(names))
                return NULL;
        return names[r];
}

static bool peer_in_group(const Peer *p, gid_t gid) {
        if (p->gid == gid)
                return true;
        for (size_t i = 0; p->groups_known && i < p->n_groups; i++)
                if (p->groups[i] == gid)
                        return true;
        return false;
}

static bool name_in(const char *const *names, size_t n, const char *name, bool ignore_case) {
        for (size_t i = 0; i < n; i++)
                if ((ignore_case ? strcasecmp(names[i], name) : strcmp(names[i], name)) == 0)
                        return true;
        return false;
}

static bool principal_matches(const Principal *pr, const Peer *p) {
        switch (pr->kind) {
        case PRINCIPAL_UID:
                return p->kind == PEER_UNIX && p->uid == pr->uid;
        case PRINCIPAL_GID:
                return p->kind == PEER_UNIX && peer_in_group(p, pr->gid);
        case PRINCIPAL_CN:
                return p->kind == PEER_TLS && p->common_name && strcmp(p->common_name, pr->name) == 0;
        case PRINCIPAL_SUBJECT:
                return p->kind == PEER_TLS && p->subject && strcmp(p->subject, pr->name) == 0;
        case PRINCIPAL_SAN_DNS:
                /* DNS names compare without case (RFC 4343); a wildcard matches only itself. */
                return p->kind == PEER_TLS && name_in(p->san_dns, p->n_san_dns, pr->name, true);
        case PRINCIPAL_SAN_URI:
                return p->kind == PEER_TLS && name_in(p->san_uri, p->n_san_uri, pr->name, false);
        case PRINCIPAL_ANY_UNIX:
                return p->kind == PEER_UNIX;
        case PRINCIPAL_ANY_TLS:
                return p->kind == PEER_TLS;
        case PRINCIPAL_ANY_INSECURE:
                /* A plaintext loopback connection tells us nothing about who is calling: any process
                 * on the host (or in a container sharing its network namespace) can connect, and TCP
                 * has no SO_PEERCRED. So no uid/gid/unix:* entry may ever match it; only this explicit
                 * "everyone local" principal does, for test and development setups. */
                return p->kind == PEER_LOCAL_INSECURE;
        }
        return false;
}

static bool list_matches(const PrincipalList *l, const Peer *p) {
        FOREACH_ARRAY(pr, l->items, l->n)
                if (principal_matches(pr, p))
                        return true;
        return false;
}

bool authorize_needs_groups(const Config *c) {
        const PrincipalList *lists[] = {&c->readers, &c->operators, &c->admins};

        FOREACH_ARRAY(l, lists, ELEMENTSOF(lists))
                FOREACH_ARRAY(pr, (*l)->items, (*l)->n)
                        if (pr->kind == PRINCIPAL_GID)
                                return true;
        return false;
}

Role authorize_peer(const Config *c, const Peer *p) {
        const PrincipalList *lists[] = {
                [ROLE_READER] = &c->readers,
                [ROLE_OPERATOR] = &c->operators,
                [ROLE_ADMIN] = &c->admins,
        };

        for (Role r = ROLE_ADMIN; r > ROLE_NONE; r--)
                if (list_matches(lists[r], p))
                        return r;
        return ROLE_NONE;
}

static int peer_describe(const Peer *p, char **ret) {
        int r;

        if (p->kind == PEER_UNIX)
                r = asprintf(ret, "unix uid=%u", (unsigned)p->uid);
        else if (p->kind == PEER_TLS)
                r = p->subject && *p->subject ? asprintf(ret, "tls %s", p->subject)
                                              : asprintf(ret, "tls client without subject");
        else
                r = asprintf(ret, "plaintext loopback client");
        return r < 0 ? -ENOMEM : 0;
}

static char *principal_to_string(const Principal *pr) {
        switch (pr->kind) {
        case PRINCIPAL_UID:
                return pr->name ? strprintf("user:%s", pr->name) : strprintf("uid:%u", (unsigned)pr->uid);
        case PRINCIPAL_GID:
                return pr->name ? strprintf("group:%s", pr->name) : strprintf("gid:%u", (unsigned)pr->gid);
        case PRINCIPAL_CN:
                return strprintf("cn:%s", pr->name);
        case PRINCIPAL_SUBJECT:
                return strprintf("subject:%s", pr->name);
        case PRINCIPAL_SAN_DNS:
                return strprintf("san-dns:%s", pr->name);
        case PRINCIPAL_SAN_URI:
                return strprintf("san-uri:%s", pr->name);
        case PRINCIPAL_ANY_UNIX:
                return strdup("unix:*");
        case PRINCIPAL_ANY_TLS:
                return strdup("tls:*");
        case PRINCIPAL_ANY_INSECURE:
                return strdup("insecure:*");
        }
        return strdup("?");
}

/* A [Roles] list as the file spells it: "group:iommud uid:0", or "" when it names nobody. */
static int principals_describe(const PrincipalList *l, char **ret) {
        _cleanup_(freep) char *text = strdup("");

        FOREACH_ARRAY(pr, l->items, l->n) {
                _cleanup_(freep) char *one = principal_to_string(pr);
                char *more;

                if (!text || !one)
                        return -ENOMEM;
                more = strprintf("%s%s%s", text, *text ? " " : "", one);
                if (!more)
                        return -ENOMEM;
                free(text);
                text = more;
        }
        if (!text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

int authorize_action(const Config *c, const Peer *p, const char *action, Role needed, char **ret_message) {
        static const char *const keys[] = {
                [ROLE_READER] = "Reader",
                [ROLE_OPERATOR] = "Operator",
                [ROLE_ADMIN] = "Admin",
        };
        const PrincipalList *lists[] = {
                [ROLE_READER] = &c->readers,
                [ROLE_OPERATOR] = &c->operators,
                [ROLE_ADMIN] = &c->admins,
        };
        _cleanup_(freep) char *who = NULL, *holders = NULL;
        Role have = authorize_peer(c, p);
        char *message;

        if (have >= needed)
                return 0;
        if (!ret_message)
                return -EPERM;

        /* Naming who holds the role tells the caller whom to ask, e.g. to be added to a group. */
        if (peer_describe(p, &who) < 0 || principals_describe(lists[needed], &holders) < 0)
                return -ENOMEM;
        if (asprintf(&message, "permission denied: %s needs the %s role; %s has %s%s; [Roles] %s=%s%s", action,
                     role_to_string(needed), who, have == ROLE_NONE ? "no role" : role_to_string(have),
                     p->kind == PEER_LOCAL_INSECURE && have == ROLE_NONE
                             ? " (plaintext peers have no identity; see insecure:* in [Roles])"
                             : "",
                     keys[needed], holders, *holders ? "" : " (nobody)") < 0)
                return -ENOMEM;

        log_debug("%s", message);
        *ret_message = message;
        return -EPERM;
}
