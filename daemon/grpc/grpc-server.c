/* The gRPC server object: method table, listeners (Unix h2c, TCP+TLS, loopback h2c), limits, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "grpc-internal.h"
#include "log.h"
#include "parse.h"

static const char *const role_names[_GRPC_ROLE_MAX] = {
        [GRPC_ROLE_NONE] = "none",
        [GRPC_ROLE_READER] = "reader",
        [GRPC_ROLE_OPERATOR] = "operator",
        [GRPC_ROLE_ADMIN] = "admin",
};

const char *grpc_role_to_string(GrpcRole r) {
        if ((unsigned)r >= _GRPC_ROLE_MAX)
                return NULL;
        return role_names[r];
}

void grpc_limits_default(GrpcLimits *ret) {
        *ret = (GrpcLimits){
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
                .handshake_timeout_ms = 10 * 1000,
                .header_timeout_ms = 10 * 1000,
                .request_timeout_ms = 30 * 1000,
                .idle_timeout_ms = 300 * 1000,
                .keepalive_ms = 60 * 1000,
                .keepalive_timeout_ms = 20 * 1000,
        };
}

/* ---- refusals --------------------------------------------------------------------------------- */

#define REFUSAL_WINDOW_USEC (10 * 1000000ULL)
#define REFUSAL_BURST 10

static void on_refusal_summary(evutil_socket_t fd, short what, void *userdata) {
        GrpcServer *s = userdata;
        uint64_t n = ratelimit_take_suppressed(&s->refusal_log);

        if (n > 0)
                log_info("Refused %" PRIu64 " more gRPC connections or calls in the last %llu s (not logged one by one).",
                         n, REFUSAL_WINDOW_USEC / 1000000);
}

void grpc_server_log_refusal(GrpcServer *s, const char *format, ...) {
        char line[512];
        va_list ap;

        /* A client that is refused thousands of times a second must not push the daemon's own
         * audit lines out of the journal's rate limit. */
        if (!ratelimit_below(&s->refusal_log, now_usec())) {
                if (s->refusal_summary && !evtimer_pending(s->refusal_summary, NULL)) {
                        struct timeval tv = {.tv_sec = REFUSAL_WINDOW_USEC / 1000000};
                        evtimer_add(s->refusal_summary, &tv);
                }
                return;
        }
        va_start(ap, format);
        vsnprintf(line, sizeof(line), format, ap);
        va_end(ap);
        log_info("%s", line);
}

GrpcRole grpc_server_role(GrpcServer *s, const GrpcPeer *peer) {
        return s->authorize ? s->authorize(peer, s->authorize_userdata) : GRPC_ROLE_NONE;
}

void grpc_server_set_limits(GrpcServer *s, const GrpcLimits *limits) {
        s->limits = *limits;
}

void grpc_server_set_resolver(GrpcServer *s, GrpcResolveFunc resolve, void *userdata) {
        s->resolve = resolve;
        s->resolve_userdata = userdata;
}

void grpc_server_peers_resolved(GrpcServer *s) {
        for (GrpcConn *c = s->conns, *n; c; c = n) {
                n = c->next;
                if (c->awaiting_peer)
                        grpc_conn_resolved(c);
                else
                        grpc_conn_restanding(c);
        }
}

static void on_reap(evutil_socket_t fd, short what, void *userdata) {
        GrpcServer *s = userdata;

        while (s->dead) {
                GrpcConn *c = s->dead;
                s->dead = c->next;
                s->n_conns--;
                grpc_conn_free(c);
        }
        if (s->shutting_down && s->n_conns == 0 && s->shutdown_done)
                event_active(s->shutdown_done_event, EV_TIMEOUT, 0);
}

void grpc_server_reap_later(GrpcServer *s) {
        event_active(s->reap_event, EV_TIMEOUT, 0);
}

static GrpcListener *listener_free(GrpcListener *l) {
        if (!l)
                return NULL;
        /* Connections outlive their listener during a graceful shutdown. */
        for (GrpcConn *c = l->server->conns; c; c = c->next)
                if (c->listener == l)
                        c->listener = NULL;
        for (GrpcConn *c = l->server->dead; c; c = c->next)
                if (c->listener == l)
                        c->listener = NULL;
        if (l->evl)
                evconnlistener_free(l->evl);
        if (l->ssl_ctx)
                SSL_CTX_free(l->ssl_ctx);
        if (l->unix_path) {
                (void)unlink(l->unix_path);
                free(l->unix_path);
        }
        free(l);
        return NULL;
}

static void server_close_listeners(GrpcServer *s) {
        while (s->listeners) {
                GrpcListener *l = s->listeners;
                s->listeners = l->next;
                listener_free(l);
        }
}

GrpcServer *grpc_server_free(GrpcServer *s) {
        if (!s)
                return NULL;
        server_close_listeners(s);
        while (s->conns)
                grpc_conn_close(s->conns);
        while (s->dead) {
                GrpcConn *c = s->dead;
                s->dead = c->next;
                grpc_conn_free(c);
        }
        /* Health watchers were cancelled with their connections. */
        for (size_t i = 0; i < s->n_health; i++)
                free(s->health[i].service);
        free(s->health);
        free(s->health_watchers);
        for (size_t i = 0; i < s->n_methods; i++)
                free(s->methods[i].stats);
        free(s->methods);
        while (s->slots) {
                GrpcPeerSlot *slot = s->slots;
                s->slots = slot->next;
                free(slot->key);
                free(slot);
        }
        if (s->refusal_summary) {
                on_refusal_summary(-1, 0, s);
                event_free(s->refusal_summary);
        }
        if (s->reap_event)
                event_free(s->reap_event);
        if (s->shutdown_timer)
                event_free(s->shutdown_timer);
        if (s->shutdown_done_event)
                event_free(s->shutdown_done_event);
        free(s);
        return NULL;
}

static void on_shutdown_done(evutil_socket_t fd, short what, void *userdata) {
        GrpcServer *s = userdata;
        GrpcShutdownDone done = s->shutdown_done;

        s->shutdown_done = NULL;
        if (done)
                done(s, s->shutdown_userdata);
}

void grpc_server_set_denial(GrpcServer *s, GrpcDenialFunc denial) {
        s->denial = denial;
}

int grpc_server_new(struct event_base *base, const GrpcLimits *limits, GrpcAuthorizeFunc authorize,
                    void *authorize_userdata, GrpcServer **ret) {
        _cleanup_(grpc_server_freep) GrpcServer *s = NULL;

        s = calloc(1, sizeof(GrpcServer));
        if (!s)
                return -ENOMEM;
        s->base = base;
        if (limits)
                s->limits = *limits;
        else
                grpc_limits_default(&s->limits);
        s->authorize = authorize;
        s->authorize_userdata = authorize_userdata;

        s->refusal_log = (RateLimit)RATELIMIT_INIT(REFUSAL_WINDOW_USEC, REFUSAL_BURST);

        s->reap_event = event_new(base, -1, 0, on_reap, s);
        s->shutdown_done_event = event_new(base, -1, 0, on_shutdown_done, s);
        s->refusal_summary = evtimer_new(base, on_refusal_summary, s);
        if (!s->reap_event || !s->shutdown_done_event || !s->refusal_summary)
                return -ENOMEM;

        int r = grpc_server_set_health(s, "", GRPC_HEALTH_SERVING);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

static int method_entry_cmp(const void *a, const void *b) {
        const GrpcMethodEntry *x = a, *y = b;
        return strcmp(x->method->path, y->method->path);
}

static int path_entry_cmp(const void *key, const void *elem) {
        const GrpcMethodEntry *e = elem;
        return strcmp(key, e->method->path);
}

const GrpcMethodEntry *grpc_server_find_method(GrpcServer *s, const char *path) {
        if (s->n_methods == 0)
                return NULL;
        return bsearch(path, s->methods, s->n_methods, sizeof(GrpcMethodEntry), path_entry_cmp);
}

int grpc_server_add_methods(GrpcServer *s, const GrpcMethod *methods, size_t n, void *userdata) {
        for (size_t i = 0; i < n; i++) {
                const GrpcMethod *m = &methods[i];
                if (!m->path || m->path[0] != '/' || !m->request || !m->handler)
                        return -EINVAL;
                if (grpc_server_find_method(s, m->path))
                        return -EEXIST;
        }

        GrpcMethodEntry *t = reallocarray(s->methods, s->n_methods + n, sizeof(GrpcMethodEntry));
        if (!t)
                return -ENOMEM;
        s->methods = t;
        for (size_t i = 0; i < n; i++) {
                GrpcMethodStats *stats = calloc(1, sizeof(GrpcMethodStats));

                if (!stats)
                        return -ENOMEM;
                s->methods[s->n_methods++] =
                        (GrpcMethodEntry){.method = &methods[i], .userdata = userdata, .stats = stats};
        }
        qsort(s->methods, s->n_methods, sizeof(GrpcMethodEntry), method_entry_cmp);

        /* Every service with methods is healthy unless somebody says otherwise. */
        for (size_t i = 0; i < n; i++) {
                const char *p = methods[i].path + 1, *slash = strchr(p, '/');
                if (!slash)
                        return -EINVAL;
                _cleanup_(freep) char *svc = strndup(p, (size_t)(slash - p));
                if (!svc)
                        return -ENOMEM;
                bool known = false;
                for (size_t j = 0; j < s->n_health; j++)
                        if (strcmp(s->health[j].service, svc) == 0)
                                known = true;
                if (!known) {
                        int r = grpc_server_set_health(s, svc, GRPC_HEALTH_SERVING);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

unsigned grpc_server_n_connections(const GrpcServer *s) {
        return s->n_conns;
}

const GrpcStats *grpc_server_get_stats(const GrpcServer *s) {
        return &s->stats;
}

void grpc_server_foreach_method(const GrpcServer *s, GrpcMethodStatsFunc f, void *userdata) {
        for (size_t i = 0; i < s->n_methods; i++)
                f(s->methods[i].method->path, s->methods[i].stats, userdata);
}

unsigned grpc_server_n_connections_of(const GrpcServer *s, GrpcPeerKind kind) {
        unsigned n = 0;

        for (const GrpcConn *c = s->conns; c; c = c->next)
                n += c->peer.kind == kind;
        return n;
}

/* ---- listeners -------------------------------------------------------------------------------- */

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *userdata) {
        GrpcListener *l = userdata;
        GrpcServer *s = l->server;

        /* Accept-and-close instead of leaving it in the backlog: the client learns at once, and
         * the kernel queue cannot be filled by idle sockets. Limits per listener and per peer are
         * checked by grpc_conn_new(), which knows who the peer is. */
        if (s->shutting_down) {
                close(fd);
                s->stats.connections_refused++;
                return;
        }
        int r = grpc_conn_new(s, l, fd, sa, salen, NULL);
        if (r == -EUSERS)
                s->stats.connections_refused++;
        else if (r < 0)
                log_warning_errno(r, "Cannot set up gRPC connection, ignoring: %m");
        else
                s->stats.connections_accepted++;
}

static void on_accept_error(struct evconnlistener *evl, void *userdata) {
        int e = EVUTIL_SOCKET_ERROR();
        log_warning_errno(e, "gRPC listener cannot accept, ignoring: %m");
}

static int listener_add(GrpcServer *s, GrpcListenerKind kind, int fd, SSL_CTX *ctx, const char *unix_path) {
        _cleanup_(closep) int owned = fd;
        GrpcListener *l = calloc(1, sizeof(GrpcListener));

        if (!l) {
                SSL_CTX_free(ctx);
                return -ENOMEM;
        }
        l->server = s;
        l->kind = kind;
        l->ssl_ctx = ctx;
        if (unix_path) {
                l->unix_path = strdup(unix_path);
                if (!l->unix_path) {
                        listener_free(l);
                        return -ENOMEM;
                }
        }
        if (evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0) {
                listener_free(l);
                return -errno;
        }
        /* backlog 0: the socket is already listening. */
        l->evl = evconnlistener_new(s->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE, 0, fd);
        if (!l->evl) {
                listener_free(l);
                return -ENOMEM;
        }
        owned = -1;
        evconnlistener_set_error_cb(l->evl, on_accept_error);
        l->next = s->listeners;
        s->listeners = l;
        return 0;
}

int grpc_server_listen_unix(GrpcServer *s, const char *path, mode_t mode) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_(closep) int fd = -1;
        struct stat st;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A stale socket from a previous run; never remove anything that is not a socket. */
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                (void)unlink(path);
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        if (chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0) {
                int r = -errno;
                (void)unlink(path);
                return r;
        }
        int r = listener_add(s, GRPC_LISTENER_UNIX, TAKE_FD(fd), NULL, path);
        if (r < 0)
                (void)unlink(path);
        return r;
}

static bool sockaddr_is_loopback(const struct sockaddr *sa) {
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                if (IN6_IS_ADDR_LOOPBACK(a))
                        return true;
                return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
        }
        return false;
}

/* "1.2.3.4:port" or "[v6]:port"; numeric only (no DNS in a daemon's listen path). Port 0 is
 * allowed, which evutil_parse_sockaddr_port() refuses. */
static int parse_address(const char *address, struct sockaddr_storage *ss, int *ret_len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon, *h = address;
        size_t hl;
        uint32_t port;

        if (address[0] == '[') {
                const char *end = strchr(address, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                h = address + 1;
                hl = (size_t)(end - h);
                colon = end + 1;
        } else {
                colon = strrchr(address, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t)(colon - address);
        }
        if (hl == 0 || hl >= sizeof(host) || parse_u32(colon + 1, 10, &port) < 0 || port > 65535)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = '\0';

        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        *ss = (struct sockaddr_storage){};
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t)port);
                *ret_len = sizeof(*in);
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                *ret_len = sizeof(*in6);
        } else
                return -EINVAL;
        return 0;
}

static int tcp_bind(const char *address, bool require_loopback, int *ret_fd, uint16_t *ret_port) {
        struct sockaddr_storage ss = {};
        int len = sizeof(ss);
        _cleanup_(closep) int fd = -1;
        int one = 1;

        int r = parse_address(address, &ss, &len);
        if (r < 0)
                return r;
        if (require_loopback && !sockaddr_is_loopback((struct sockaddr *)&ss))
                return -EPERM;

        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0 || listen(fd, SOMAXCONN) < 0)
                return -errno;

        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
                return -errno;
        if (ret_port)
                *ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int grpc_server_listen_tls(GrpcServer *s, const char *address, const GrpcTlsConfig *tls,
                           uint16_t *ret_port) {
        SSL_CTX *ctx = NULL;
        int fd, r;

        r = grpc_tls_context_new(tls, &ctx);
        if (r < 0)
                return r;
        r = tcp_bind(address, false, &fd, ret_port);
        if (r < 0) {
                SSL_CTX_free(ctx);
                return r;
        }
        return listener_add(s, GRPC_LISTENER_TLS, fd, ctx, NULL);
}

int grpc_server_reload_tls(GrpcServer *s, const GrpcTlsConfig *tls) {
        SSL_CTX *ctx = NULL;
        unsigned n = 0;

        for (GrpcListener *l = s->listeners; l; l = l->next)
                if (l->kind == GRPC_LISTENER_TLS)
                        n++;
        if (n == 0)
                return 0;

        int r = grpc_tls_context_new(tls, &ctx);
        if (r < 0)
                return r;
        /* Each live SSL holds a reference to the context it was made from, so the old one may go. */
        for (GrpcListener *l = s->listeners; l; l = l->next) {
                if (l->kind != GRPC_LISTENER_TLS)
                        continue;
                if (SSL_CTX_up_ref(ctx) != 1) {
                        SSL_CTX_free(ctx);
                        return -ENOMEM;
                }
                SSL_CTX_free(l->ssl_ctx);
                l->ssl_ctx = ctx;
        }
        SSL_CTX_free(ctx);
        return 0;
}

int grpc_server_listen_tcp_insecure(GrpcServer *s, const char *address, uint16_t *ret_port) {
        int fd, r;

        r = tcp_bind(address, true, &fd, ret_port);
        if (r < 0)
                return r;
        return listener_add(s, GRPC_LISTENER_TCP_PLAIN, fd, NULL, NULL);
}

int grpc_server_listen_fd(GrpcServer *s, int fd) {
        _cleanup_(closep) int owned = fd;
        struct sockaddr_storage ss = {};
        socklen_t sl = sizeof(ss);

        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
                return -errno;
        if (ss.ss_family == AF_UNIX)
                return listener_add(s, GRPC_LISTENER_UNIX, TAKE_FD(owned), NULL, NULL);
        if (!sockaddr_is_loopback((struct sockaddr *)&ss))
                return -EPERM;
        return listener_add(s, GRPC_LISTENER_TCP_PLAIN, TAKE_FD(owned), NULL, NULL);
}

/* ---- shutdown --------------------------------------------------------------------------------- */

static void on_shutdown_timer(evutil_socket_t fd, short what, void *userdata) {
        GrpcServer *s = userdata;

        if (s->shutdown_phase == 1) {
                /* One round trip after the notice: now name the last stream we will serve. */
                for (GrpcConn *c = s->conns, *n; c; c = n) {
                        n = c->next;
                        grpc_conn_goaway(c);
                }
                s->shutdown_phase = 2;
                unsigned ms = s->shutdown_drain_ms;
                struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
                evtimer_add(s->shutdown_timer, &tv);
                return;
        }
        /* Drain time is over: whatever still runs is cut off. */
        while (s->conns)
                grpc_conn_close(s->conns);
}

int grpc_server_shutdown(GrpcServer *s, unsigned drain_timeout_ms, GrpcShutdownDone done, void *userdata) {
        if (s->shutting_down)
                return -EALREADY;
        s->shutting_down = true;
        s->shutdown_done = done;
        s->shutdown_userdata = userdata;
        s->shutdown_drain_ms = drain_timeout_ms;

        server_close_listeners(s);
        (void)grpc_server_set_health(s, "", GRPC_HEALTH_NOT_SERVING);

        for (GrpcConn *c = s->conns, *n; c; c = n) {
                n = c->next;
                grpc_conn_shutdown_notice(c);
        }

        s->shutdown_timer = evtimer_new(s->base, on_shutdown_timer, s);
        if (!s->shutdown_timer)
                return -ENOMEM;
        s->shutdown_phase = 1;
        /* Phase 1 -> 2 after ~1 RTT (100 ms is plenty on the networks we serve), then the drain. */
        struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
        evtimer_add(s->shutdown_timer, &tv);

        grpc_server_reap_later(s);
        return 0;
}
