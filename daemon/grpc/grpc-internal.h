/* Structures shared by the files of the gRPC transport; nothing outside daemon/grpc includes this. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "grpc-frame.h"
#include "grpc-server.h"

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
} GrpcMethodEntry;

typedef struct GrpcHealthEntry {
        char *service;
        GrpcHealthStatus status;
} GrpcHealthEntry;

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
};

struct GrpcServer {
        struct event_base *base;
        GrpcLimits limits;
        GrpcAuthorizeFunc authorize;
        GrpcDenialFunc denial;
        void *authorize_userdata;

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

        struct bufferevent *bev;
        nghttp2_session *session;
        bool tls;
        bool read_paused; /* output above the high-water mark */

        GrpcPeer peer;
        char *subject, *common_name, *description;

        GrpcCall *calls; /* every live stream, so teardown can reach them (nghttp2_session_del won't) */
        unsigned n_calls;
        unsigned n_header_overflows;
        size_t buffered; /* request bytes held by all calls' frame readers */

        struct event *timer;       /* handshake, then idle timeout */
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
        bool header_overflow;

        bool dispatched;  /* request headers accepted and routed */
        bool half_closed; /* client sent END_STREAM */
        unsigned n_requests;
        GrpcFrameReader reader;
        size_t accounted;          /* the share of conn->buffered that is this call's */
        ProtobufCMessage *request; /* unary / server-stream: the request, freed with the call */

        struct evbuffer *out; /* framed response messages waiting for the data provider */
        bool headers_sent;
        bool finished; /* status decided; trailers follow the queued messages */
        bool deferred; /* data provider returned NGHTTP2_ERR_DEFERRED */
        GrpcStatus status;
        char *status_message;

        struct event *deadline;

        GrpcCancelFunc cancel;
        void *cancel_userdata;
        void *userdata;
};

/* grpc-conn.c */
int grpc_conn_new(GrpcServer *s, GrpcListener *l, int fd, const struct sockaddr *sa, int salen);
void grpc_conn_close(GrpcConn *c);
void grpc_conn_free(GrpcConn *c);
void grpc_conn_shutdown_notice(GrpcConn *c);
void grpc_conn_goaway(GrpcConn *c);
void grpc_server_reap_later(GrpcServer *s);
const GrpcMethodEntry *grpc_server_find_method(GrpcServer *s, const char *path);

/* grpc-health.c */
void grpc_health_drop_watcher(GrpcServer *s, GrpcCall *call);
int grpc_health_add_methods(GrpcServer *s);

/* grpc-reflection.c */
int grpc_reflection_add_methods(GrpcServer *s);
