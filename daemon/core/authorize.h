/* Who may do what: the role of a peer, from the [Roles] mapping in the config. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct Config Config;

/* Each role includes the ones below it. */
typedef enum Role {
        ROLE_NONE,     /* Health and Reflection only */
        ROLE_READER,   /* every read, Watch */
        ROLE_OPERATOR, /* + prepare, release */
        ROLE_ADMIN,    /* + domain type, block, apply policy, force */
} Role;

/* "none", "reader", "operator", "admin". */
const char *role_to_string(Role r);

typedef enum PeerKind {
        PEER_UNIX,           /* the Unix socket: uid, gid, pid from SO_PEERCRED */
        PEER_TLS,            /* TLS with a client certificate the transport has verified */
        PEER_LOCAL_INSECURE, /* plaintext loopback TCP: no identity at all */
} PeerKind;

/* Filled by the transport for each call; the strings belong to it. */
typedef struct Peer {
        PeerKind kind;
        uid_t uid;               /* PEER_UNIX */
        gid_t gid;               /* PEER_UNIX: the peer's effective gid */
        pid_t pid;               /* PEER_UNIX, for logs */
        /* PEER_UNIX: the uid's groups in the user database, from the GroupCache. Until they are
         * known (groups_known false) only gid can match a gid:/group: principal. */
        const gid_t *groups;
        size_t n_groups;
        bool groups_known;
        const char *subject;     /* PEER_TLS: RFC 2253 subject, "CN=op1,O=example" */
        const char *common_name; /* PEER_TLS: the subject's one CN in UTF-8; NULL if it has none */
        const char *const *san_dns; /* PEER_TLS: subject alternative names, DNS */
        size_t n_san_dns;
        const char *const *san_uri; /* PEER_TLS: subject alternative names, URI (SPIFFE ids) */
        size_t n_san_uri;
} Peer;

/* The highest role whose [Roles] list names the peer. Called per call, so a reloaded config takes
 * effect at once. Never blocks: group memberships come with the peer (groups above). */
Role authorize_peer(const Config *c, const Peer *p);

/* Whether any principal is a group: deciding a Unix peer's role may then need its groups. */
bool authorize_needs_groups(const Config *c);

/* 0 if the peer's role is at least 'needed'. Otherwise -EPERM and, if ret_message is not NULL, a
 * message for the client in *ret_message that also names who holds the role, e.g. "permission
 * denied: ListGroups needs the reader role; unix uid=1000 has no role; [Roles] Reader=group:iommud".
 * *ret_message is written only on -EPERM. -ENOMEM. */
int authorize_action(const Config *c, const Peer *p, const char *action, Role needed, char **ret_message);
