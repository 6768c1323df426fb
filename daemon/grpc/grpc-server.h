/* The gRPC server: listeners, HTTP/2 connections, a static method table, and calls that finish later.
 *
 * Threading: everything runs on the one event_base given to grpc_server_new(). Handlers may finish
 * their call synchronously or at any later time from the same loop.
 *
 * Ownership of a call: the transport holds one reference while the HTTP/2 stream exists. A handler
 * that finishes later takes its own reference with grpc_call_ref() and drops it when done; after
 * the stream went away (client cancel, deadline, connection loss) every grpc_call_*() on it is a
 * harmless no-op returning -ECONNRESET, and the cancel callback (if set) has been called once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "grpc-status.h"

typedef struct GrpcServer GrpcServer;
typedef struct GrpcCall GrpcCall;
typedef struct GrpcShared GrpcShared;
typedef struct ProtobufCMessage ProtobufCMessage;
typedef struct ProtobufCMessageDescriptor ProtobufCMessageDescriptor;
struct event_base;

/* ---- peers and roles --------------------------------------------------------------------------- */

typedef enum GrpcRole {
        GRPC_ROLE_NONE = 0, /* may call nothing but Health and Reflection */
        GRPC_ROLE_READER,   /* reads, Watch */
        GRPC_ROLE_OPERATOR, /* + prepare, release */
        GRPC_ROLE_ADMIN,    /* + domain type, block, apply policy, force */
        _GRPC_ROLE_MAX,
} GrpcRole;

const char *grpc_role_to_string(GrpcRole r); /* "none", "reader", "operator", "admin" */

typedef enum GrpcPeerKind {
        GRPC_PEER_UNIX,      /* uid/gid/pid from SO_PEERCRED */
        GRPC_PEER_TLS,       /* verified client certificate: subject */
        GRPC_PEER_TCP_PLAIN, /* loopback plaintext: no identity at all */
} GrpcPeerKind;

typedef struct GrpcPeer {
        GrpcPeerKind kind;
        pid_t pid;               /* UNIX only */
        uid_t uid;               /* UNIX only */
        gid_t gid;               /* UNIX only */
        const char *subject;     /* TLS only: subject DN, RFC 2253 ("CN=op1,O=example") */
        const char *common_name; /* TLS only: the subject's one CN in UTF-8, NULL when it has none */
        /* TLS only: the certificate's subject alternative names of type DNS and URI (SPIFFE ids
         * are URIs), printable ASCII; certificates with anything else there are refused. */
        const char *const *san_dns;
        size_t n_san_dns;
        const char *const *san_uri;
        size_t n_san_uri;
        const char *description; /* for logs: "unix uid=0 pid=12", "tls CN=op1 [::1]:5000", ... */
} GrpcPeer;

/* Decides the role of a peer; called for every call, so a config reload takes effect at once. */
typedef GrpcRole (*GrpcAuthorizeFunc)(const GrpcPeer *peer, void *userdata);

/* Optional: whether the role of a peer can be decided without blocking (it may need the user
 * database). 0: yes. 1: not yet; a lookup runs elsewhere and its owner calls
 * grpc_server_peers_resolved() when it is done. The connection reads nothing meanwhile. */
typedef int (*GrpcResolveFunc)(const GrpcPeer *peer, void *userdata);
/* Optional: the message of a call denied for its role (the authorizer's own words, e.g. naming who
 * holds the role). Returns a malloc'ed string, or NULL for the transport's generic message. Called
 * with the authorizer's userdata. */
typedef char *(*GrpcDenialFunc)(const GrpcPeer *peer, const char *path, GrpcRole needed, void *userdata);

/* ---- methods ---------------------------------------------------------------------------------- */

typedef enum GrpcMethodKind {
        GRPC_METHOD_UNARY,         /* one request, one response */
        GRPC_METHOD_SERVER_STREAM, /* one request, any number of responses */
        GRPC_METHOD_BIDI_STREAM,   /* handler runs per request message, and once with NULL at half-close */
} GrpcMethodKind;

/* Called with the decoded request. Unary and server-streaming: the request is owned by the call
 * and valid until the call is freed. Bidi: valid during the handler only, and the handler runs once
 * more with request == NULL when the client half-closes. Return 0 when the call was finished or will
 * be finished later; a negative errno finishes it with the mapped status (unless already finished). */
typedef int (*GrpcHandler)(GrpcCall *call, const ProtobufCMessage *request, void *userdata);

typedef struct GrpcMethod {
        const char *path; /* "/iommud.v1.IommuManager/GetHost" */
        GrpcMethodKind kind;
        const ProtobufCMessageDescriptor *request; /* used to unpack the request */
        GrpcHandler handler;
        GrpcRole role; /* minimum role; GRPC_ROLE_NONE = anyone */
} GrpcMethod;

/* ---- server ----------------------------------------------------------------------------------- */

/* What a client may hold. Connections are counted per listener and per peer (uid on the Unix
 * socket, certificate subject on TLS, address on plaintext TCP); memory is counted per connection,
 * per peer and in total. "Privileged" peers are root on the Unix socket and peers with the
 * operator or admin role: the reserve is theirs, so nobody else can lock out the libvirt hook or
 * an orchestrator. Times are in milliseconds; 0 switches a timeout off. */
typedef struct GrpcLimits {
        unsigned max_connections;          /* per listener */
        unsigned max_connections_per_peer; /* per peer and listener; root on the Unix socket is exempt */
        /* Of max_connections, peers without a role get max - 2R, readers max - R, privileged
         * peers all; TLS connections are unauthenticated (no role) until their handshake ends. */
        unsigned reserved_connections;
        /* TLS connections still in their handshake, per listener; a new one pushes out the oldest,
         * so sockets that never speak cannot keep a handshake from starting. */
        unsigned max_handshakes;
        unsigned max_streams;        /* SETTINGS_MAX_CONCURRENT_STREAMS per connection */
        size_t max_message_size;     /* largest request message accepted (RESOURCE_EXHAUSTED above) */
        size_t max_header_list_size; /* request header bytes (name + value + 32 each) */
        unsigned max_header_fields;  /* request header fields */
        /* Memory: undecoded input, partial and decoded requests, queued responses, HTTP/2 state.
         * Over a budget the stream that asks for more fails with RESOURCE_EXHAUSTED. Peers without
         * a role may use half of max_memory, readers three quarters, privileged peers all of it. */
        size_t max_connection_memory;
        size_t max_peer_memory; /* all connections of one peer; privileged peers are exempt */
        size_t max_memory;      /* all connections */
        size_t max_send_queue;  /* bytes queued per call before grpc_call_send() says -ENOBUFS */
        unsigned handshake_timeout_ms; /* accept to the client's HTTP/2 SETTINGS (TLS included) */
        unsigned header_timeout_ms;    /* a request header block, first byte to last */
        unsigned request_timeout_ms;   /* a request message, or a unary request to END_STREAM */
        unsigned idle_timeout_ms;      /* a connection without streams; closed after GOAWAY */
        unsigned keepalive_ms;         /* TCP: PING after this long without input */
        unsigned keepalive_timeout_ms; /* TCP: close when the PING is not answered in this time */
} GrpcLimits;

/* 256 connections per listener, 16 per peer, 32 reserved, 64 handshakes; 100 streams, 4 MiB
 * messages, 16 KiB and 64 header fields; memory 16 MiB per connection, 32 MiB per peer, 256 MiB in
 * all, 4 MiB send queue per call; timeouts: handshake 10 s, headers 10 s, request 30 s, idle 300 s,
 * keepalive 60 s + 20 s. */
void grpc_limits_default(GrpcLimits *ret);

typedef struct GrpcTlsConfig {
        const char *cert_file;      /* server certificate chain (PEM) */
        const char *key_file;       /* its private key (PEM) */
        const char *client_ca_file; /* CAs that sign client certificates; a client cert is required */
        const char *crl_file;       /* NULL, or CRLs (PEM): then every client certificate is checked */
} GrpcTlsConfig;

/* limits NULL = defaults. authorize NULL = every peer has GRPC_ROLE_NONE. */
int grpc_server_new(struct event_base *base, const GrpcLimits *limits, GrpcAuthorizeFunc authorize,
                    void *authorize_userdata, GrpcServer **ret);
void grpc_server_set_denial(GrpcServer *s, GrpcDenialFunc denial);
/* Closes everything at once (cancel callbacks run); use grpc_server_shutdown() first for a graceful end. */
GrpcServer *grpc_server_free(GrpcServer *s);
static inline void grpc_server_freep(GrpcServer **s) {
        if (*s)
                grpc_server_free(*s);
}

/* The table must outlive the server (it is meant to be static const). Paths must be unique. */
int grpc_server_add_methods(GrpcServer *s, const GrpcMethod *methods, size_t n, void *userdata);
/* Registers grpc.health.v1.Health (Check, Watch) and grpc.reflection.{v1,v1alpha}. */
int grpc_server_add_standard_services(GrpcServer *s);

/* h2c on a Unix socket. An existing socket file is replaced. mode applies to the socket file. */
int grpc_server_listen_unix(GrpcServer *s, const char *path, mode_t mode);
/* TLS (ALPN h2, client certificate required) on "addr:port" / "[v6]:port"; port 0 picks one, *ret_port
 * (may be NULL) tells which. */
int grpc_server_listen_tls(GrpcServer *s, const char *address, const GrpcTlsConfig *tls, uint16_t *ret_port);
/* Loads certificate, key, client CAs and CRLs again for every TLS listener (SIGHUP, certificate
 * rotation). New connections use them; established ones keep what they negotiated. On failure
 * nothing changes. */
int grpc_server_reload_tls(GrpcServer *s, const GrpcTlsConfig *tls);
/* Plaintext h2c on TCP: only on a loopback address (-EPERM otherwise). */
int grpc_server_listen_tcp_insecure(GrpcServer *s, const char *address, uint16_t *ret_port);
/* An already listening socket (systemd socket activation); takes ownership of fd. Unix sockets get
 * SO_PEERCRED peers; TCP fds are plaintext and must be loopback-bound. */
int grpc_server_listen_fd(GrpcServer *s, int fd);

unsigned grpc_server_n_connections(const GrpcServer *s);

/* Limits may change at run time (a reload); they apply to what clients ask for from then on. */
void grpc_server_set_limits(GrpcServer *s, const GrpcLimits *limits);
void grpc_server_set_resolver(GrpcServer *s, GrpcResolveFunc resolve, void *userdata);
/* Lookups finished, or the settings changed: connections waiting for their peer's role ask the
 * resolver again, and every connection's standing (reserve, peer budget) is recomputed. */
void grpc_server_peers_resolved(GrpcServer *s);

/* Counters for the metrics layer; h2load and friends cannot see grpc-status, this can. */
typedef struct GrpcStats {
        uint64_t connections_accepted;
        uint64_t connections_refused;              /* over a connection limit or shutting down */
        uint64_t connections_evicted;              /* handshakes pushed out by newer ones */
        uint64_t connections_timed_out;            /* handshake, header, idle or keepalive timeout */
        uint64_t streams_over_budget;              /* failed with RESOURCE_EXHAUSTED for memory */
        uint64_t calls_finished[_GRPC_STATUS_MAX]; /* by grpc-status */
        uint64_t calls_cancelled;                  /* stream gone before a status was sent */
        uint64_t permission_denied;
} GrpcStats;

const GrpcStats *grpc_server_get_stats(const GrpcServer *s);

/* Calls of one method by the status they finished with. */
typedef struct GrpcMethodStats {
        uint64_t finished[_GRPC_STATUS_MAX];
} GrpcMethodStats;

typedef void (*GrpcMethodStatsFunc)(const char *path, const GrpcMethodStats *stats, void *userdata);
/* Every registered method's counters, in path order. */
void grpc_server_foreach_method(const GrpcServer *s, GrpcMethodStatsFunc f, void *userdata);
/* Open connections of one kind of listener. */
unsigned grpc_server_n_connections_of(const GrpcServer *s, GrpcPeerKind kind);

typedef enum GrpcHealthStatus {
        GRPC_HEALTH_UNKNOWN = 0,
        GRPC_HEALTH_SERVING = 1,
        GRPC_HEALTH_NOT_SERVING = 2,
} GrpcHealthStatus;

/* "" is the whole server. Notifies Health.Watch subscribers of changes. */
int grpc_server_set_health(GrpcServer *s, const char *service, GrpcHealthStatus status);

/* Graceful shutdown: stop listening, health NOT_SERVING, GOAWAY (shutdown notice, then the last
 * stream id), let calls in flight finish; after drain_timeout_ms close what is left. done is called
 * once all connections are gone (from the event loop, never from inside this function). */
typedef void (*GrpcShutdownDone)(GrpcServer *s, void *userdata);
int grpc_server_shutdown(GrpcServer *s, unsigned drain_timeout_ms, GrpcShutdownDone done, void *userdata);

/* ---- calls ------------------------------------------------------------------------------------ */

GrpcCall *grpc_call_ref(GrpcCall *c);
GrpcCall *grpc_call_unref(GrpcCall *c);
static inline void grpc_call_unrefp(GrpcCall **c) {
        if (*c)
                grpc_call_unref(*c);
}

/* NULL once the stream is gone. Valid until the next return to the event loop. */
const GrpcPeer *grpc_call_get_peer(GrpcCall *c);
GrpcServer *grpc_call_get_server(GrpcCall *c);
const char *grpc_call_get_path(GrpcCall *c);
/* False once finished or once the stream went away. */
bool grpc_call_is_active(GrpcCall *c);
/* Per-call handler state (e.g. a Watch subscription); not freed by the transport. */
void grpc_call_set_userdata(GrpcCall *c, void *userdata);
void *grpc_call_get_userdata(GrpcCall *c);
/* Called once if the stream goes away before the call was finished (client cancel, deadline,
 * connection loss, server free). The call is still valid inside; unsubscribe there. */
typedef void (*GrpcCancelFunc)(GrpcCall *c, void *userdata);
void grpc_call_set_cancel(GrpcCall *c, GrpcCancelFunc func, void *userdata);

/* A message packed once, framed for gRPC, to be sent on any number of calls; reference counted.
 * grpc_shared_size() is its size on the wire (frame header included). */
GrpcShared *grpc_shared_new(const ProtobufCMessage *msg);
GrpcShared *grpc_shared_ref(GrpcShared *m);
GrpcShared *grpc_shared_unref(GrpcShared *m);
size_t grpc_shared_size(const GrpcShared *m);

/* Streaming: sends response headers now, so the client sees the call is live. */
int grpc_call_send_headers(GrpcCall *c);
/* Queues one response message. -ENOBUFS when the per-call send queue is full (slow client); a message
 * is always taken when nothing is queued, however large (the memory budgets still apply). */
int grpc_call_send(GrpcCall *c, const ProtobufCMessage *msg);
/* The same with a message packed once for many calls (an event for every Watch stream, a cached
 * reply): queued by reference, never copied. */
int grpc_call_send_shared(GrpcCall *c, GrpcShared *m);
/* Finishes with status OK after the queued messages. */
int grpc_call_finish(GrpcCall *c);
/* Unary: send + finish. */
int grpc_call_reply(GrpcCall *c, const ProtobufCMessage *msg);
int grpc_call_reply_shared(GrpcCall *c, GrpcShared *m);
/* Finishes with the status mapped from -errno; message may be NULL (then strerror is used). */
int grpc_call_fail(GrpcCall *c, int error, const char *message);
/* Finishes with an explicit status (UNIMPLEMENTED, NOT_FOUND for Health, ...). */
int grpc_call_fail_status(GrpcCall *c, GrpcStatus status, const char *message);
