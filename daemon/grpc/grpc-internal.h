/* Structures shared by the files of the gRPC transport; nothing outside daemon/grpc includes this. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "grpc-frame.h"
#include "grpc-server.h"
#include "macro.h"
#include "ratelimit.h"

typedef struct GrpcConn GrpcConn;
typedef struct GrpcListener GrpcListener;
typedef struct nghttp2_session nghttp2_session;
typedef struct ssl_ctx_st SSL_CTX;
struct bufferevent;
struct evbuffer;
struct evconnlistener;

typedef struct GrpcMethodEntry {
        const GrpcMethod *method;
        void *userdata;
        GrpcMethodStats *stats; /* owned by the server's table; calls copy the pointer */
} GrpcMethodEntry;

typedef struct GrpcHealthEntry {
        char *service;
        GrpcHealthStatus status;
} GrpcHealthEntry;

/* Which share of the reserves a connection may use (GrpcLimits). */
typedef enum GrpcTier {
        GRPC_TIER_NONE,       /* no role, or not authenticated yet */
        GRPC_TIER_READER,     /* reader */
        GRPC_TIER_PRIVILEGED, /* operator, admin, or root on the Unix socket */
} GrpcTier;

/* One peer's share, like dbus-broker's user slots: its connections and the memory they hold. */
typedef struct GrpcPeerSlot GrpcPeerSlot;
struct GrpcPeerSlot {
        GrpcPeerSlot *next;
        char *key; /* "uid:1000", "cert:CN=op1,O=example", "addr:127.0.0.1" */
        unsigned n_conns;
        size_t memory;
};

typedef enum GrpcListenerKind {
        GRPC_LISTENER_UNIX,
        GRPC_LISTENER_TLS,
        GRPC_LISTENER_TCP_PLAIN,
} GrpcListenerKind;

struct GrpcListener {
        GrpcServer *server;
        GrpcListener *next;
        GrpcListenerKind kind;
        struct evconnlistener *evl;
        SSL_CTX *ssl_ctx; /* TLS only */
        char *unix_path;  /* unlinked when the listener goes away */
        unsigned n_conns;
        unsigned n_handshaking; /* TLS connections without an identity yet */
};

struct GrpcServer {
        struct event_base *base;
        GrpcLimits limits;
        GrpcAuthorizeFunc authorize;
        GrpcDenialFunc denial;
        void *authorize_userdata;
        GrpcResolveFunc resolve;
        void *resolve_userdata;

        GrpcMethodEntry *methods; /* sorted by path for bsearch */
        size_t n_methods;

        GrpcListener *listeners;
        GrpcConn *conns;
        unsigned n_conns;
        uint64_t next_conn_id;

        /* Connections are never freed inside their own callbacks: they are queued here and freed
         * from this deferred event. */
        GrpcConn *dead;
        struct event *reap_event;

        GrpcStats stats;
        GrpcPeerSlot *slots;
        size_t memory; /* every connection's memory */

        /* Refusals a client can cause are logged a few per window, then summed up in one line. */
        RateLimit refusal_log;
        struct event *refusal_summary;

        GrpcHealthEntry *health;
        size_t n_health;
        GrpcCall **health_watchers;
        size_t n_health_watchers;

        bool shutting_down;
        struct event *shutdown_timer;
        struct event *shutdown_done_event;
        unsigned shutdown_phase;
        unsigned shutdown_drain_ms;
        GrpcShutdownDone shutdown_done;
        void *shutdown_userdata;
};

struct GrpcConn {
        GrpcServer *server;
        GrpcConn *next, *prev;
        uint64_t id;
        bool dead;

        GrpcListener *listener; /* NULL once the listener is closed (shutdown) */
        GrpcPeerSlot *slot;     /* NULL while a TLS peer has no identity yet */
        GrpcTier tier;
        bool handshaking;   /* counted in listener->n_handshaking */
        bool awaiting_peer; /* the resolver has not decided yet; nothing is read */
        bool preface_done;  /* the client's SETTINGS arrived */

        struct bufferevent *bev;
        struct evbuffer *frames; /* what one nghttp2_session_send() made, on its way to the socket */
        bool send_blocked;       /* that send stopped at the output high-water mark */
        nghttp2_session *session;
        bool tls;
        bool read_paused; /* output above the high-water mark */

        GrpcPeer peer;
        char *subject, *common_name, *description;
        char **san_dns, **san_uri;

        GrpcCall *calls; /* every live stream, so teardown can reach them (nghttp2_session_del won't) */
        unsigned n_calls;
        unsigned n_header_overflows;

        /* Memory held for this connection, charged to its slot and the server as well. */
        size_t memory;
        size_t memory_io; /* the part that is the bufferevent's input and output */

        struct event *timer;        /* handshake, then idle timeout */
        struct event *header_timer; /* a request header block in progress */
        struct event *keepalive;    /* TCP: PING when quiet, and its answer's deadline */
        uint64_t last_input_usec;
        bool ping_outstanding;
        struct event *flush_event; /* session_send outside of nghttp2 callbacks */
        bool goaway_sent;
};

struct GrpcCall {
        unsigned n_ref;
        GrpcConn *conn; /* NULL once the stream is gone */
        GrpcCall *next, *prev;
        GrpcServer *server;
        int32_t stream_id;

        GrpcMethodEntry entry; /* a copy: the server table may be reallocated */
        char *path;
        char *method_hdr;
        char *content_type;
        char *grpc_encoding;
        char *grpc_timeout;
        size_t header_bytes;
        unsigned n_header_fields;

        bool dispatched;  /* request headers accepted and routed */
        bool half_closed; /* client sent END_STREAM */
        unsigned n_requests;
        GrpcFrameReader reader;
        ProtobufCMessage *request;     /* unary / server-stream: the request, freed with the call */
        ProtobufCAllocator allocator;  /* counts what decoded requests hold, against the budgets */
        size_t memory;                 /* reader, decoded requests, queued output: charged to conn */
        size_t memory_reader;          /* the reader's part of it */
        bool over_budget;              /* an allocation was refused for the budget */
        struct event *request_timer;   /* the request (message) must arrive in time */

        struct evbuffer *out; /* framed response messages waiting for the data provider */
        bool headers_sent;
        bool finished; /* status decided; trailers follow the queued messages */
        bool deferred; /* data provider returned NGHTTP2_ERR_DEFERRED */
        size_t out_claimed; /* bytes of out in a DATA frame nghttp2 has made but not sent */
        GrpcStatus status;
        char *status_message;

        struct event *deadline;

        GrpcCancelFunc cancel;
        void *cancel_userdata;
        void *userdata;
};

/* grpc-conn.c */
int grpc_conn_new(GrpcServer *s, GrpcListener *l, int fd, const struct sockaddr *sa, int salen,
                  GrpcConn **ret);
/* Feeds bytes as if read from the socket (the fuzzer's entry; the socket path uses it too). */
void grpc_conn_receive(GrpcConn *c, const uint8_t *data, size_t len);
void grpc_conn_resolved(GrpcConn *c);
void grpc_conn_restanding(GrpcConn *c);
void grpc_conn_close(GrpcConn *c);
void grpc_conn_free(GrpcConn *c);
void grpc_conn_shutdown_notice(GrpcConn *c);
void grpc_conn_goaway(GrpcConn *c);
void grpc_server_reap_later(GrpcServer *s);
const GrpcMethodEntry *grpc_server_find_method(GrpcServer *s, const char *path);
/* Logs a refusal a client caused, rate limited; the rest are summed up later. */
void grpc_server_log_refusal(GrpcServer *s, const char *format, ...) _printf_(2, 3);
GrpcRole grpc_server_role(GrpcServer *s, const GrpcPeer *peer);

/* grpc-limits.c: connection admission and memory budgets */
int grpc_slot_acquire(GrpcServer *s, const char *key, GrpcPeerSlot **ret);
void grpc_slot_release(GrpcServer *s, GrpcPeerSlot *slot);
GrpcTier grpc_tier_of(const GrpcPeer *peer, GrpcRole role);
/* Whether the connection may stay given its listener, slot and tier (itself already counted). */
bool grpc_conn_admissible(const GrpcConn *c, const char **ret_why);
/* Whether the connection may hold 'more' bytes on top of what it holds. */
bool grpc_conn_budget_allows(const GrpcConn *c, size_t more);
void grpc_conn_charge(GrpcConn *c, ssize_t delta);

/* grpc-tls.c */
int grpc_tls_context_new(const GrpcTlsConfig *tls, SSL_CTX **ret);
/* The verified client certificate's identity for c->peer; -EBADMSG when the certificate names
 * its holder ambiguously (the handshake refuses those already). */
int grpc_tls_peer_identity(GrpcConn *c);

/* grpc-health.c */
void grpc_health_drop_watcher(GrpcServer *s, GrpcCall *call);
int grpc_health_add_methods(GrpcServer *s);

/* grpc-reflection.c */
int grpc_reflection_add_methods(GrpcServer *s);
