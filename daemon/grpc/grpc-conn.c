/* One HTTP/2 connection (nghttp2 on one bufferevent, with backpressure) and the gRPC calls on it. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "grpc-internal.h"
#include "log.h"

/* Above this much unsent output we stop asking nghttp2 for frames and stop reading requests, so a
 * client that does not read cannot make us buffer without bound. */
#define OUTPUT_HIGH_WATER (64 * 1024)
/* Local stream window: big enough for MB-sized messages without a round trip per 64 KiB. */
#define STREAM_WINDOW (1 << 20)
#define CONNECTION_WINDOW (16 << 20)
/* Requests whose headers overflow the limit; past this many the connection is an abuser. */
#define MAX_HEADER_OVERFLOWS 8

#define NV(n, v)                                                                                            \
        { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static void conn_flush(GrpcConn *c);
static void call_detach(GrpcCall *call);

DEFINE_TRIVIAL_CLEANUP_FUNC(nghttp2_session_callbacks *, nghttp2_session_callbacks_del)
DEFINE_TRIVIAL_CLEANUP_FUNC(nghttp2_option *, nghttp2_option_del)

/* ---- calls ------------------------------------------------------------------------------------ */

GrpcCall *grpc_call_ref(GrpcCall *call) {
        if (call)
                call->n_ref++;
        return call;
}

GrpcCall *grpc_call_unref(GrpcCall *call) {
        if (!call || --call->n_ref > 0)
                return NULL;
        /* The stream holds a reference, so by now the call is detached. */
        free(call->path);
        free(call->method_hdr);
        free(call->content_type);
        free(call->grpc_encoding);
        free(call->grpc_timeout);
        free(call->status_message);
        grpc_frame_reader_done(&call->reader);
        if (call->request)
                protobuf_c_message_free_unpacked(call->request, NULL);
        if (call->out)
                evbuffer_free(call->out);
        if (call->deadline)
                event_free(call->deadline);
        free(call);
        return NULL;
}

const GrpcPeer *grpc_call_get_peer(GrpcCall *call) {
        return call->conn ? &call->conn->peer : NULL;
}

GrpcServer *grpc_call_get_server(GrpcCall *call) {
        return call->server;
}

const char *grpc_call_get_path(GrpcCall *call) {
        return call->path;
}

bool grpc_call_is_active(GrpcCall *call) {
        return call->conn && !call->conn->dead && !call->finished;
}

void grpc_call_set_userdata(GrpcCall *call, void *userdata) {
        call->userdata = userdata;
}

void *grpc_call_get_userdata(GrpcCall *call) {
        return call->userdata;
}

void grpc_call_set_cancel(GrpcCall *call, GrpcCancelFunc func, void *userdata) {
        call->cancel = func;
        call->cancel_userdata = userdata;
}

static void call_notify_cancel(GrpcCall *call) {
        GrpcCancelFunc f = call->cancel;

        call->cancel = NULL;
        if (f)
                f(call, call->cancel_userdata);
}

/* Keeps conn->buffered equal to the sum of the bytes the calls' readers hold. */
static void call_account(GrpcCall *call) {
        size_t now = call->conn ? grpc_frame_reader_pending(&call->reader) : 0;

        if (call->conn)
                call->conn->buffered = call->conn->buffered - call->accounted + now;
        call->accounted = now;
}

static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        GrpcCall *call = source->ptr;

        int n = evbuffer_remove(call->out, buf, length);
        if (n > 0)
                return n;

        if (call->finished) {
                char status[12] = "", message[1024] = "";
                nghttp2_nv trailers[2] = {
                        NV("grpc-status", status),
                        NV("grpc-message", message),
                };

                snprintf(status, sizeof(status), "%d", (int)call->status);
                trailers[0].valuelen = strlen(status);
                grpc_message_encode(call->status_message, message, sizeof(message));
                trailers[1].valuelen = strlen(message);
                /* Trailers end the stream; the DATA frames themselves must not. */
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                if (nghttp2_submit_trailer(session, stream_id, trailers, message[0] ? 2 : 1) != 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                return 0;
        }

        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
}

int grpc_call_send_headers(GrpcCall *call) {
        if (!grpc_call_is_active(call))
                return -ECONNRESET;
        if (call->headers_sent)
                return 0;

        nghttp2_nv hdrs[] = {
                NV(":status", "200"),
                NV("content-type", "application/grpc"),
        };
        nghttp2_data_provider prd = {
                .source.ptr = call,
                .read_callback = on_data_read,
        };
        if (nghttp2_submit_response(call->conn->session, call->stream_id, hdrs, ELEMENTSOF(hdrs), &prd) != 0)
                return -EIO;
        call->headers_sent = true;
        conn_flush(call->conn);
        return 0;
}

static void call_resume(GrpcCall *call) {
        if (call->deferred) {
                call->deferred = false;
                (void)nghttp2_session_resume_data(call->conn->session, call->stream_id);
        }
        conn_flush(call->conn);
}

int grpc_call_send(GrpcCall *call, const ProtobufCMessage *msg) {
        if (!grpc_call_is_active(call))
                return -ECONNRESET;

        size_t size = protobuf_c_message_get_packed_size(msg);
        if (evbuffer_get_length(call->out) + size > call->server->limits.max_send_queue)
                return -ENOBUFS;

        uint8_t header[GRPC_FRAME_HEADER_SIZE];
        int r = grpc_frame_header_encode(header, size);
        if (r < 0)
                return r;

        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(call->out, GRPC_FRAME_HEADER_SIZE + size, &v, 1) != 1 ||
            v.iov_len < GRPC_FRAME_HEADER_SIZE + size)
                return -ENOMEM;
        memcpy(v.iov_base, header, GRPC_FRAME_HEADER_SIZE);
        protobuf_c_message_pack(msg, (uint8_t *)v.iov_base + GRPC_FRAME_HEADER_SIZE);
        v.iov_len = GRPC_FRAME_HEADER_SIZE + size;
        if (evbuffer_commit_space(call->out, &v, 1) < 0)
                return -ENOMEM;

        if (!call->headers_sent)
                return grpc_call_send_headers(call);
        call_resume(call);
        return 0;
}

/* Sends a bare HTTP status (415, 405): the request is not gRPC at all. */
static void call_respond_http(GrpcCall *call, const char *status) {
        nghttp2_nv hdrs[] = {NV(":status", status)};

        call->finished = true;
        call->headers_sent = true;
        (void)nghttp2_submit_response(call->conn->session, call->stream_id, hdrs, ELEMENTSOF(hdrs), NULL);
        conn_flush(call->conn);
}

int grpc_call_fail_status(GrpcCall *call, GrpcStatus status, const char *message) {
        if (!call->conn || call->conn->dead)
                return -ECONNRESET;
        if (call->finished)
                return -EALREADY;

        call->finished = true;
        call->status = status;
        if ((unsigned)status < _GRPC_STATUS_MAX)
                call->server->stats.calls_finished[status]++;
        free(call->status_message);
        call->status_message = message ? strdup(message) : NULL;
        if (call->deadline)
                event_del(call->deadline);

        if (status != GRPC_STATUS_OK)
                log_debug("gRPC %s from %s: %s%s%s", call->path ? call->path : "?", call->conn->description,
                          grpc_status_to_string(status), message ? ": " : "", message ? message : "");

        if (!call->headers_sent) {
                /* Trailers-Only: one HEADERS frame with END_STREAM. */
                char code[12] = "", encoded[1024] = "";
                nghttp2_nv hdrs[] = {
                        NV(":status", "200"),
                        NV("content-type", "application/grpc"),
                        NV("grpc-status", code),
                        NV("grpc-message", encoded),
                };

                snprintf(code, sizeof(code), "%d", (int)status);
                hdrs[2].valuelen = strlen(code);
                grpc_message_encode(message, encoded, sizeof(encoded));
                hdrs[3].valuelen = strlen(encoded);
                call->headers_sent = true;
                if (nghttp2_submit_response(call->conn->session, call->stream_id, hdrs, encoded[0] ? 4 : 3,
                                            NULL) != 0)
                        return -EIO;
                conn_flush(call->conn);
                return 0;
        }

        call_resume(call);
        return 0;
}

int grpc_call_finish(GrpcCall *call) {
        return grpc_call_fail_status(call, GRPC_STATUS_OK, NULL);
}

int grpc_call_reply(GrpcCall *call, const ProtobufCMessage *msg) {
        int r = grpc_call_send(call, msg);
        if (r < 0) {
                if (r != -ECONNRESET)
                        (void)grpc_call_fail(call, r, "cannot queue the response");
                return r;
        }
        return grpc_call_finish(call);
}

int grpc_call_fail(GrpcCall *call, int error, const char *message) {
        if (!message)
                message = strerror(error < 0 ? -error : error);
        return grpc_call_fail_status(call, grpc_status_from_errno(error), message);
}

static void on_call_deadline(evutil_socket_t fd, short what, void *userdata) {
        GrpcCall *call = userdata;

        /* Finish with DEADLINE_EXCEEDED in trailers rather than RST(CANCEL): grpcio then reports
         * DEADLINE_EXCEEDED reliably instead of racing its own timer (GRPC.md 1.7). */
        call_notify_cancel(call);
        (void)grpc_call_fail_status(call, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void call_invoke(GrpcCall *call, const ProtobufCMessage *request) {
        _cleanup_(grpc_call_unrefp) _unused_ GrpcCall *ref = grpc_call_ref(call);

        int r = call->entry.method->handler(call, request, call->entry.userdata);
        if (r < 0 && grpc_call_is_active(call))
                (void)grpc_call_fail(call, r, NULL);
}

static void call_fail_frame(GrpcCall *call, int r) {
        char buf[128];
        uint64_t declared;

        switch (r) {
        case -EMSGSIZE:
                if (!grpc_frame_reader_declared_size(&call->reader, &declared))
                        declared = 0;
                snprintf(buf, sizeof(buf), "received message larger than max (%" PRIu64 " vs. %zu)",
                         declared, call->server->limits.max_message_size);
                (void)grpc_call_fail_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, buf);
                break;
        case -EPROTONOSUPPORT:
                if (call->grpc_encoding && strcmp(call->grpc_encoding, "identity") != 0)
                        (void)grpc_call_fail_status(call, GRPC_STATUS_UNIMPLEMENTED,
                                                    "message compression is not supported (identity only)");
                else
                        (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL,
                                                    "compressed message without grpc-encoding");
                break;
        case -EBADMSG:
                (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL, "invalid message prefix");
                break;
        default:
                (void)grpc_call_fail(call, r, "cannot buffer the request");
        }
}

static void call_take_messages(GrpcCall *call) {
        for (;;) {
                const uint8_t *msg;
                size_t size;

                int r = grpc_frame_reader_next(&call->reader, &msg, &size);
                if (r == 0)
                        return;
                if (r < 0)
                        return call_fail_frame(call, r);

                call->n_requests++;
                if (call->entry.method->kind != GRPC_METHOD_BIDI_STREAM && call->n_requests > 1) {
                        (void)grpc_call_fail_status(
                                call, GRPC_STATUS_UNIMPLEMENTED,
                                "more than one request message for a unary-request method");
                        return;
                }

                ProtobufCMessage *m =
                        protobuf_c_message_unpack(call->entry.method->request, NULL, size, msg);
                if (!m) {
                        (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL,
                                                    "error parsing request proto");
                        return;
                }

                if (call->entry.method->kind == GRPC_METHOD_BIDI_STREAM) {
                        call_invoke(call, m);
                        protobuf_c_message_free_unpacked(m, NULL);
                        if (!grpc_call_is_active(call))
                                return;
                } else
                        call->request = m;
        }
}

static void call_on_end_stream(GrpcCall *call) {
        call->half_closed = true;
        if (!call->dispatched || !grpc_call_is_active(call))
                return;

        if (grpc_frame_reader_pending(&call->reader) > 0) {
                (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL, "truncated request message");
                return;
        }

        if (call->entry.method->kind == GRPC_METHOD_BIDI_STREAM) {
                call_invoke(call, NULL);
                return;
        }

        if (!call->request) {
                (void)grpc_call_fail_status(call, GRPC_STATUS_UNIMPLEMENTED,
                                            "no request message for a unary-request method");
                return;
        }
        /* The request is decoded; its wire bytes are not needed any more. */
        grpc_frame_reader_done(&call->reader);
        call_account(call);
        call_invoke(call, call->request);
        if (call->entry.method->kind == GRPC_METHOD_SERVER_STREAM && grpc_call_is_active(call))
                /* A live stream shows itself at once, before its first event. */
                (void)grpc_call_send_headers(call);
}

static bool content_type_is_grpc(const char *ct) {
        if (!ct || strncmp(ct, "application/grpc", 16) != 0)
                return false;
        return ct[16] == '\0' || ct[16] == '+' || ct[16] == ';';
}

static void call_on_request_headers(GrpcCall *call) {
        GrpcConn *c = call->conn;
        GrpcServer *s = call->server;
        char buf[256];

        if (call->header_overflow) {
                snprintf(buf, sizeof(buf), "request headers larger than %zu bytes",
                         s->limits.max_header_list_size);
                (void)grpc_call_fail_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, buf);
                if (++c->n_header_overflows > MAX_HEADER_OVERFLOWS && !c->goaway_sent) {
                        log_info("Closing gRPC connection %s: too many oversize header lists.",
                                 c->description);
                        (void)nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                                    nghttp2_session_get_last_proc_stream_id(c->session),
                                                    NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
                        c->goaway_sent = true;
                }
                return;
        }
        if (!call->method_hdr || strcmp(call->method_hdr, "POST") != 0)
                return call_respond_http(call, "405");
        if (!content_type_is_grpc(call->content_type))
                return call_respond_http(call, "415");

        const GrpcMethodEntry *e = call->path ? grpc_server_find_method(s, call->path) : NULL;
        if (!e) {
                snprintf(buf, sizeof(buf), "unknown method %.200s", call->path ? call->path : "(none)");
                (void)grpc_call_fail_status(call, GRPC_STATUS_UNIMPLEMENTED, buf);
                return;
        }
        call->entry = *e;

        if (call->grpc_timeout) {
                uint64_t usec;
                if (grpc_timeout_parse(call->grpc_timeout, &usec) < 0) {
                        (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL, "invalid grpc-timeout");
                        return;
                }
                call->deadline = evtimer_new(s->base, on_call_deadline, call);
                if (!call->deadline) {
                        (void)grpc_call_fail(call, -ENOMEM, NULL);
                        return;
                }
                struct timeval tv = {.tv_sec = (time_t)(usec / 1000000),
                                     .tv_usec = (suseconds_t)(usec % 1000000)};
                evtimer_add(call->deadline, &tv);
        }

        GrpcRole role = s->authorize ? s->authorize(&c->peer, s->authorize_userdata) : GRPC_ROLE_NONE;
        if (role < e->method->role) {
                log_info("Denied gRPC %s to %s: needs role %s, has %s.", call->path, c->description,
                         grpc_role_to_string(e->method->role), grpc_role_to_string(role));
                s->stats.permission_denied++;
                _cleanup_(freep) char *denial =
                        s->denial ? s->denial(&c->peer, call->path, e->method->role, s->authorize_userdata) : NULL;
                snprintf(buf, sizeof(buf), "%.200s requires role %s", call->path,
                         grpc_role_to_string(e->method->role));
                (void)grpc_call_fail_status(call, GRPC_STATUS_PERMISSION_DENIED, denial ?: buf);
                return;
        }

        call->dispatched = true;
}

static void call_detach(GrpcCall *call) {
        GrpcConn *c = call->conn;

        if (!c)
                return;
        if (!call->finished) {
                call->server->stats.calls_cancelled++;
                call_notify_cancel(call);
        }
        call->cancel = NULL;
        if (call->deadline)
                event_del(call->deadline);
        grpc_frame_reader_done(&call->reader);
        call_account(call);

        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->next = call->prev = NULL;
        c->n_calls--;
        call->conn = NULL;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------ */

static ssize_t on_session_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                               void *user_data) {
        GrpcConn *c = user_data;
        struct evbuffer *out = bufferevent_get_output(c->bev);

        if (evbuffer_get_length(out) >= OUTPUT_HIGH_WATER)
                return NGHTTP2_ERR_WOULDBLOCK;
        if (evbuffer_add(out, data, length) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return (ssize_t)length;
}

static void conn_arm_timer(GrpcConn *c) {
        GrpcLimits *l = &c->server->limits;
        unsigned ms = c->session && nghttp2_session_get_last_proc_stream_id(c->session) > 0
                              ? l->idle_timeout_ms
                              : l->handshake_timeout_ms;

        if (c->n_calls > 0 || ms == 0) {
                event_del(c->timer);
                return;
        }
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        GrpcConn *c = user_data;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;

        GrpcCall *call = calloc(1, sizeof(GrpcCall));
        if (!call)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        call->out = evbuffer_new();
        if (!call->out) {
                free(call);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        call->n_ref = 1; /* the stream's */
        call->conn = c;
        call->server = c->server;
        call->stream_id = frame->hd.stream_id;
        grpc_frame_reader_init(&call->reader, c->server->limits.max_message_size);

        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        c->n_calls++;
        event_del(c->timer);

        nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
        return 0;
}

static int set_header(char **field, const uint8_t *value, size_t valuelen) {
        char *v = strndup((const char *)value, valuelen);
        if (!v)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        free(*field);
        *field = v;
        return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        GrpcConn *c = user_data;

        /* Request trailers carry nothing we use. */
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        GrpcCall *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call)
                return 0;

        /* nghttp2 only advertises SETTINGS_MAX_HEADER_LIST_SIZE; enforcing it is ours. Keep
         * counting but stop storing once over, and answer when the header block is complete. */
        call->header_bytes += namelen + valuelen + 32;
        if (call->header_bytes > c->server->limits.max_header_list_size)
                call->header_overflow = true;
        if (call->header_overflow)
                return 0;

#define IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, sizeof(s) - 1) == 0)
        if (IS(":path"))
                return set_header(&call->path, value, valuelen);
        if (IS(":method"))
                return set_header(&call->method_hdr, value, valuelen);
        if (IS("content-type"))
                return set_header(&call->content_type, value, valuelen);
        if (IS("grpc-timeout"))
                return set_header(&call->grpc_timeout, value, valuelen);
        if (IS("grpc-encoding"))
                return set_header(&call->grpc_encoding, value, valuelen);
#undef IS
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        GrpcCall *call;

        switch (frame->hd.type) {
        case NGHTTP2_HEADERS:
                /* May run after on_stream_close: the stream data is then gone. */
                call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (!call)
                        break;
                if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
                        call_on_request_headers(call);
                if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                        call_on_end_stream(call);
                break;
        case NGHTTP2_DATA:
                call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (call && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                        call_on_end_stream(call);
                break;
        default:
                break;
        }
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data) {
        GrpcCall *call = nghttp2_session_get_stream_user_data(session, stream_id);

        /* Body of a refused or finished call: drop it, the RST_STREAM is on its way. */
        if (!call || !call->dispatched || !grpc_call_is_active(call))
                return 0;

        GrpcConn *c = call->conn;
        if (c->buffered + len > c->server->limits.max_connection_buffer) {
                (void)grpc_call_fail_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                            "too much request data buffered on this connection");
                return 0;
        }
        int r = grpc_frame_reader_feed(&call->reader, data, len);
        if (r < 0)
                call_fail_frame(call, r);
        else
                call_take_messages(call);
        /* A refused or broken stream's bytes are dead weight: drop them at once. */
        if (!grpc_call_is_active(call))
                grpc_frame_reader_done(&call->reader);
        if (call->conn)
                call_account(call);
        return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        /* gRPC "early server closure": our END_STREAM went out while the client is still sending,
         * so tell it to stop with RST_STREAM(NO_ERROR). Sent only now, because a submitted
         * RST_STREAM would cancel the queued trailers. */
        if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
                (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                                NGHTTP2_NO_ERROR);
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        GrpcConn *c = user_data;
        GrpcCall *call = nghttp2_session_get_stream_user_data(session, stream_id);

        if (!call)
                return 0;
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        if (!call->finished)
                log_debug("gRPC %s from %s cancelled by the peer (HTTP/2 error %u).",
                          call->path ? call->path : "?", c->description, error_code);
        call_detach(call);
        grpc_call_unref(call);
        conn_arm_timer(c);
        return 0;
}

/* ---- connection ------------------------------------------------------------------------------- */

void grpc_conn_close(GrpcConn *c) {
        GrpcServer *s = c->server;

        if (c->dead)
                return;
        c->dead = true;

        /* Calls learn now (cancel callbacks), while the session is still intact; freeing waits for
         * the reaper because we may be inside one of this connection's callbacks. */
        while (c->calls) {
                GrpcCall *call = c->calls;
                if (c->session)
                        nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
                call_detach(call);
                grpc_call_unref(call);
        }

        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        event_del(c->timer);
        event_del(c->flush_event);

        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = NULL;
        c->next = s->dead;
        if (s->dead)
                s->dead->prev = c;
        s->dead = c;
        grpc_server_reap_later(s);
}

void grpc_conn_free(GrpcConn *c) {
        if (!c)
                return;
        /* Callers unlink; this only releases. */
        while (c->calls) {
                GrpcCall *call = c->calls;
                call_detach(call);
                grpc_call_unref(call);
        }
        if (c->session)
                nghttp2_session_del(c->session);
        if (c->bev)
                bufferevent_free(c->bev); /* closes the fd and frees the SSL */
        if (c->timer)
                event_free(c->timer);
        if (c->flush_event)
                event_free(c->flush_event);
        free(c->subject);
        free(c->common_name);
        free(c->description);
        free(c);
}

/* Checks whether the connection is done, and pauses reading while output piles up. */
static void conn_update(GrpcConn *c) {
        if (c->dead)
                return;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t pending = evbuffer_get_length(out);

        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
            pending == 0) {
                log_debug("gRPC connection %s done.", c->description);
                grpc_conn_close(c);
                return;
        }
        if (pending >= OUTPUT_HIGH_WATER && !c->read_paused) {
                bufferevent_disable(c->bev, EV_READ);
                c->read_paused = true;
        }
}

static int conn_send(GrpcConn *c) {
        if (c->dead || !c->session)
                return 0;
        int r = nghttp2_session_send(c->session);
        if (r != 0) {
                log_debug("gRPC connection %s: cannot send: %s", c->description, nghttp2_strerror(r));
                grpc_conn_close(c);
                return -EIO;
        }
        conn_update(c);
        return 0;
}

static void on_conn_flush(evutil_socket_t fd, short what, void *userdata) {
        (void)conn_send(userdata);
}

/* Sending from inside nghttp2 callbacks is forbidden, and callers of grpc_call_*() cannot know
 * where they are: defer every flush to one loop iteration later. */
static void conn_flush(GrpcConn *c) {
        if (!c->dead)
                event_active(c->flush_event, EV_TIMEOUT, 0);
}

static void conn_process_input(GrpcConn *c) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len = evbuffer_get_length(in);

        if (len == 0 || c->dead || !c->session)
                return;
        unsigned char *data = evbuffer_pullup(in, -1);
        ssize_t n = nghttp2_session_mem_recv(c->session, data, len);
        if (n < 0) {
                log_debug("gRPC connection %s: bad HTTP/2: %s", c->description, nghttp2_strerror((int)n));
                /* nghttp2 may have queued a GOAWAY that says why; try to get it out. */
                (void)nghttp2_session_send(c->session);
                grpc_conn_close(c);
                return;
        }
        evbuffer_drain(in, (size_t)n);
        (void)conn_send(c);
}

static void on_conn_read(struct bufferevent *bev, void *userdata) {
        GrpcConn *c = userdata;

        if (c->read_paused)
                return;
        conn_process_input(c);
}

static void on_conn_write(struct bufferevent *bev, void *userdata) {
        GrpcConn *c = userdata;

        /* Output drained: resume what the high-water mark stopped. */
        if (c->read_paused) {
                c->read_paused = false;
                bufferevent_enable(c->bev, EV_READ);
                conn_process_input(c);
                if (c->dead)
                        return;
        }
        (void)conn_send(c);
}

static int conn_start_session(GrpcConn *c) {
        _cleanup_(nghttp2_session_callbacks_delp) nghttp2_session_callbacks *cbs = NULL;
        _cleanup_(nghttp2_option_delp) nghttp2_option *opt = NULL;
        const GrpcLimits *l = &c->server->limits;

        if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_send_callback(cbs, on_session_send);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

        /* Same as nghttp2's built-in rapid-reset defaults, stated so the choice is visible. */
        nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
        nghttp2_option_set_max_continuations(opt, 8);

        if (nghttp2_session_server_new2(&c->session, cbs, c, opt) != 0)
                return -ENOMEM;

        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, l->max_streams},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
                {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)l->max_header_list_size},
        };
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv)) != 0 ||
            nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONNECTION_WINDOW) != 0)
                return -ENOMEM;

        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        return conn_send(c);
}

static void conn_on_tls_connected(GrpcConn *c) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        char buf[512];

        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
                log_info("Closing TLS connection %s: ALPN h2 not negotiated.", c->description);
                return grpc_conn_close(c);
        }

        /* The handshake already required and verified the certificate; this only names it. */
        X509 *cert = SSL_get0_peer_certificate(ssl);
        if (!cert) {
                log_info("Closing TLS connection %s: no client certificate.", c->description);
                return grpc_conn_close(c);
        }
        X509_NAME *subject = X509_get_subject_name(cert);
        BIO *bio = BIO_new(BIO_s_mem());
        if (bio) {
                if (X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253) >= 0) {
                        int n = BIO_read(bio, buf, sizeof(buf) - 1);
                        if (n >= 0) {
                                buf[n] = '\0';
                                c->subject = strdup(buf);
                        }
                }
                BIO_free(bio);
        }
        if (X509_NAME_get_text_by_NID(subject, NID_commonName, buf, sizeof(buf)) > 0)
                c->common_name = strdup(buf);
        c->peer.subject = c->subject ? c->subject : "";
        c->peer.common_name = c->common_name;

        char *d = NULL;
        if (asprintf(&d, "tls %s %s", c->peer.subject, c->description) >= 0) {
                free(c->description);
                c->description = d;
                c->peer.description = d;
        }
        log_debug("gRPC connection %s established.", c->description);

        int r = conn_start_session(c);
        if (r < 0)
                grpc_conn_close(c);
}

static void on_conn_event(struct bufferevent *bev, short events, void *userdata) {
        GrpcConn *c = userdata;

        if (events & BEV_EVENT_CONNECTED) {
                conn_on_tls_connected(c);
                return;
        }
        if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
                if (c->tls && (events & BEV_EVENT_ERROR)) {
                        unsigned long e = bufferevent_get_openssl_error(bev);
                        if (e != 0) {
                                char err[256];
                                ERR_error_string_n(e, err, sizeof(err));
                                log_debug("gRPC connection %s: TLS: %s", c->description, err);
                        }
                }
                log_debug("gRPC connection %s closed by the peer.", c->description);
                grpc_conn_close(c);
        }
}

static void on_conn_timer(evutil_socket_t fd, short what, void *userdata) {
        GrpcConn *c = userdata;

        if (c->n_calls > 0)
                return;
        if (!c->session) {
                log_debug("gRPC connection %s: handshake timed out.", c->description);
                return grpc_conn_close(c);
        }
        log_debug("gRPC connection %s idle, closing.", c->description);
        /* GOAWAY first, so the client retries on a new connection instead of failing a call. */
        grpc_conn_goaway(c);
        if (nghttp2_session_get_last_proc_stream_id(c->session) == 0 && !c->dead)
                /* Never spoke HTTP/2 at all: nothing to be graceful about. */
                grpc_conn_close(c);
}

void grpc_conn_shutdown_notice(GrpcConn *c) {
        if (c->dead || !c->session)
                return;
        (void)nghttp2_submit_shutdown_notice(c->session);
        (void)conn_send(c);
}

void grpc_conn_goaway(GrpcConn *c) {
        if (c->dead)
                return;
        if (!c->session)
                return grpc_conn_close(c);
        if (!c->goaway_sent) {
                (void)nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                            nghttp2_session_get_last_proc_stream_id(c->session),
                                            NGHTTP2_NO_ERROR, NULL, 0);
                c->goaway_sent = true;
        }
        (void)conn_send(c);
}

static int describe_peer(GrpcConn *c, GrpcListener *l, int fd, const struct sockaddr *sa, int salen) {
        char host[INET6_ADDRSTRLEN + 16] = "?";

        if (l->kind == GRPC_LISTENER_UNIX) {
                struct ucred cred;
                socklen_t len = sizeof(cred);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                        return -errno;
                c->peer.kind = GRPC_PEER_UNIX;
                c->peer.pid = cred.pid;
                c->peer.uid = cred.uid;
                c->peer.gid = cred.gid;
                if (asprintf(&c->description, "unix uid=%u gid=%u pid=%d", (unsigned)cred.uid,
                             (unsigned)cred.gid, (int)cred.pid) < 0)
                        return -ENOMEM;
        } else {
                if (sa && sa->sa_family == AF_INET) {
                        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                        char a[INET_ADDRSTRLEN];
                        evutil_inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
                        snprintf(host, sizeof(host), "%s:%u", a, (unsigned)ntohs(in->sin_port));
                } else if (sa && sa->sa_family == AF_INET6) {
                        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                        char a[INET6_ADDRSTRLEN];
                        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
                        snprintf(host, sizeof(host), "[%s]:%u", a, (unsigned)ntohs(in6->sin6_port));
                }
                c->peer.kind = l->kind == GRPC_LISTENER_TLS ? GRPC_PEER_TLS : GRPC_PEER_TCP_PLAIN;
                if (asprintf(&c->description, "%s%s", l->kind == GRPC_LISTENER_TLS ? "" : "tcp ", host) < 0)
                        return -ENOMEM;
        }
        c->peer.description = c->description;
        return 0;
}

int grpc_conn_new(GrpcServer *s, GrpcListener *l, int fd, const struct sockaddr *sa, int salen) {
        _cleanup_(closep) int owned_fd = fd;
        GrpcConn *c;
        int r;

        c = calloc(1, sizeof(GrpcConn));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->id = ++s->next_conn_id;
        c->tls = l->kind == GRPC_LISTENER_TLS;

        r = describe_peer(c, l, fd, sa, salen);
        if (r < 0)
                goto fail;

        if (l->kind != GRPC_LISTENER_UNIX) {
                /* We write whole frames per flush; Nagle would only hold back the small ones
                 * (trailers, RST_STREAM, WINDOW_UPDATE) behind delayed ACKs. */
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }

        c->timer = evtimer_new(s->base, on_conn_timer, c);
        c->flush_event = event_new(s->base, -1, 0, on_conn_flush, c);
        if (!c->timer || !c->flush_event) {
                r = -ENOMEM;
                goto fail;
        }

        if (c->tls) {
                SSL *ssl = SSL_new(l->ssl_ctx);
                if (!ssl) {
                        r = -ENOMEM;
                        goto fail;
                }
                c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
                if (!c->bev) {
                        SSL_free(ssl);
                        r = -ENOMEM;
                        goto fail;
                }
                /* HTTP/2 detects truncation itself; a peer vanishing without close_notify is normal. */
                bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        } else {
                c->bev =
                        bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
                if (!c->bev) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        owned_fd = -1; /* the bufferevent closes it now */
        bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);

        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        conn_arm_timer(c);

        log_debug("gRPC connection %s accepted (%u open).", c->description, s->n_conns);

        if (c->tls) {
                /* The session starts on BEV_EVENT_CONNECTED, after ALPN and the client certificate. */
                bufferevent_enable(c->bev, EV_READ | EV_WRITE);
                return 0;
        }
        r = conn_start_session(c);
        if (r < 0)
                grpc_conn_close(c);
        return 0;

fail:
        grpc_conn_free(c);
        return r;
}
