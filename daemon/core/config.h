/* The daemon's settings: /etc/iommud/iommud.conf (INI) and the command-line flags that mirror it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

/* Who a [Roles] entry names. user:NAME and group:NAME are resolved to ids when the option is set
 * (that is, at load and at every reload), so a renamed user keeps its role until the next reload. */
typedef enum PrincipalKind {
        PRINCIPAL_UID,          /* uid:N, user:NAME */
        PRINCIPAL_GID,          /* gid:N, group:NAME: the peer's primary or a supplementary group */
        PRINCIPAL_CN,           /* cn:NAME: the TLS client certificate's common name */
        PRINCIPAL_SUBJECT,      /* subject:DN: the whole subject, RFC 2253, compared exactly */
        PRINCIPAL_SAN_DNS,      /* san-dns:NAME: a DNS subject alternative name of the certificate */
        PRINCIPAL_SAN_URI,      /* san-uri:URI: a URI subject alternative name (spiffe://...) */
        PRINCIPAL_ANY_UNIX,     /* unix:*: every local user on the Unix socket */
        PRINCIPAL_ANY_TLS,      /* tls:*: every client with a certificate signed by ClientCA= */
        PRINCIPAL_ANY_INSECURE, /* insecure:*: every client of the plaintext loopback listener */
} PrincipalKind;

typedef struct Principal {
        PrincipalKind kind;
        uid_t uid;  /* PRINCIPAL_UID */
        gid_t gid;  /* PRINCIPAL_GID */
        char *name; /* PRINCIPAL_CN, PRINCIPAL_SUBJECT, PRINCIPAL_SAN_DNS, PRINCIPAL_SAN_URI; as written
                     * for user:NAME and group:NAME */
} Principal;

typedef struct PrincipalList {
        Principal *items;
        size_t n;
} PrincipalList;

/* [LibvirtHook] OnUnreachable=: what iommud-libvirt-hook does at "prepare begin" when iommud cannot
 * be reached (not running, no socket). */
typedef enum HookUnreachable {
        HOOK_UNREACHABLE_START, /* the domain starts; its host devices stay as they are */
        HOOK_UNREACHABLE_FAIL,  /* the domain does not start */
} HookUnreachable;

typedef struct ConfigLimits {
        unsigned max_connections;          /* MaxConnections=256: per listener */
        unsigned max_connections_per_peer; /* MaxConnectionsPerPeer=16: per uid, certificate or address */
        unsigned reserved_connections;     /* ReservedConnections=32: kept for readers, and again for
                                            * operators, admins and root */
        unsigned max_handshakes;           /* MaxHandshakes=64: TLS connections not yet authenticated */
        unsigned max_streams;              /* MaxStreams=100: concurrent calls per connection */
        size_t max_message_size;           /* MaxMessageSize=4M: largest request message */
        size_t max_header_list_size;       /* MaxHeaderListSize=16K: request header bytes */
        unsigned max_header_fields;        /* MaxHeaderFields=64: request header fields */
        size_t max_connection_memory;      /* MaxConnectionMemory=16M */
        size_t max_peer_memory;            /* MaxPeerMemory=32M: all connections of one peer */
        size_t max_memory;                 /* MaxMemory=256M: all connections */
        size_t max_send_queue;             /* MaxSendQueue=4M: responses queued per call */
        unsigned handshake_timeout_sec;    /* HandshakeTimeoutSec=10: accept to HTTP/2 preface */
        unsigned header_timeout_sec;       /* HeaderTimeoutSec=10: one request header block */
        unsigned request_timeout_sec;      /* RequestTimeoutSec=30: one request message */
        unsigned idle_timeout_sec;         /* IdleTimeoutSec=300: a connection without calls; 0: never */
        unsigned keepalive_sec;            /* KeepaliveSec=60: TCP PING when quiet; 0: never */
        unsigned keepalive_timeout_sec;    /* KeepaliveTimeoutSec=20: for its answer */
        unsigned max_watchers;             /* MaxWatchers=64: Watch subscribers, all transports */
        unsigned max_queued_operations;    /* MaxQueuedOperations=32: mutations waiting for the executor */
        unsigned operation_timeout_sec;    /* OperationTimeoutSec=120: one operation, start to finish */
        unsigned kernel_write_timeout_sec; /* KernelWriteTimeoutSec=30: one kernel write (an unbind that
                                            * blocks on a VFIO user); then the group is FAILED */
} ConfigLimits;

/* Plain data: main.c translates it for the transports, core reads it directly. Strings are owned;
 * a NULL string means "not set" where the comment says so. */
typedef struct Config {
        /* [Daemon] */
        char *sysfs_root;             /* SysfsRoot=/ */
        char *proc_root;              /* ProcRoot=/ */
        char *dev_root;               /* DevRoot=/ */
        char *pci_ids;                /* PciIds=, NULL: the built-in path */
        unsigned rescan_interval_sec; /* RescanIntervalSec=300, 0: no periodic rescan */
        char *state_directory;        /* StateDirectory=/var/lib/iommud */
        char *policy_directory;       /* PolicyDirectory=/etc/iommud/policy.d */
        char *runtime_directory;      /* RuntimeDirectory=/run/iommud */
        bool udev;                    /* Udev=yes */
        char *dbus;                   /* DBus=system|session|none|ADDRESS; NULL: the system bus if it is there */
        char *libvirt_uri;            /* LibvirtURI=qemu:///system; "none": do not follow libvirt */

        /* [Listen] */
        char *unix_socket;   /* Unix=/run/iommud/iommud.sock, NULL: no Unix socket */
        mode_t unix_mode;    /* UnixMode=0666: every call is authorized by peer credentials */
        char **tls_listen;   /* TLS=, NULL-terminated, canonical "1.2.3.4:443" / "[::1]:443"; may be NULL */
        char *insecure_tcp;  /* InsecureTCP=, canonical like TLS=, always loopback; NULL: none */

        /* [Metrics] */
        char *metrics_listen; /* Listen=, canonical like TLS=; NULL: no metrics endpoint */

        /* [TLS] */
        char *tls_certificate; /* Certificate=, PEM chain; NULL: not set */
        char *tls_key;         /* Key=, PEM; NULL: not set */
        char *tls_client_ca;   /* ClientCA=, PEM; NULL: not set */
        char *tls_crl;         /* CRL=, PEM; NULL: no revocation checks */

        /* [Roles] */
        PrincipalList readers;
        PrincipalList operators;
        PrincipalList admins;
        /* True until any [Roles] option is set; meanwhile admins holds the built-in "uid:0" and
         * nothing else is mapped. The first Reader=/Operator=/Admin= replaces that default. */
        bool default_roles;
        /* GroupRefreshSec=300: group memberships (group:, gid: principals) are looked up off the
         * event loop, cached, and looked up again this often and at every reload. */
        unsigned group_refresh_sec;

        /* [Limits] */
        ConfigLimits limits;

        /* [LibvirtHook]: read by iommud-libvirt-hook; the daemon only checks it. */
        HookUnreachable hook_on_unreachable; /* OnUnreachable=start */
        /* CallTimeoutSec=150: one call of the hook; at least [Limits] OperationTimeoutSec=, so that the
         * hook never gives up on an operation that the daemon still completes. */
        unsigned hook_call_timeout_sec;
} Config;

typedef struct ConfigOption ConfigOption;

/* Parses value into the field at o->offset. Logs "<origin>: [Section] Key=value: why" and returns
 * -EINVAL for a bad value, -ENOMEM when out of memory. */
typedef int (*ConfigParseFunc)(Config *c, const ConfigOption *o, const char *value, const char *origin);

/* One row per option. This table (config_options()) is the single list of settings: the INI
 * parser, command-line flags and --help all come from it, so a new option is added there only. */
struct ConfigOption {
        const char *section;    /* "Listen" */
        const char *key;        /* "Unix" */
        const char *flag;       /* "unix-socket": --unix-socket=VALUE; every flag takes a value */
        const char *value_name; /* "PATH": for --help */
        const char *help;       /* one line for --help, with the default */
        ConfigParseFunc parse;
        size_t offset; /* of the field in Config that parse writes */
};

const ConfigOption *config_options(size_t *ret_n);

/* Built-in defaults (see the comments in Config). -ENOMEM; on failure c needs config_done(). */
int config_init_defaults(Config *c) _warn_unused_result_;
void config_done(Config *c);

/* Sets one option from a value; origin names where the value came from, for messages:
 * "/etc/iommud/iommud.conf:12" or "--unix-socket". Scalars are replaced; list options (TLS=,
 * Reader=, Operator=, Admin=) append, and an empty value empties the list. Unknown section or key:
 * logged, -EINVAL. */
int config_set(Config *c, const char *section, const char *key, const char *value, const char *origin);

/* Reads an INI file on top of c. Every problem is logged as "<path>:<line>: ..." and the whole file
 * is read so that all of them are reported; then -EINVAL. On failure c holds a mix of old and new
 * values: load a reload into a fresh Config and keep the old one unless this succeeds.
 * A missing file is -ENOENT (logged) if must_exist, otherwise 0 with c untouched.
 * Lines are limited to 197 characters (inih); split long [Roles] lists over several lines, they
 * append. An indented line continues the previous key, as if the key were repeated. */
int config_load_file(Config *c, const char *path, bool must_exist);

/* Checks options against each other once everything is set (file, then flags): TLS= needs
 * Certificate=, Key= and ClientCA=; no address is listened on twice; the limits leave room for
 * each other (reserves below MaxConnections, a MaxMessageSize request fits the memory budgets).
 * Logs each problem naming the option and its flag; -EINVAL. */
int config_verify(const Config *c);
