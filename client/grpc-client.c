/* A small blocking gRPC client: one HTTP/2 connection (nghttp2 on a libevent bufferevent), one call at a
 * time. */
#include "grpc-client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "build-config.h"
#include "grpc-frame.h"
#include "macro.h"

/* Responses hold the whole inventory of a host; leave room for big ones, but not without bound. */
#define MAX_RESPONSE_MESSAGE (64u << 20)
/* Large windows so a big ListGroups answer needs no round trip per 64 KiB. */
#define STREAM_WINDOW (4 << 20)
#define CONNECTION_WINDOW (16 << 20)
/* A connect must not hang for minutes on a black-holed address, even without --timeout. */
#define CONNECT_TIMEOUT_USEC (10 * UINT64_C(1000000))

#define NV(n, v)                                                                                            \
        { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

typedef struct GrpcClientCall {
        int32_t stream_id; /* 0 until submitted */
        const char *path;
        uint8_t *request; /* prefix and message */
        size_t request_size, request_offset;
        const ProtobufCMessageDescriptor *response_type;
        GrpcClientMessageFunc on_message; /* NULL: unary, keep the one response */
        void *userdata;
        ProtobufCMessage *response;
        GrpcFrameReader reader;
        int http_status;
        bool have_status;
        GrpcStatus code;
        char *message;
        int error; /* -errno when it ended without an answer from the server */
        bool done;
        uint64_t deadline; /* CLOCK_MONOTONIC usec, 0: none */
} GrpcClientCall;

struct GrpcClient {
        struct event_base *base;
        char *unix_path, *host, *port, *ca_file, *cert_file, *key_file;
        uint64_t timeout_usec;
        SSL_CTX *ssl_ctx;
        struct addrinfo *addresses, *address; /* TCP: all candidates, the one being tried */
        struct bufferevent *bev;
        nghttp2_session *session;
        struct event *timer;
        bool connected; /* transport up, TLS handshake and ALPN done, session started */
        bool broken;    /* unusable: the next call reconnects */
        GrpcClientCall *call;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(nghttp2_session_callbacks *, nghttp2_session_callbacks_del)
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL *, SSL_free)

static int conn_open(GrpcClient *c);

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void grpc_client_status_done(GrpcClientStatus *s) {
        free(s->message);
        s->message = NULL;
}

/* grpc-message is percent-encoded; a malformed escape is kept as it is. */
static char *percent_decode(const char *in, size_t n) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned v;

                if (in[i] == '%' && i + 2 < n && isxdigit((unsigned char)in[i + 1]) &&
                    isxdigit((unsigned char)in[i + 2]) && sscanf(in + i + 1, "%2x", &v) == 1) {
                        *o++ = (char)v;
                        i += 2;
                } else
                        *o++ = in[i];
        }
        *o = 0;
        return out;
}

/* Ends the running call without an answer from the server. The first reason wins. */
_printf_(4, 5) static void call_fail(GrpcClient *c, int error, GrpcStatus code, const char *format, ...) {
        GrpcClientCall *call = c->call;
        va_list ap;

        if (!call || call->done)
                return;
        call->done = true;
        call->error = error;
        call->code = code;
        free(call->message);
        va_start(ap, format);
        if (vasprintf(&call->message, format, ap) < 0)
                call->message = NULL;
        va_end(ap);
}

/* The connection cannot carry calls any more: end the running one. Teardown waits for the next
 * call or grpc_client_free(), so no bufferevent is freed inside its own callback. */
static void conn_fail(GrpcClient *c, int error, const char *what) {
        c->broken = true;
        call_fail(c, error, error == -ETIMEDOUT ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_UNAVAILABLE,
                  "%s", what);
}

static void conn_close(GrpcClient *c) {
        if (c->session) {
                nghttp2_session_del(c->session);
                c->session = NULL;
        }
        if (c->bev) {
                bufferevent_free(c->bev);
                c->bev = NULL;
        }
        c->connected = false;
        c->broken = false;
}

/* ---- HTTP/2 ----------------------------------------------------------------------------------- */

static ssize_t on_session_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                               void *userdata) {
        GrpcClient *c = userdata;

        if (bufferevent_write(c->bev, data, length) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return (ssize_t)length;
}

static ssize_t on_request_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                               uint32_t *data_flags, nghttp2_data_source *source, void *userdata) {
        GrpcClientCall *call = source->ptr;
        size_t n = call->request_size - call->request_offset;

        if (n > length)
                n = length;
        memcpy(buf, call->request + call->request_offset, n);
        call->request_offset += n;
        if (call->request_offset == call->request_size)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
}

static GrpcClientCall *call_of_stream(GrpcClient *c, int32_t stream_id) {
        return c->call && !c->call->done && c->call->stream_id == stream_id ? c->call : NULL;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *userdata) {
        GrpcClientCall *call = call_of_stream(userdata, frame->hd.stream_id);

        if (!call || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        /* Trailers-Only puts grpc-status into the response headers, so look for it in both. */
        if (namelen == 7 && memcmp(name, ":status", 7) == 0)
                call->http_status = atoi((const char *)value);
        else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
                call->have_status = true;
                call->code = (GrpcStatus)atoi((const char *)value);
        } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
                free(call->message);
                call->message = percent_decode((const char *)value, valuelen);
        }
        return 0;
}

static int deliver_messages(GrpcClient *c, GrpcClientCall *call) {
        const uint8_t *data;
        size_t size;
        int r;

        while ((r = grpc_frame_reader_next(&call->reader, &data, &size)) > 0) {
                ProtobufCMessage *m = protobuf_c_message_unpack(call->response_type, NULL, size, data);

                if (!m)
                        return -EBADMSG;
                if (call->on_message) {
                        r = call->on_message(m, call->userdata);
                        if (r < 0)
                                return r;
                } else if (call->response) {
                        protobuf_c_message_free_unpacked(m, NULL);
                        return -EBADMSG; /* a unary call answered twice */
                } else
                        call->response = m;
        }
        return r;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *userdata) {
        GrpcClient *c = userdata;
        GrpcClientCall *call = call_of_stream(c, stream_id);
        int r;

        if (!call)
                return 0;
        r = grpc_frame_reader_feed(&call->reader, data, len);
        if (r >= 0)
                r = deliver_messages(c, call);
        if (r < 0) {
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                if (r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT)
                        call_fail(c, -EBADMSG, GRPC_STATUS_INTERNAL,
                                  "malformed response from the server: %s", strerror(-r));
                else
                        call_fail(c, r, GRPC_STATUS_CANCELLED, "call ended by the client: %s", strerror(-r));
        }
        return 0;
}

/* What a client makes of an HTTP status without grpc-status (doc/http-grpc-status-mapping.md). */
static GrpcStatus status_from_http(int http_status) {
        switch (http_status) {
        case 400:
        case 431:
                return GRPC_STATUS_INTERNAL;
        case 401:
                return GRPC_STATUS_UNAUTHENTICATED;
        case 403:
                return GRPC_STATUS_PERMISSION_DENIED;
        case 404:
                return GRPC_STATUS_UNIMPLEMENTED;
        case 429:
        case 502:
        case 503:
        case 504:
                return GRPC_STATUS_UNAVAILABLE;
        default:
                return GRPC_STATUS_UNKNOWN;
        }
}

static GrpcStatus status_from_rst(uint32_t error_code) {
        switch (error_code) {
        case NGHTTP2_REFUSED_STREAM:
                return GRPC_STATUS_UNAVAILABLE;
        case NGHTTP2_CANCEL:
                return GRPC_STATUS_CANCELLED;
        case NGHTTP2_ENHANCE_YOUR_CALM:
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        case NGHTTP2_INADEQUATE_SECURITY:
                return GRPC_STATUS_PERMISSION_DENIED;
        default:
                return GRPC_STATUS_INTERNAL;
        }
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *userdata) {
        GrpcClient *c = userdata;
        GrpcClientCall *call = call_of_stream(c, stream_id);

        if (!call)
                return 0;
        if (call->have_status && grpc_frame_reader_pending(&call->reader) > 0)
                call_fail(c, -EBADMSG, GRPC_STATUS_INTERNAL, "the server's last message was cut short");
        else if (call->have_status)
                call->done = true;
        else if (error_code != NGHTTP2_NO_ERROR)
                call_fail(c, -ECONNRESET, status_from_rst(error_code),
                          "the server reset the call (HTTP/2 %s)", nghttp2_http2_strerror(error_code));
        else if (call->http_status != 200)
                call_fail(c, -EPROTO, status_from_http(call->http_status),
                          "the server answered HTTP status %d and no gRPC status", call->http_status);
        else
                call_fail(c, -EPROTO, GRPC_STATUS_UNKNOWN,
                          "the server ended the call without a gRPC status");
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *userdata) {
        GrpcClient *c = userdata;

        /* The server is going away: finish what it accepted, but send nothing new on it. */
        if (frame->hd.type == NGHTTP2_GOAWAY)
                c->broken = true;
        return 0;
}

static int session_start(GrpcClient *c) {
        _cleanup_(nghttp2_session_callbacks_delp) nghttp2_session_callbacks *cbs = NULL;
        nghttp2_settings_entry settings[] = {
                {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        };
        int r;

        if (nghttp2_session_callbacks_new(&cbs) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_send_callback(cbs, on_session_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        if (nghttp2_session_client_new(&c->session, cbs, c) != 0)
                return -ENOMEM;

        r = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, ELEMENTSOF(settings));
        if (r == 0)
                r = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                                          CONNECTION_WINDOW);
        if (r != 0)
                return -ENOMEM;
        c->connected = true;
        return 0;
}

static void timer_arm(GrpcClient *c) {
        uint64_t deadline = c->call ? c->call->deadline : 0, now = now_usec();
        struct timeval tv;

        if (!c->connected) {
                uint64_t connect_deadline = now + CONNECT_TIMEOUT_USEC;

                if (deadline == 0 || connect_deadline < deadline)
                        deadline = connect_deadline;
        }
        if (deadline == 0) {
                evtimer_del(c->timer);
                return;
        }
        deadline = deadline > now ? deadline - now : 0;
        tv = (struct timeval){.tv_sec = (time_t)(deadline / 1000000),
                              .tv_usec = (suseconds_t)(deadline % 1000000)};
        evtimer_add(c->timer, &tv);
}

static int call_submit(GrpcClient *c, GrpcClientCall *call) {
        const char *scheme = c->unix_path ? "http" : "https";
        /* :authority is required by nghttp2; a Unix socket has no host name, so say localhost. */
        _cleanup_(freep) char *authority = NULL;
        char timeout[16];
        nghttp2_data_provider provider = {.source.ptr = call, .read_callback = on_request_read};
        nghttp2_nv headers[8] = {
                NV(":method", "POST"),
                NV(":scheme", scheme),
                NV(":path", call->path),
                NV(":authority", "localhost"),
                NV("te", "trailers"),
                NV("content-type", "application/grpc+proto"),
                NV("user-agent", "iommud-grpc-client/" PACKAGE_VERSION),
        };
        size_t n = 7;
        int32_t id;

        if (c->host) {
                if (asprintf(&authority, strchr(c->host, ':') ? "[%s]:%s" : "%s:%s", c->host, c->port) < 0)
                        return -ENOMEM;
                headers[3] = (nghttp2_nv)NV(":authority", authority);
        }
        if (call->deadline != 0) {
                uint64_t left = call->deadline > now_usec() ? call->deadline - now_usec() : 1;

                /* At most 8 digits: milliseconds cover 27 hours, seconds the rest. */
                if (left / 1000 < 99999999)
                        snprintf(timeout, sizeof(timeout), "%" PRIu64 "m", (left + 999) / 1000);
                else
                        snprintf(timeout, sizeof(timeout), "%" PRIu64 "S",
                                 left / 1000000 > 99999999 ? 99999999 : left / 1000000);
                headers[n++] = (nghttp2_nv)NV("grpc-timeout", timeout);
        }

        id = nghttp2_submit_request(c->session, NULL, headers, n, &provider, NULL);
        if (id < 0)
                return -ENOMEM;
        call->stream_id = id;
        return 0;
}

static void conn_flush(GrpcClient *c) {
        int r = nghttp2_session_send(c->session);

        if (r != 0) {
                conn_fail(c, -EPROTO, nghttp2_strerror(r));
                return;
        }
        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
                c->broken = true;
                call_fail(c, -ECONNRESET, GRPC_STATUS_UNAVAILABLE, "the server closed the connection");
        }
}

/* ---- transport -------------------------------------------------------------------------------- */

static void on_bev_read(struct bufferevent *bev, void *userdata) {
        GrpcClient *c = userdata;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t n = evbuffer_get_length(in);
        ssize_t k;

        if (!c->session)
                return;
        k = nghttp2_session_mem_recv(c->session, evbuffer_pullup(in, -1), n);
        if (k < 0) {
                conn_fail(c, -EPROTO, nghttp2_strerror((int)k));
                return;
        }
        evbuffer_drain(in, n);
        conn_flush(c);
}

#define IN_SET_CONNECT_ERROR(e)                                                                             \
        ((e) == ECONNREFUSED || (e) == ENETUNREACH || (e) == EHOSTUNREACH || (e) == ETIMEDOUT ||            \
         (e) == EADDRNOTAVAIL)

/* The most useful words OpenSSL has about a failed handshake or connection. */
static void describe_tls_error(GrpcClient *c, char *buf, size_t size) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        unsigned long e, last = 0;
        long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

        /* libevent also queues bare codes without a library; they say nothing to a person. */
        while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
                if (ERR_GET_LIB(e) != 0)
                        last = e;
        if (v != X509_V_OK)
                snprintf(buf, size, "the server's certificate is not trusted: %s (%s)",
                         X509_verify_cert_error_string(v),
                         c->ca_file ? "did the CA in --ca sign it?"
                                    : "name the CA that signed it with --ca");
        else if (last != 0) {
                char text[256];

                ERR_error_string_n(last, text, sizeof(text));
                /* Under TLS 1.3 the server's verdict on our certificate comes after the handshake. */
                snprintf(buf, size, "TLS error: %s%s", text,
                         !c->cert_file ? " (the server may want a client certificate: --cert, --key)"
                         : strstr(text, "alert") ? " (the server refused our client certificate)"
                                                 : "");
        } else
                snprintf(buf, size, "the server ended the TLS session%s",
                         !c->cert_file ? " (it may want a client certificate: --cert, --key)" : "");
}

static void on_next_address(evutil_socket_t fd, short what, void *userdata) {
        GrpcClient *c = userdata;
        int r;

        conn_close(c);
        r = conn_open(c);
        if (r < 0)
                conn_fail(c, r, strerror(-r));
}

static void on_bev_event(struct bufferevent *bev, short events, void *userdata) {
        GrpcClient *c = userdata;
        char what[512], where[300], message[900];
        int error = EVUTIL_SOCKET_ERROR();
        int r;

        if (events & BEV_EVENT_CONNECTED) {
                const unsigned char *alpn = NULL;
                unsigned alpn_len = 0;

                SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(bev), &alpn, &alpn_len);
                if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
                        conn_fail(c, -EPROTO,
                                  "TLS: the server did not agree to speak HTTP/2 (ALPN h2); is it a gRPC "
                                  "port?");
                        return;
                }
                r = session_start(c);
                if (r >= 0 && c->call)
                        r = call_submit(c, c->call);
                if (r < 0) {
                        conn_fail(c, r, strerror(-r));
                        return;
                }
                timer_arm(c);
                conn_flush(c);
                return;
        }
        if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
                return;

        if (c->unix_path)
                snprintf(where, sizeof(where), "%s", c->unix_path);
        else if (!c->connected && c->address) {
                char addr[INET6_ADDRSTRLEN] = "?";
                const struct sockaddr *sa = c->address->ai_addr;

                inet_ntop(sa->sa_family,
                          sa->sa_family == AF_INET6
                                  ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                  : (const void *)&((const struct sockaddr_in *)sa)->sin_addr,
                          addr, sizeof(addr));
                snprintf(where, sizeof(where), "%s (%s) port %s", c->host, addr, c->port);
        } else
                snprintf(where, sizeof(where), "%s port %s", c->host, c->port);

        /* Only a failed TCP connect moves on to the next address; a TLS failure would repeat. */
        if (!c->connected && c->address && c->address->ai_next && (events & BEV_EVENT_ERROR) &&
            IN_SET_CONNECT_ERROR(error)) {
                c->address = c->address->ai_next;
                if (event_base_once(c->base, -1, EV_TIMEOUT, on_next_address, c, NULL) >= 0)
                        return;
        }

        if (!c->connected && IN_SET_CONNECT_ERROR(error))
                snprintf(what, sizeof(what), "%s", strerror(error));
        else if (!c->unix_path && !c->connected && (events & BEV_EVENT_EOF))
                snprintf(what, sizeof(what), "the server closed the connection during the TLS handshake");
        else if (!c->unix_path && (events & BEV_EVENT_ERROR))
                describe_tls_error(c, what, sizeof(what));
        else
                snprintf(what, sizeof(what), "%s",
                         events & BEV_EVENT_EOF ? "the server closed the connection"
                                                : strerror(error ?: ECONNRESET));
        snprintf(message, sizeof(message), "%s %s: %s",
                 c->connected ? "lost the connection to" : "cannot connect to", where, what);
        conn_fail(c, c->connected ? -ECONNRESET : IN_SET_CONNECT_ERROR(error) ? -error : -EPROTO, message);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata) {
        GrpcClient *c = userdata;

        if (!c->connected) {
                char message[300];

                snprintf(message, sizeof(message), "timed out connecting to %s:%s", c->host, c->port);
                conn_fail(c, -ETIMEDOUT, message);
                return;
        }
        if (!c->call || c->call->done)
                return;
        call_fail(c, -ETIMEDOUT, GRPC_STATUS_DEADLINE_EXCEEDED, "no answer within the timeout (%.3gs)",
                  (double)c->timeout_usec / 1e6);
        if (c->call->stream_id > 0) {
                nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, c->call->stream_id, NGHTTP2_CANCEL);
                conn_flush(c);
        }
}

static int ssl_ctx_setup(GrpcClient *c) {
        SSL_CTX *ctx;

        if (c->ssl_ctx)
                return 0;
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                return -ENOMEM;
        c->ssl_ctx = ctx;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if ((c->ca_file ? SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx)) != 1)
                return -ENOKEY;
        if (c->cert_file && SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1)
                return -EKEYREJECTED;
        if (c->key_file && (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1 ||
                            SSL_CTX_check_private_key(ctx) != 1))
                return -EKEYREJECTED;
        return 0;
}

static int conn_open_tls(GrpcClient *c) {
        _cleanup_(SSL_freep) SSL *ssl = NULL;
        struct in6_addr ip;
        bool is_ip;
        int r;

        r = ssl_ctx_setup(c);
        if (r < 0) {
                char message[600];
                unsigned long e = ERR_peek_last_error();

                snprintf(message, sizeof(message), "cannot load the %s: %s",
                         r == -ENOKEY ? "CA certificates (--ca)"
                                      : "client certificate and key (--cert, --key)",
                         e ? ERR_reason_error_string(e) ?: "unknown error" : "unknown error");
                ERR_clear_error();
                conn_fail(c, -EINVAL, message);
                return -EINVAL;
        }
        if (!c->addresses) {
                struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};

                r = getaddrinfo(c->host, c->port, &hints, &c->addresses);
                if (r != 0) {
                        char message[400];

                        snprintf(message, sizeof(message), "cannot resolve %s: %s", c->host,
                                 gai_strerror(r));
                        conn_fail(c, -EHOSTUNREACH, message);
                        return -EHOSTUNREACH;
                }
                c->address = c->addresses;
        }

        ssl = SSL_new(c->ssl_ctx);
        if (!ssl)
                return -ENOMEM;
        is_ip = inet_pton(AF_INET, c->host, &ip) == 1 || inet_pton(AF_INET6, c->host, &ip) == 1;
        /* The certificate must name what the user typed: an IP SAN for an address, else the host name. */
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host) != 1
                  : SSL_set_tlsext_host_name(ssl, c->host) != 1 || SSL_set1_host(ssl, c->host) != 1)
                return -ENOMEM;
        if (SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3) != 0)
                return -ENOMEM;

        c->bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev)
                return -ENOMEM;
        TAKE_PTR(ssl); /* freed with the bufferevent */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        bufferevent_setcb(c->bev, on_bev_read, NULL, on_bev_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        /* Failures, immediate ones included, arrive as BEV_EVENT_ERROR. */
        (void)bufferevent_socket_connect(c->bev, c->address->ai_addr, (int)c->address->ai_addrlen);
        return 0;
}

static int conn_open_unix(GrpcClient *c) {
        _cleanup_(closep) int fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int r;

        if (strlen(c->unix_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, c->unix_path, strlen(c->unix_path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A local connect completes or fails at once, with an errno worth showing the user. */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        if (evutil_make_socket_nonblocking(fd) < 0)
                return -errno;

        c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev)
                return -ENOMEM;
        TAKE_FD(fd);
        bufferevent_setcb(c->bev, on_bev_read, NULL, on_bev_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        r = session_start(c);
        if (r < 0)
                return r;
        return 0;
}

static int conn_open(GrpcClient *c) {
        int r;

        if (c->unix_path) {
                r = conn_open_unix(c);
                if (r < 0) {
                        char message[300];

                        snprintf(message, sizeof(message), "cannot connect to %s: %s", c->unix_path,
                                 strerror(-r));
                        conn_fail(c, r, message);
                }
                return r;
        }
        return conn_open_tls(c);
}

/* ---- calls ------------------------------------------------------------------------------------ */

int grpc_client_new(struct event_base *base, const GrpcClientOptions *o, GrpcClient **ret) {
        _cleanup_(grpc_client_freep) GrpcClient *c = NULL;

        if (!!o->unix_path == !!o->host || !!o->cert_file != !!o->key_file)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base = base;
        c->timeout_usec = o->timeout_usec;
        if (o->host) {
                const char *colon = strrchr(o->host, ':');

                if (!colon || colon == o->host || !colon[1])
                        return -EINVAL;
                if (o->host[0] == '[') {
                        if (colon[-1] != ']')
                                return -EINVAL;
                        c->host = strndup(o->host + 1, (size_t)(colon - o->host) - 2);
                } else
                        c->host = strndup(o->host, (size_t)(colon - o->host));
                c->port = strdup(colon + 1);
                if (!c->host || !c->port)
                        return -ENOMEM;
        }
        if ((o->unix_path && !(c->unix_path = strdup(o->unix_path))) ||
            (o->ca_file && !(c->ca_file = strdup(o->ca_file))) ||
            (o->cert_file && !(c->cert_file = strdup(o->cert_file))) ||
            (o->key_file && !(c->key_file = strdup(o->key_file))))
                return -ENOMEM;
        c->timer = evtimer_new(base, on_timer, c);
        if (!c->timer)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

GrpcClient *grpc_client_free(GrpcClient *c) {
        if (!c)
                return NULL;
        conn_close(c);
        if (c->timer)
                event_free(c->timer);
        if (c->addresses)
                freeaddrinfo(c->addresses);
        SSL_CTX_free(c->ssl_ctx);
        free(c->unix_path);
        free(c->host);
        free(c->port);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        free(c);
        return NULL;
}

void grpc_client_cancel(GrpcClient *c) {
        GrpcClientCall *call = c->call;

        if (!call || call->done)
                return;
        /* End the call first: sending the reset closes the stream, and that must not count as the
         * server's doing. */
        call_fail(c, -ECANCELED, GRPC_STATUS_CANCELLED, "cancelled");
        if (c->connected && call->stream_id > 0) {
                nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
                conn_flush(c);
        }
}

static int call_run(GrpcClient *c, GrpcClientCall *call, const ProtobufCMessage *request,
                    GrpcClientStatus *ret_status) {
        size_t size = protobuf_c_message_get_packed_size(request);
        int r;

        *ret_status = (GrpcClientStatus){.code = GRPC_STATUS_INTERNAL};
        grpc_frame_reader_init(&call->reader, MAX_RESPONSE_MESSAGE);
        call->code = GRPC_STATUS_UNKNOWN;
        call->deadline = c->timeout_usec ? now_usec() + c->timeout_usec : 0;
        call->request = malloc(GRPC_FRAME_HEADER_SIZE + size);
        if (!call->request)
                return -ENOMEM;
        r = grpc_frame_header_encode(call->request, size);
        if (r < 0)
                return r;
        protobuf_c_message_pack(request, call->request + GRPC_FRAME_HEADER_SIZE);
        call->request_size = GRPC_FRAME_HEADER_SIZE + size;

        c->call = call;
        if (c->broken)
                conn_close(c);
        if (!c->bev)
                (void)conn_open(c); /* a failure ends the call */
        if (!call->done && c->connected) {
                r = call_submit(c, call);
                if (r < 0)
                        call_fail(c, r, GRPC_STATUS_INTERNAL, "cannot start the call: %s", strerror(-r));
                else
                        conn_flush(c);
        }
        if (!call->done)
                timer_arm(c);
        while (!call->done)
                if (event_base_loop(c->base, EVLOOP_ONCE) != 0)
                        call_fail(c, -EIO, GRPC_STATUS_INTERNAL, "the event loop stopped");
        evtimer_del(c->timer);
        c->call = NULL;

        if (call->error == 0 && call->code == GRPC_STATUS_OK && !call->on_message && !call->response) {
                call->error = -EBADMSG;
                call->code = GRPC_STATUS_INTERNAL;
                free(call->message);
                call->message = strdup("the server sent no response message");
        }
        ret_status->code = call->code;
        ret_status->message = TAKE_PTR(call->message);
        return call->error;
}

static void call_done(GrpcClientCall *call) {
        free(call->request);
        free(call->message);
        grpc_frame_reader_done(&call->reader);
        if (call->response)
                protobuf_c_message_free_unpacked(call->response, NULL);
}

int grpc_client_call(GrpcClient *c, const char *path, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
                     GrpcClientStatus *ret_status) {
        GrpcClientCall call = {.path = path, .response_type = response_type};
        int r;

        if (c->call)
                return -EBUSY;
        r = call_run(c, &call, request, ret_status);
        if (r >= 0 && ret_status->code == GRPC_STATUS_OK)
                *ret_response = TAKE_PTR(call.response);
        call_done(&call);
        return r;
}

int grpc_client_call_stream(GrpcClient *c, const char *path, const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_type,
                            GrpcClientMessageFunc on_message, void *userdata, GrpcClientStatus *ret_status) {
        GrpcClientCall call = {.path = path,
                               .response_type = response_type,
                               .on_message = on_message,
                               .userdata = userdata};
        int r;

        if (c->call)
                return -EBUSY;
        r = call_run(c, &call, request, ret_status);
        call_done(&call);
        return r;
}

/* The repeated message field that a List response pages (its field 1), and its page token fields. */
typedef struct PagedFields {
        const ProtobufCFieldDescriptor *items, *next_token, *token;
} PagedFields;

static int paged_fields(const ProtobufCMessageDescriptor *request_type,
                        const ProtobufCMessageDescriptor *response_type, PagedFields *ret) {
        PagedFields f = {
                .items = protobuf_c_message_descriptor_get_field(response_type, 1),
                .next_token = protobuf_c_message_descriptor_get_field_by_name(response_type, "next_page_token"),
                .token = protobuf_c_message_descriptor_get_field_by_name(request_type, "page_token"),
        };

        if (!f.items || f.items->label != PROTOBUF_C_LABEL_REPEATED || f.items->type != PROTOBUF_C_TYPE_MESSAGE ||
            !f.next_token || f.next_token->type != PROTOBUF_C_TYPE_STRING || !f.token ||
            f.token->type != PROTOBUF_C_TYPE_STRING)
                return -EINVAL;
        *ret = f;
        return 0;
}

static void message_freep(ProtobufCMessage **m) {
        if (*m)
                protobuf_c_message_free_unpacked(*m, NULL);
}

#define FIELD_PTR(msg, field, type) ((type *)((uint8_t *)(msg) + (field)->offset))

int grpc_client_list_all(GrpcClient *c, const char *path, ProtobufCMessage *request,
                         const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
                         GrpcClientStatus *ret_status) {
        _cleanup_(message_freep) ProtobufCMessage *all = NULL;
        char **token, *saved;
        PagedFields f;
        int r;

        r = paged_fields(request->descriptor, response_type, &f);
        if (r < 0)
                return r;
        token = FIELD_PTR(request, f.token, char *);
        saved = *token;
        for (unsigned pages = 0;; pages++) {
                _cleanup_(message_freep) ProtobufCMessage *page = NULL;
                size_t *n_all, *n_page;
                void ***items_all, ***items_page;
                char *next;

                if (pages > 0)
                        grpc_client_status_done(ret_status);
                r = grpc_client_call(c, path, request, response_type, &page, ret_status);
                if (r < 0 || ret_status->code != GRPC_STATUS_OK)
                        break;
                next = *FIELD_PTR(page, f.next_token, char *);
                if (!all) {
                        /* The first page is the answer: its sequence is the one to watch from. */
                        all = TAKE_PTR(page);
                } else {
                        void **items;

                        /* Move the page's items over; the page frees only its emptied array. */
                        n_all = (size_t *)((uint8_t *)all + f.items->quantifier_offset);
                        n_page = (size_t *)((uint8_t *)page + f.items->quantifier_offset);
                        items_all = FIELD_PTR(all, f.items, void **);
                        items_page = FIELD_PTR(page, f.items, void **);
                        items = realloc(*items_all, (*n_all + *n_page) * sizeof(void *));
                        if (!items) {
                                r = -ENOMEM;
                                break;
                        }
                        memcpy(items + *n_all, *items_page, *n_page * sizeof(void *));
                        *items_all = items;
                        *n_all += *n_page;
                        *n_page = 0;
                }
                if (!next || !*next)
                        break;
                /* A server that repeats a token would page forever. */
                if (pages >= 1000000 || (*token && strcmp(*token, next) == 0)) {
                        r = -EBADMSG;
                        break;
                }
                if (*token != saved)
                        free(*token);
                *token = strdup(next);
                if (!*token) {
                        *token = saved;
                        r = -ENOMEM;
                        break;
                }
        }
        if (*token != saved)
                free(*token);
        *token = saved;
        if (r >= 0 && ret_status->code == GRPC_STATUS_OK) {
                /* The merged answer has no next page. */
                char **next = FIELD_PTR(all, f.next_token, char *);

                if (*next && *next != (char *)protobuf_c_empty_string) {
                        free(*next);
                        *next = (char *)protobuf_c_empty_string;
                }
                *ret_response = TAKE_PTR(all);
        }
        return r;
}
