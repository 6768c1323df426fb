/* The daemon's settings: one option table, strict value parsers, the INI file handlers and cross-checks. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "build-config.h"
#include "ini-reader.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "strv.h"

#define FIELD(c, o, type) ((type *)((uint8_t *)(c) + (o)->offset))

/* Times are handed to libevent in milliseconds; keep them well inside 32 bits. */
#define SECONDS_MAX (UINT32_MAX / 1000)
/* gRPC's length prefix and HTTP/2 settings are 32-bit. */
#define SIZE_LIMIT_MAX UINT32_MAX

_printf_(4, 5) static int log_invalid(const char *origin, const ConfigOption *o, const char *value,
                                      const char *format, ...) {
        char reason[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(reason, sizeof(reason), format, ap);
        va_end(ap);

        return log_error_errno(EINVAL, "%s: [%s] %s=%s: %s", origin, o->section, o->key, value, reason);
}

static int set_string(char **field, const char *value) {
        char *copy = NULL;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return log_oom();
        }
        free(*field);
        *field = copy;
        return 0;
}

static bool path_is_valid_absolute(const char *s) {
        return s[0] == '/' && strlen(s) < PATH_MAX;
}

static int parse_path(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        if (!path_is_valid_absolute(value))
                return log_invalid(origin, o, value, "must be an absolute path");
        return set_string(FIELD(c, o, char *), value);
}

/* For options where "" means "not set" (PciIds=: the built-in database; TLS files). */
static int parse_path_or_empty(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        if (!*value)
                return set_string(FIELD(c, o, char *), NULL);
        return parse_path(c, o, value, origin);
}

static int parse_unix_socket(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

        if (*value && strlen(value) > max)
                return log_invalid(origin, o, value, "a socket path can have at most %zu characters", max);
        return parse_path_or_empty(c, o, value, origin);
}

/* "system", "session", "none", or a D-Bus address ("unix:path=/run/bus", "unix:abstract=x,guid=..."). */
static int parse_dbus(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        const char *colon = strchr(value, ':');

        if (strcmp(value, "system") != 0 && strcmp(value, "session") != 0 && strcmp(value, "none") != 0 &&
            !(colon && colon > value && strchr(colon, '=')))
                return log_invalid(origin, o, value,
                                   "expected system, session, none or a D-Bus address such as unix:path=/run/bus");
        return set_string(FIELD(c, o, char *), value);
}

/* "none" or a libvirt connection URI ("qemu:///system", "test:///default"). */
static int parse_libvirt_uri(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        if (strcmp(value, "none") != 0 && !strstr(value, ":/"))
                return log_invalid(origin, o, value, "expected none or a libvirt URI such as qemu:///system");
        return set_string(FIELD(c, o, char *), value);
}

static int parse_bool_option(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        if (parse_bool(value, FIELD(c, o, bool)) < 0)
                return log_invalid(origin, o, value, "expected yes/no, true/false or 1/0");
        return 0;
}

static int parse_mode(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        size_t len = strlen(value);
        unsigned long mode;

        if (len < 3 || len > 4 || strspn(value, "01234567") != len)
                return log_invalid(origin, o, value, "expected an octal file mode between 000 and 0777");
        mode = strtoul(value, NULL, 8);
        if (mode > 0777)
                return log_invalid(origin, o, value, "expected an octal file mode between 000 and 0777");
        *FIELD(c, o, mode_t) = (mode_t)mode;
        return 0;
}

/* Seconds; 0 switches the feature off. */
static int parse_interval(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        uint32_t v;

        if (parse_u32(value, 10, &v) < 0 || v > SECONDS_MAX)
                return log_invalid(origin, o, value, "expected a number of seconds between 0 and %u",
                                   SECONDS_MAX);
        *FIELD(c, o, unsigned) = v;
        return 0;
}

static int parse_seconds(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        uint32_t v;

        if (parse_u32(value, 10, &v) < 0 || v < 1 || v > SECONDS_MAX)
                return log_invalid(origin, o, value, "expected a number of seconds between 1 and %u",
                                   SECONDS_MAX);
        *FIELD(c, o, unsigned) = v;
        return 0;
}

/* A count of things a client may hold; 0 would make the daemon refuse everything. */
static int parse_count(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        uint32_t v;

        if (parse_u32(value, 10, &v) < 0 || v < 1 || v > INT32_MAX)
                return log_invalid(origin, o, value, "expected a number between 1 and %d", INT32_MAX);
        *FIELD(c, o, unsigned) = v;
        return 0;
}

/* Bytes, optionally with K (KiB) or M (MiB). */
static int parse_size(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        _cleanup_(freep) char *digits = NULL;
        size_t len = strlen(value);
        uint64_t v, factor = 1;

        if (len > 0 && value[len - 1] == 'K') {
                factor = 1024;
                len--;
        } else if (len > 0 && value[len - 1] == 'M') {
                factor = 1024 * 1024;
                len--;
        }
        digits = strndup(value, len);
        if (!digits)
                return log_oom();

        if (parse_u64(digits, 10, &v) < 0 || v < 1 || v > SIZE_LIMIT_MAX / factor)
                return log_invalid(origin, o, value, "expected a size between 1 and %" PRIu32
                                   " bytes, optionally with K or M (e.g. 16K, 4M)", SIZE_LIMIT_MAX);
        *FIELD(c, o, size_t) = (size_t)(v * factor);
        return 0;
}

static bool address_is_loopback(int family, const void *addr) {
        const struct in6_addr *a6 = addr;

        /* The same rule as the gRPC transport's bind check: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
        if (family == AF_INET)
                return (ntohl(((const struct in_addr *)addr)->s_addr) >> 24) == 127;
        return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* "1.2.3.4:443" or "[v6]:443", numeric only: a listener binds a literal address, and resolving a
 * name at startup would make the daemon depend on DNS. Returns the canonical spelling, so that
 * duplicates can be found by comparing strings. ret_loopback may be NULL. */
static int parse_address_port(const ConfigOption *o, const char *value, const char *origin, char **ret,
                              bool *ret_loopback) {
        _cleanup_(freep) char *host = NULL;
        char buf[INET6_ADDRSTRLEN], *canonical;
        struct in6_addr addr;
        const char *port_str;
        int family;
        uint32_t port;

        if (value[0] == '[') {
                const char *end = strchr(value, ']');

                if (!end || end[1] != ':')
                        return log_invalid(origin, o, value, "expected [IPv6]:PORT, e.g. [::1]:7443");
                family = AF_INET6;
                host = strndup(value + 1, end - value - 1);
                port_str = end + 2;
        } else {
                const char *colon = strrchr(value, ':');

                if (!colon)
                        return log_invalid(origin, o, value, "expected ADDRESS:PORT, e.g. 192.0.2.1:7443");
                family = AF_INET;
                host = strndup(value, colon - value);
                port_str = colon + 1;
        }
        if (!host)
                return log_oom();

        if (inet_pton(family, host, &addr) != 1) {
                if (family == AF_INET6)
                        return log_invalid(origin, o, value, "'%s' is not an IPv6 address", host);
                if (inet_pton(AF_INET6, host, &addr) == 1)
                        return log_invalid(origin, o, value, "write IPv6 in brackets: [%s]:PORT", host);
                return log_invalid(origin, o, value, "'%s' is not a numeric IPv4 address", host);
        }
        if (parse_u32(port_str, 10, &port) < 0 || port < 1 || port > 65535)
                return log_invalid(origin, o, value, "port '%s' is not a number between 1 and 65535",
                                   port_str);

        if (!inet_ntop(family, &addr, buf, sizeof(buf)))
                return log_error_errno(errno, "%s: cannot format address '%s': %m", origin, host);
        if (asprintf(&canonical, family == AF_INET6 ? "[%s]:%" PRIu32 : "%s:%" PRIu32, buf, port) < 0)
                return log_oom();

        if (ret_loopback)
                *ret_loopback = address_is_loopback(family, &addr);
        *ret = canonical;
        return 0;
}

static int parse_listen_list(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        char ***list = FIELD(c, o, char **);
        _cleanup_(freep) char *address = NULL;
        size_t n = strv_length(*list);
        int r;

        if (!*value) {
                *list = strv_free(*list);
                return 0;
        }

        r = parse_address_port(o, value, origin, &address, NULL);
        if (r < 0)
                return r;
        r = strv_push(list, &n, address);
        if (r < 0)
                return log_oom();
        TAKE_PTR(address);
        return 0;
}

static int parse_listen_insecure(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        char **field = FIELD(c, o, char *);
        _cleanup_(freep) char *address = NULL;
        bool loopback;
        int r;

        if (!*value)
                return set_string(field, NULL);

        r = parse_address_port(o, value, origin, &address, &loopback);
        if (r < 0)
                return r;
        if (!loopback)
                return log_invalid(origin, o, value,
                                   "only a loopback address (127.0.0.0/8, [::1]) is accepted: plaintext "
                                   "connections are neither encrypted nor authenticated, so they must not "
                                   "be reachable from other hosts; use TLS= for remote clients");
        free(*field);
        *field = TAKE_PTR(address);
        return 0;
}

/* Any address: metrics are read-only, and Prometheus usually scrapes from another host. */
static int parse_listen_address(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        char **field = FIELD(c, o, char *);
        _cleanup_(freep) char *address = NULL;
        int r;

        if (!*value)
                return set_string(field, NULL);
        r = parse_address_port(o, value, origin, &address, NULL);
        if (r < 0)
                return r;
        free(*field);
        *field = TAKE_PTR(address);
        return 0;
}

static int parse_hook_unreachable(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        HookUnreachable *field = FIELD(c, o, HookUnreachable);

        if (strcmp(value, "start") == 0)
                *field = HOOK_UNREACHABLE_START;
        else if (strcmp(value, "fail") == 0)
                *field = HOOK_UNREACHABLE_FAIL;
        else
                return log_invalid(origin, o, value, "expected start or fail");
        return 0;
}

static void principal_list_done(PrincipalList *l) {
        FOREACH_ARRAY(p, l->items, l->n)
                free(p->name);
        free(l->items);
        *l = (PrincipalList){};
}

static bool lookup_failed_for_real(int error) {
        /* getpwnam()/getgrnam() report "no such entry" with any of these (see their man pages). */
        return !(error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM);
}

static int parse_principal(const ConfigOption *o, const char *token, const char *value, const char *origin,
                           Principal *ret) {
        const char *arg = strchr(token, ':');
        Principal p = {};

        if (!arg)
                goto invalid;
        arg++;

        if (strcmp(token, "unix:*") == 0)
                p.kind = PRINCIPAL_ANY_UNIX;
        else if (strcmp(token, "tls:*") == 0)
                p.kind = PRINCIPAL_ANY_TLS;
        else if (strcmp(token, "insecure:*") == 0)
                p.kind = PRINCIPAL_ANY_INSECURE;
        else if (strncmp(token, "uid:", 4) == 0 || strncmp(token, "gid:", 4) == 0) {
                uint32_t id;

                /* (uid_t)-1 means "no id" to the kernel and can never be a peer's. */
                if (parse_u32(arg, 10, &id) < 0 || id == UINT32_MAX)
                        return log_invalid(origin, o, value, "'%s': '%s' is not a numeric id", token, arg);
                p.kind = token[0] == 'u' ? PRINCIPAL_UID : PRINCIPAL_GID;
                p.uid = p.gid = id;
        } else if (strncmp(token, "user:", 5) == 0) {
                struct passwd *pw;

                errno = 0;
                pw = *arg ? getpwnam(arg) : NULL;
                if (!pw) {
                        if (lookup_failed_for_real(errno))
                                return log_invalid(origin, o, value, "cannot look up user '%s': %s", arg,
                                                   strerror(errno));
                        return log_invalid(origin, o, value, "unknown user '%s'", arg);
                }
                p.kind = PRINCIPAL_UID;
                p.uid = pw->pw_uid;
                p.name = strdup(arg);
                if (!p.name)
                        return log_oom();
        } else if (strncmp(token, "group:", 6) == 0) {
                struct group *gr;

                errno = 0;
                gr = *arg ? getgrnam(arg) : NULL;
                if (!gr) {
                        if (lookup_failed_for_real(errno))
                                return log_invalid(origin, o, value, "cannot look up group '%s': %s", arg,
                                                   strerror(errno));
                        return log_invalid(origin, o, value, "unknown group '%s'", arg);
                }
                p.kind = PRINCIPAL_GID;
                p.gid = gr->gr_gid;
                p.name = strdup(arg);
                if (!p.name)
                        return log_oom();
        } else if (strncmp(token, "san-dns:", 8) == 0 || strncmp(token, "san-uri:", 8) == 0) {
                /* Certificates with other bytes in these names are refused, so such a principal
                 * could never match; the value has no spaces anyway (the list splits on them). */
                for (const char *ch = arg; *ch; ch++)
                        if ((unsigned char)*ch < 0x21 || (unsigned char)*ch > 0x7e)
                                return log_invalid(origin, o, value, "'%s': a name in a certificate is printable ASCII",
                                                   token);
                if (!*arg)
                        return log_invalid(origin, o, value, "'%s' names nothing", token);
                if (token[4] == 'u' && !strstr(arg, ":"))
                        return log_invalid(origin, o, value, "'%s' is not a URI such as san-uri:spiffe://example.org/x",
                                           token);
                p.kind = token[4] == 'd' ? PRINCIPAL_SAN_DNS : PRINCIPAL_SAN_URI;
                p.name = strdup(arg);
                if (!p.name)
                        return log_oom();
        } else if (strncmp(token, "cn:", 3) == 0 || strncmp(token, "subject:", 8) == 0) {
                if (!*arg)
                        return log_invalid(origin, o, value, "'%s' names nothing", token);
                /* An RFC 2253 subject always has an attribute: catch "subject:op1" meant as a CN. */
                if (token[0] == 's' && !strchr(arg, '='))
                        return log_invalid(origin, o, value,
                                           "'%s' is not a subject such as subject:CN=op1,O=example", token);
                p.kind = token[0] == 'c' ? PRINCIPAL_CN : PRINCIPAL_SUBJECT;
                p.name = strdup(arg);
                if (!p.name)
                        return log_oom();
        } else
                goto invalid;

        *ret = p;
        return 0;

invalid:
        return log_invalid(origin, o, value,
                           "unknown principal '%s'; expected uid:N, user:NAME, gid:N, group:NAME, cn:NAME, "
                           "subject:DN, san-dns:NAME, san-uri:URI, unix:*, tls:* or insecure:*",
                           token);
}

/* Space-separated principals, so a subject:DN cannot contain spaces; RFC 2253 needs none between
 * attributes ("CN=op1,O=example"). */
static int parse_roles(Config *c, const ConfigOption *o, const char *value, const char *origin) {
        PrincipalList *list = FIELD(c, o, PrincipalList);
        _cleanup_(principal_list_done) PrincipalList parsed = {};
        _cleanup_(freep) char *copy = NULL;
        char *saveptr = NULL;
        int r;

        copy = strdup(value);
        if (!copy)
                return log_oom();

        /* Parse the whole value first, so a bad entry leaves the lists as they were. */
        for (char *token = strtok_r(copy, " \t", &saveptr); token; token = strtok_r(NULL, " \t", &saveptr)) {
                Principal p, *slot;

                r = parse_principal(o, token, value, origin, &p);
                if (r < 0)
                        return r;
                slot = array_append(&parsed.items, &parsed.n, sizeof(Principal));
                if (!slot) {
                        free(p.name);
                        return log_oom();
                }
                *slot = p;
        }

        if (c->default_roles) {
                principal_list_done(&c->admins);
                c->default_roles = false;
        }
        if (!*value)
                principal_list_done(list);

        FOREACH_ARRAY(p, parsed.items, parsed.n) {
                Principal *slot = array_append(&list->items, &list->n, sizeof(Principal));

                if (!slot)
                        return log_oom();
                *slot = *p;
                p->name = NULL; /* moved */
        }
        return 0;
}

#define OPTION(section, key, flag, value_name, help, parse, field)                                        \
        { section, key, flag, value_name, help, parse, offsetof(Config, field) }

static const ConfigOption options[] = {
        OPTION("Daemon", "SysfsRoot", "sysfs-root", "DIR", "Read sysfs below DIR/sys (default: /)",
               parse_path, sysfs_root),
        OPTION("Daemon", "ProcRoot", "proc-root", "DIR", "Read procfs below DIR/proc (default: /)",
               parse_path, proc_root),
        OPTION("Daemon", "DevRoot", "dev-root", "DIR", "Read device nodes below DIR/dev (default: /)",
               parse_path, dev_root),
        OPTION("Daemon", "PciIds", "pci-ids", "FILE", "pci.ids database for names (default: built in)",
               parse_path_or_empty, pci_ids),
        OPTION("Daemon", "RescanIntervalSec", "rescan-interval", "SECONDS",
               "Full rescan period besides uevents; 0 disables (default: 300)", parse_interval,
               rescan_interval_sec),
        OPTION("Daemon", "StateDirectory", "state-directory", "DIR",
               "State kept across reboots (default: " IOMMUD_STATE_DIR ")", parse_path, state_directory),
        OPTION("Daemon", "PolicyDirectory", "policy-directory", "DIR",
               "Policy rules, *.conf (default: " IOMMUD_POLICY_DIR ")", parse_path, policy_directory),
        OPTION("Daemon", "RuntimeDirectory", "runtime-directory", "DIR",
               "Intent journal and runtime files (default: " IOMMUD_RUNTIME_DIR ")", parse_path, runtime_directory),
        OPTION("Daemon", "Udev", "udev", "BOOL", "Follow device changes through udev (default: yes)",
               parse_bool_option, udev),
        OPTION("Daemon", "DBus", "dbus", "BUS",
               "D-Bus: system, session, none or an address (default: system, skipped when it is not running)",
               parse_dbus, dbus),
        OPTION("Daemon", "LibvirtURI", "libvirt-uri", "URI",
               "libvirt to follow for the domains that use groups; none: do not (default: qemu:///system)",
               parse_libvirt_uri, libvirt_uri),

        OPTION("Listen", "Unix", "unix-socket", "PATH",
               "gRPC on a Unix socket; empty: none (default: " IOMMUD_SOCKET ")", parse_unix_socket,
               unix_socket),
        OPTION("Listen", "UnixMode", "unix-socket-mode", "MODE",
               "Access mode of the Unix socket; calls are authorized per peer (default: 0666)", parse_mode,
               unix_mode),
        OPTION("Listen", "TLS", "listen-tls", "ADDR:PORT",
               "gRPC with mutual TLS on ADDR:PORT or [V6]:PORT; repeatable, empty clears (default: none)",
               parse_listen_list, tls_listen),
        OPTION("Listen", "InsecureTCP", "listen-insecure-tcp", "ADDR:PORT",
               "Plaintext gRPC on a loopback address, peers without identity (default: none)",
               parse_listen_insecure, insecure_tcp),

        OPTION("Metrics", "Listen", "metrics-listen", "ADDR:PORT",
               "Prometheus metrics over HTTP at /metrics on ADDR:PORT or [V6]:PORT (default: none)",
               parse_listen_address, metrics_listen),

        OPTION("TLS", "Certificate", "tls-certificate", "FILE", "Server certificate chain (PEM)",
               parse_path_or_empty, tls_certificate),
        OPTION("TLS", "Key", "tls-key", "FILE", "Private key of the server certificate (PEM)",
               parse_path_or_empty, tls_key),
        OPTION("TLS", "ClientCA", "tls-client-ca", "FILE", "CAs that sign client certificates (PEM)",
               parse_path_or_empty, tls_client_ca),
        OPTION("TLS", "CRL", "tls-crl", "FILE",
               "Revocation lists (PEM) of the client CAs; then every client certificate is checked",
               parse_path_or_empty, tls_crl),

        OPTION("Roles", "Reader", "reader", "PRINCIPALS",
               "Principals allowed to read and watch; repeatable, empty clears", parse_roles, readers),
        OPTION("Roles", "Operator", "operator", "PRINCIPALS",
               "Principals that may also prepare and release groups", parse_roles, operators),
        OPTION("Roles", "Admin", "admin", "PRINCIPALS",
               "Principals that may also set domain types, block, apply policy, force (default: uid:0)",
               parse_roles, admins),
        OPTION("Roles", "GroupRefreshSec", "group-refresh", "SECONDS",
               "Look group memberships up again this often, and at reload (default: 300)", parse_seconds,
               group_refresh_sec),

        OPTION("Limits", "MaxConnections", "max-connections", "N",
               "Client connections per listener (default: 256)", parse_count, limits.max_connections),
        OPTION("Limits", "MaxConnectionsPerPeer", "max-connections-per-peer", "N",
               "Connections per uid, certificate or address; root on the Unix socket is exempt (default: 16)",
               parse_count, limits.max_connections_per_peer),
        OPTION("Limits", "ReservedConnections", "reserved-connections", "N",
               "Connections peers without a role cannot take, and again readers cannot (default: 32)",
               parse_count, limits.reserved_connections),
        OPTION("Limits", "MaxHandshakes", "max-handshakes", "N",
               "TLS connections still in their handshake per listener; the oldest gives way (default: 64)",
               parse_count, limits.max_handshakes),
        OPTION("Limits", "MaxStreams", "max-streams", "N", "Concurrent calls per connection (default: 100)",
               parse_count, limits.max_streams),
        OPTION("Limits", "MaxMessageSize", "max-message-size", "SIZE",
               "Largest request message (default: 4M)", parse_size, limits.max_message_size),
        OPTION("Limits", "MaxHeaderListSize", "max-header-list-size", "SIZE",
               "Largest request header list (default: 16K)", parse_size, limits.max_header_list_size),
        OPTION("Limits", "MaxHeaderFields", "max-header-fields", "N",
               "Request header fields per call (default: 64)", parse_count, limits.max_header_fields),
        OPTION("Limits", "MaxConnectionMemory", "max-connection-memory", "SIZE",
               "Memory one connection may hold: requests, responses, HTTP/2 state (default: 16M)", parse_size,
               limits.max_connection_memory),
        OPTION("Limits", "MaxPeerMemory", "max-peer-memory", "SIZE",
               "Memory all connections of one peer may hold; operators and admins are exempt (default: 32M)",
               parse_size, limits.max_peer_memory),
        OPTION("Limits", "MaxMemory", "max-memory", "SIZE",
               "Memory all connections may hold; half for peers without a role (default: 256M)", parse_size,
               limits.max_memory),
        OPTION("Limits", "MaxSendQueue", "max-send-queue", "SIZE",
               "Responses queued per call for a slow client (default: 4M)", parse_size, limits.max_send_queue),
        OPTION("Limits", "HandshakeTimeoutSec", "handshake-timeout", "SECONDS",
               "From accept to the client's HTTP/2 preface, TLS included (default: 10)", parse_seconds,
               limits.handshake_timeout_sec),
        OPTION("Limits", "HeaderTimeoutSec", "header-timeout", "SECONDS",
               "For one request header block (default: 10)", parse_seconds, limits.header_timeout_sec),
        OPTION("Limits", "RequestTimeoutSec", "request-timeout", "SECONDS",
               "For one request message to arrive (default: 30)", parse_seconds, limits.request_timeout_sec),
        OPTION("Limits", "IdleTimeoutSec", "idle-timeout", "SECONDS",
               "Close connections without calls after this long; 0: never (default: 300)", parse_interval,
               limits.idle_timeout_sec),
        OPTION("Limits", "KeepaliveSec", "keepalive", "SECONDS",
               "PING quiet TCP clients after this long; 0: never (default: 60)", parse_interval,
               limits.keepalive_sec),
        OPTION("Limits", "KeepaliveTimeoutSec", "keepalive-timeout", "SECONDS",
               "Close a TCP connection whose PING is not answered in this time (default: 20)", parse_seconds,
               limits.keepalive_timeout_sec),
        OPTION("Limits", "MaxWatchers", "max-watchers", "N", "Watch subscribers, all clients (default: 64)",
               parse_count, limits.max_watchers),
        OPTION("Limits", "MaxQueuedOperations", "max-queued-operations", "N",
               "Operations waiting for the executor (default: 32)", parse_count,
               limits.max_queued_operations),
        OPTION("Limits", "OperationTimeoutSec", "operation-timeout", "SECONDS",
               "Time one operation may take (default: 120)", parse_seconds, limits.operation_timeout_sec),
        OPTION("Limits", "KernelWriteTimeoutSec", "kernel-write-timeout", "SECONDS",
               "Time one kernel write may block before its operation is failed (default: 30)", parse_seconds,
               limits.kernel_write_timeout_sec),

        OPTION("LibvirtHook", "OnUnreachable", "libvirt-hook-on-unreachable", "start|fail",
               "iommud-libvirt-hook, when iommud cannot be reached: let the domain start with its host "
               "devices as they are, or fail its start (default: start)",
               parse_hook_unreachable, hook_on_unreachable),
        OPTION("LibvirtHook", "CallTimeoutSec", "libvirt-hook-call-timeout", "SECONDS",
               "iommud-libvirt-hook: time one call to iommud may take; at least OperationTimeoutSec= "
               "(default: 150)",
               parse_seconds, hook_call_timeout_sec),
};

const ConfigOption *config_options(size_t *ret_n) {
        *ret_n = ELEMENTSOF(options);
        return options;
}

static bool section_is_known(const char *section) {
        FOREACH_ARRAY(o, options, ELEMENTSOF(options))
                if (strcmp(o->section, section) == 0)
                        return true;
        return false;
}

static const ConfigOption *option_find(const char *section, const char *key) {
        FOREACH_ARRAY(o, options, ELEMENTSOF(options))
                if (strcmp(o->section, section) == 0 && strcmp(o->key, key) == 0)
                        return o;
        return NULL;
}

int config_init_defaults(Config *c) {
        static const Principal root = { .kind = PRINCIPAL_UID, .uid = 0 };

        *c = (Config){
                .rescan_interval_sec = 300,
                .udev = true,
                .unix_mode = 0666,
                .default_roles = true,
                .group_refresh_sec = 300,
                .limits = {
                        .max_connections = 256,
                        .max_connections_per_peer = 16,
                        .reserved_connections = 32,
                        .max_handshakes = 64,
                        .max_streams = 100,
                        .max_message_size = 4 * 1024 * 1024,
                        .max_header_list_size = 16 * 1024,
                        .max_header_fields = 64,
                        .max_connection_memory = 16 * 1024 * 1024,
                        .max_peer_memory = 32 * 1024 * 1024,
                        .max_memory = 256 * 1024 * 1024,
                        .max_send_queue = 4 * 1024 * 1024,
                        .handshake_timeout_sec = 10,
                        .header_timeout_sec = 10,
                        .request_timeout_sec = 30,
                        .idle_timeout_sec = 300,
                        .keepalive_sec = 60,
                        .keepalive_timeout_sec = 20,
                        .max_watchers = 64,
                        .max_queued_operations = 32,
                        .operation_timeout_sec = 120,
                        .kernel_write_timeout_sec = 30,
                },
                .hook_call_timeout_sec = 150,
        };

        c->sysfs_root = strdup("/");
        c->proc_root = strdup("/");
        c->dev_root = strdup("/");
        c->state_directory = strdup(IOMMUD_STATE_DIR);
        c->policy_directory = strdup(IOMMUD_POLICY_DIR);
        c->runtime_directory = strdup(IOMMUD_RUNTIME_DIR);
        c->unix_socket = strdup(IOMMUD_SOCKET);
        c->libvirt_uri = strdup("qemu:///system");
        c->admins.items = malloc(sizeof(Principal));
        if (!c->sysfs_root || !c->proc_root || !c->dev_root || !c->state_directory || !c->policy_directory ||
            !c->runtime_directory || !c->unix_socket || !c->libvirt_uri || !c->admins.items)
                return -ENOMEM;
        c->admins.items[0] = root;
        c->admins.n = 1;
        return 0;
}

void config_done(Config *c) {
        free(c->sysfs_root);
        free(c->proc_root);
        free(c->dev_root);
        free(c->pci_ids);
        free(c->state_directory);
        free(c->policy_directory);
        free(c->runtime_directory);
        free(c->unix_socket);
        free(c->dbus);
        free(c->libvirt_uri);
        strv_free(c->tls_listen);
        free(c->insecure_tcp);
        free(c->metrics_listen);
        free(c->tls_certificate);
        free(c->tls_key);
        free(c->tls_client_ca);
        free(c->tls_crl);
        principal_list_done(&c->readers);
        principal_list_done(&c->operators);
        principal_list_done(&c->admins);
        *c = (Config){};
}

int config_set(Config *c, const char *section, const char *key, const char *value, const char *origin) {
        const ConfigOption *o;

        if (!section_is_known(section))
                return log_error_errno(EINVAL, "%s: unknown section [%s]", origin, section);

        o = option_find(section, key);
        if (!o) {
                /* Keys are case-sensitive, like systemd's; point at the likely typo. */
                FOREACH_ARRAY(i, options, ELEMENTSOF(options))
                        if (strcmp(i->section, section) == 0 && strcasecmp(i->key, key) == 0)
                                return log_error_errno(EINVAL,
                                                       "%s: unknown key %s= in [%s], did you mean %s=?",
                                                       origin, key, section, i->key);
                return log_error_errno(EINVAL, "%s: unknown key %s= in [%s]", origin, key, section);
        }

        return o->parse(c, o, value, origin);
}

typedef struct ParseState {
        Config *config;
        const char *path;
} ParseState;

static int on_ini_section(void *userdata, const char *name, unsigned line) {
        ParseState *st = userdata;

        if (!section_is_known(name))
                return log_error_errno(EINVAL, "%s:%u: unknown section [%s]", st->path, line, name);
        return 0;
}

static int on_ini_key(void *userdata, const char *section, const char *key, const char *value, unsigned line) {
        ParseState *st = userdata;
        _cleanup_(freep) char *origin = NULL;

        if (asprintf(&origin, "%s:%u", st->path, line) < 0)
                return log_oom();
        return config_set(st->config, section, key, value, origin);
}

static void on_ini_error(void *userdata, unsigned line, const char *message) {
        ParseState *st = userdata;

        log_error("%s:%u: %s", st->path, line, message);
}

int config_load_file(Config *c, const char *path, bool must_exist) {
        static const IniHandler handler = {
                .on_section = on_ini_section,
                .on_key = on_ini_key,
                .on_error = on_ini_error,
                .long_line_hint = "; split it (list options append)",
        };
        _cleanup_(fclosep) FILE *f = NULL;
        ParseState st = { .config = c, .path = path };
        int r;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && !must_exist) {
                        log_debug("No configuration file %s, using defaults.", path);
                        return 0;
                }
                return log_error_errno(errno, "Failed to open configuration file %s: %m", path);
        }

        r = ini_read(f, &handler, &st);
        if (r == -ENOMEM)
                return log_oom();
        if (r == -EIO)
                return log_error_errno(EIO, "Failed to read configuration file %s: %m", path);
        return r;
}

static void log_option_problem(const char *section, const char *key, const char *problem) {
        const ConfigOption *o = option_find(section, key);

        log_error("[%s] %s= (--%s) %s", o->section, o->key, o->flag, problem);
}

/* Limits that contradict each other would lock clients out in ways that are hard to see. */
static int verify_limits(const ConfigLimits *l) {
        int r = 0;

        if (2 * (uint64_t)l->reserved_connections >= l->max_connections) {
                log_error("[Limits] ReservedConnections= (--reserved-connections) %u must be less than half of "
                          "MaxConnections= (%u): both reserves come out of it and peers without a role need room",
                          l->reserved_connections, l->max_connections);
                r = -EINVAL;
        }
        if (l->max_connections_per_peer > l->max_connections)
                log_warning("[Limits] MaxConnectionsPerPeer= (%u) is above MaxConnections= (%u); the listener's "
                            "limit applies first.",
                            l->max_connections_per_peer, l->max_connections);
        /* A request of the largest size is held twice while it is decoded: its bytes and the message. */
        if (l->max_connection_memory < 2 * (uint64_t)l->max_message_size) {
                log_error("[Limits] MaxConnectionMemory= (--max-connection-memory) %zu must be at least twice "
                          "MaxMessageSize= (%zu), or a request of that size can never be received",
                          l->max_connection_memory, l->max_message_size);
                r = -EINVAL;
        }
        if (l->max_peer_memory < l->max_connection_memory) {
                log_error("[Limits] MaxPeerMemory= (--max-peer-memory) %zu is below MaxConnectionMemory= (%zu)",
                          l->max_peer_memory, l->max_connection_memory);
                r = -EINVAL;
        }
        if (l->max_memory / 2 < l->max_peer_memory) {
                log_error("[Limits] MaxMemory= (--max-memory) %zu must be at least twice MaxPeerMemory= (%zu): "
                          "peers without a role share half of it",
                          l->max_memory, l->max_peer_memory);
                r = -EINVAL;
        }
        return r;
}

int config_verify(const Config *c) {
        int r = 0;

        if (c->tls_listen) {
                if (!c->tls_certificate) {
                        log_option_problem("TLS", "Certificate", "is required when TLS= listeners are set");
                        r = -EINVAL;
                }
                if (!c->tls_key) {
                        log_option_problem("TLS", "Key", "is required when TLS= listeners are set");
                        r = -EINVAL;
                }
                if (!c->tls_client_ca) {
                        log_option_problem("TLS", "ClientCA",
                                           "is required when TLS= listeners are set: every TLS client must "
                                           "present a certificate, its subject decides the role");
                        r = -EINVAL;
                }
        } else if (c->tls_certificate || c->tls_key || c->tls_client_ca || c->tls_crl)
                log_warning("[TLS] files are set but there is no [Listen] TLS= listener; ignoring them.");

        /* Legal (e.g. a read-only deployment), but easy to do by accident: naming any role drops the
         * built-in "uid 0 is admin". */
        if (c->admins.n == 0)
                log_warning("[Roles] maps nobody to the admin role (--admin); domain types, blocking and "
                            "policy cannot be changed.");

        r = verify_limits(&c->limits) < 0 ? -EINVAL : r;

        /* A hook that gave up on a prepare the daemon then completes would fail the domain's start
         * and leave the group prepared for nobody. */
        if (c->hook_call_timeout_sec < c->limits.operation_timeout_sec) {
                log_error("[LibvirtHook] CallTimeoutSec= (--libvirt-hook-call-timeout) %u is below [Limits] "
                          "OperationTimeoutSec= (%u): the hook would give up on operations iommud still completes",
                          c->hook_call_timeout_sec, c->limits.operation_timeout_sec);
                r = -EINVAL;
        }

        /* Addresses are canonical, so equal strings are the same socket address. */
        for (char **i = c->tls_listen; i && *i; i++) {
                for (char **j = c->tls_listen; j < i; j++)
                        if (strcmp(*i, *j) == 0) {
                                log_error("[Listen] TLS= (--listen-tls) lists %s twice", *i);
                                r = -EINVAL;
                                break;
                        }
                if (c->insecure_tcp && strcmp(*i, c->insecure_tcp) == 0) {
                        log_error("[Listen] TLS= (--listen-tls) and InsecureTCP= (--listen-insecure-tcp) "
                                  "both use %s",
                                  *i);
                        r = -EINVAL;
                }
                if (c->metrics_listen && strcmp(*i, c->metrics_listen) == 0) {
                        log_error("[Listen] TLS= (--listen-tls) and [Metrics] Listen= (--metrics-listen) both use %s",
                                  *i);
                        r = -EINVAL;
                }
        }
        if (c->metrics_listen && c->insecure_tcp && strcmp(c->metrics_listen, c->insecure_tcp) == 0) {
                log_error("[Listen] InsecureTCP= (--listen-insecure-tcp) and [Metrics] Listen= (--metrics-listen) "
                          "both use %s",
                          c->metrics_listen);
                r = -EINVAL;
        }
        return r;
}
