/* One HTTP/2 connection (nghttp2 on one bufferevent, with backpressure) and the gRPC calls on it. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "grpc-internal.h"
#include "log.h"
#include "strv.h"

/* Above this much unsent output we stop asking nghttp2 for frames and stop reading requests, so a
 * client that does not read cannot make us buffer without bound. */
#define OUTPUT_HIGH_WATER (64 * 1024)
/* Input read from the socket and not yet given to nghttp2 (only while paused). */
#define INPUT_HIGH_WATER (64 * 1024)
/* Local stream window: big enough for MB-sized messages without a round trip per 64 KiB. */
#define STREAM_WINDOW (1 << 20)
#define CONNECTION_WINDOW (16 << 20)
/* Requests whose headers overflow the limits; past this many the connection is an abuser. */
#define MAX_HEADER_OVERFLOWS 8
/* Every counted allocation carries its size in front; 16 keeps malloc's alignment. */
#define MEM_HEADER 16
/* An HTTP/2 frame header (RFC 9113 4.1). */
#define H2_FRAME_HEADER_SIZE 9
_Static_assert(alignof(max_align_t) <= MEM_HEADER, "allocation header breaks alignment");

#define NV(n, v)                                                                                            \
        { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static void conn_flush(GrpcConn *c);
static void call_detach(GrpcCall *call);
static void conn_arm_idle(GrpcConn *c);

DEFINE_TRIVIAL_CLEANUP_FUNC(nghttp2_session_callbacks *, nghttp2_session_callbacks_del)
DEFINE_TRIVIAL_CLEANUP_FUNC(nghttp2_option *, nghttp2_option_del)

static void timer_add_ms(struct event *ev, unsigned ms) {
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        evtimer_add(ev, &tv);
}

/* ---- counted memory ----------------------------------------------------------------------------- */

/* Allocations whose size is known at free time, so what a connection holds can be charged to it
 * exactly: nghttp2's state and the decoded requests. */
static void *counted_alloc(size_t size) {
        if (size > SIZE_MAX - MEM_HEADER)
                return NULL;
        uint8_t *p = malloc(size + MEM_HEADER);
        if (!p)
                return NULL;
        memcpy(p, &size, sizeof(size));
        return p + MEM_HEADER;
}

static size_t counted_size(void *ptr) {
        size_t size;
        memcpy(&size, (uint8_t *)ptr - MEM_HEADER, sizeof(size));
        return size + MEM_HEADER;
}

static void counted_free(void *ptr) {
        free((uint8_t *)ptr - MEM_HEADER);
}

static void *on_nghttp2_malloc(size_t size, void *userdata) {
        void *p = counted_alloc(size);
        if (p)
                grpc_conn_charge(userdata, (ssize_t)counted_size(p));
        return p;
}

static void on_nghttp2_free(void *ptr, void *userdata) {
        if (!ptr)
                return;
        grpc_conn_charge(userdata, -(ssize_t)counted_size(ptr));
        counted_free(ptr);
}

static void *on_nghttp2_calloc(size_t n, size_t size, void *userdata) {
        if (size != 0 && n > SIZE_MAX / size)
                return NULL;
        void *p = on_nghttp2_malloc(n * size, userdata);
        if (p)
                memset(p, 0, n * size);
        return p;
}

static void *on_nghttp2_realloc(void *ptr, size_t size, void *userdata) {
        if (!ptr)
                return on_nghttp2_malloc(size, userdata);
        if (size == 0) {
                on_nghttp2_free(ptr, userdata);
                return NULL;
        }
        size_t old = counted_size(ptr);
        if (size > SIZE_MAX - MEM_HEADER)
                return NULL;
        uint8_t *p = realloc((uint8_t *)ptr - MEM_HEADER, size + MEM_HEADER);
        if (!p)
                return NULL;
        memcpy(p, &size, sizeof(size));
        grpc_conn_charge(userdata, (ssize_t)(size + MEM_HEADER) - (ssize_t)old);
        return p + MEM_HEADER;
}

/* ---- calls ------------------------------------------------------------------------------------ */

/* The call's memory, charged to its connection while it has one. */
static void call_charge(GrpcCall *call, ssize_t delta) {
        call->memory += (size_t)delta;
        if (call->conn)
                grpc_conn_charge(call->conn, delta);
}

static void call_sync_reader(GrpcCall *call) {
        size_t now = grpc_frame_reader_allocated(&call->reader);

        call_charge(call, (ssize_t)now - (ssize_t)call->memory_reader);
        call->memory_reader = now;
}

/* protobuf-c's allocator for requests: refuses what the budgets do not allow, so a request that
 * decodes into more than its wire size (repeated fields, unknown fields) is bounded too. */
static void *on_request_alloc(void *userdata, size_t size) {
        GrpcCall *call = userdata;

        if (call->conn && !grpc_conn_budget_allows(call->conn, size + MEM_HEADER)) {
                call->over_budget = true;
                return NULL;
        }
        void *p = counted_alloc(size);
        if (p)
                call_charge(call, (ssize_t)counted_size(p));
        return p;
}

static void on_request_free(void *userdata, void *ptr) {
        if (!ptr)
                return;
        call_charge(userdata, -(ssize_t)counted_size(ptr));
        counted_free(ptr);
}

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
                protobuf_c_message_free_unpacked(call->request, &call->allocator);
        if (call->out)
                evbuffer_free(call->out);
        if (call->deadline)
                event_free(call->deadline);
        if (call->request_timer)
                event_free(call->request_timer);
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

/* Drops the request bytes a finished or refused call still holds. */
static void call_drop_input(GrpcCall *call) {
        grpc_frame_reader_done(&call->reader);
        call_sync_reader(call);
        if (call->request_timer)
                event_del(call->request_timer);
}

/* Drops what the call has queued, but for the bytes of a DATA frame nghttp2 has made and not sent
 * yet (it waits at the output high-water mark): the frame must go out whole before the status can. */
static void call_drop_output(GrpcCall *call) {
        size_t n = evbuffer_get_length(call->out);
        size_t keep = MIN(call->out_claimed, n);

        if (n == keep)
                return;
        if (keep == 0)
                evbuffer_drain(call->out, n);
        else {
                struct evbuffer *claimed = evbuffer_new();

                /* Without memory to set them apart, all goes: the frame then resets the stream. */
                if (!claimed || evbuffer_remove_buffer(call->out, claimed, keep) != (int)keep)
                        keep = 0;
                evbuffer_drain(call->out, evbuffer_get_length(call->out));
                if (claimed) {
                        if (keep > 0)
                                (void)evbuffer_add_buffer(call->out, claimed);
                        evbuffer_free(claimed);
                }
        }
        call_charge(call, -(ssize_t)(n - evbuffer_get_length(call->out)));
}

/* The trailers that end a finished call's stream, after its last DATA frame. */
static int call_end_data(nghttp2_session *session, GrpcCall *call, uint32_t *data_flags) {
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
        if (nghttp2_submit_trailer(session, call->stream_id, trailers, message[0] ? 2 : 1) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
}

/* Says how much of the call's output the next DATA frame carries; on_send_data() moves it, so the
 * bytes are never copied into nghttp2's frame buffer. A finished call's last frame also asks for
 * its trailers, which spares an empty DATA frame per call. */
static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        GrpcCall *call = source->ptr;
        size_t n = MIN(evbuffer_get_length(call->out), length);

        if (n > 0) {
                *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
                call->out_claimed = n;
                if (call->finished && n == evbuffer_get_length(call->out)) {
                        int r = call_end_data(session, call, data_flags);
                        if (r < 0)
                                return r;
                }
                return (ssize_t)n;
        }
        if (call->finished)
                return call_end_data(session, call, data_flags);

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

/* A stream that asked for more memory than its budgets allow. Its queued output goes; when the
 * client does not open its window, not even trailers can be sent (they wait behind DATA), so the
 * stream is reset with ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED. */
static void call_fail_over_budget(GrpcCall *call, const char *message) {
        GrpcConn *c = call->conn;

        call->server->stats.streams_over_budget++;
        grpc_server_log_refusal(call->server, "gRPC %s from %s over its memory budget: %s", call->path ?: "?",
                                c->description, message);
        call_drop_input(call);
        call_drop_output(call);
        if (call->headers_sent && nghttp2_session_get_stream_remote_window_size(c->session, call->stream_id) <= 0) {
                call->finished = true;
                call->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
                call->server->stats.calls_finished[GRPC_STATUS_RESOURCE_EXHAUSTED]++;
                (void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                                NGHTTP2_ENHANCE_YOUR_CALM);
                conn_flush(c);
                return;
        }
        (void)grpc_call_fail_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
}

/* ---- shared messages ---------------------------------------------------------------------------- */

struct GrpcShared {
        unsigned n_ref;
        size_t size;     /* the gRPC frame: header and message */
        uint8_t frame[]; /* never changes once made */
};

GrpcShared *grpc_shared_new(const ProtobufCMessage *msg) {
        size_t size = protobuf_c_message_get_packed_size(msg);
        GrpcShared *m;

        if (size > SIZE_MAX - sizeof(GrpcShared) - GRPC_FRAME_HEADER_SIZE)
                return NULL;
        m = malloc(sizeof(GrpcShared) + GRPC_FRAME_HEADER_SIZE + size);
        if (!m)
                return NULL;
        if (grpc_frame_header_encode(m->frame, size) < 0) {
                free(m);
                return NULL;
        }
        protobuf_c_message_pack(msg, m->frame + GRPC_FRAME_HEADER_SIZE);
        m->n_ref = 1;
        m->size = GRPC_FRAME_HEADER_SIZE + size;
        return m;
}

GrpcShared *grpc_shared_ref(GrpcShared *m) {
        if (m)
                m->n_ref++;
        return m;
}

GrpcShared *grpc_shared_unref(GrpcShared *m) {
        if (m && --m->n_ref == 0)
                free(m);
        return NULL;
}

size_t grpc_shared_size(const GrpcShared *m) {
        return m->size;
}

static void on_shared_sent(const void *data, size_t length, void *userdata) {
        grpc_shared_unref(userdata);
}

/* ---- sending ------------------------------------------------------------------------------------- */

/* Whether a message of size bytes (gRPC frame included) may be queued on the call. */
static int call_may_queue(GrpcCall *call, size_t size) {
        if (!grpc_call_is_active(call))
                return -ECONNRESET;

        /* The queue bounds what a slow reader makes us hold: one message is always taken when nothing
         * waits (a large host's ListGroups is one ~11 MB reply); the memory budgets below still apply. */
        if (evbuffer_get_length(call->out) > 0 &&
            evbuffer_get_length(call->out) + size > call->server->limits.max_send_queue + GRPC_FRAME_HEADER_SIZE)
                return -ENOBUFS;
        if (!grpc_conn_budget_allows(call->conn, size)) {
                call_fail_over_budget(call, "responses not read by the client hold too much memory");
                return -ENOBUFS;
        }
        return 0;
}

/* After a message was queued: charged to the call, and on its way. */
static int call_queued(GrpcCall *call, size_t size) {
        call_charge(call, (ssize_t)size);
        if (!call->headers_sent)
                return grpc_call_send_headers(call);
        call_resume(call);
        return 0;
}

int grpc_call_send(GrpcCall *call, const ProtobufCMessage *msg) {
        size_t size = protobuf_c_message_get_packed_size(msg);
        struct evbuffer_iovec v;
        int r;

        if (size > SIZE_MAX - GRPC_FRAME_HEADER_SIZE)
                return -EMSGSIZE;
        r = call_may_queue(call, GRPC_FRAME_HEADER_SIZE + size);
        if (r < 0)
                return r;
        if (evbuffer_reserve_space(call->out, GRPC_FRAME_HEADER_SIZE + size, &v, 1) != 1 ||
            v.iov_len < GRPC_FRAME_HEADER_SIZE + size)
                return -ENOMEM;
        r = grpc_frame_header_encode(v.iov_base, size);
        if (r < 0)
                return r;
        protobuf_c_message_pack(msg, (uint8_t *)v.iov_base + GRPC_FRAME_HEADER_SIZE);
        v.iov_len = GRPC_FRAME_HEADER_SIZE + size;
        if (evbuffer_commit_space(call->out, &v, 1) < 0)
                return -ENOMEM;
        return call_queued(call, GRPC_FRAME_HEADER_SIZE + size);
}

/* The message is queued by reference: a cached reply or an event sent to every watcher costs
 * no copy until the socket takes it. It is still charged to the call in full, so the budgets
 * bound what a slow reader holds exactly as for a message of its own. */
int grpc_call_send_shared(GrpcCall *call, GrpcShared *m) {
        int r = call_may_queue(call, m->size);

        if (r < 0)
                return r;
        if (evbuffer_add_reference(call->out, m->frame, m->size, on_shared_sent, grpc_shared_ref(m)) < 0) {
                grpc_shared_unref(m);
                return -ENOMEM;
        }
        return call_queued(call, m->size);
}

/* Sends a bare HTTP status (415, 405): the request is not gRPC at all. */
static void call_respond_http(GrpcCall *call, const char *status) {
        nghttp2_nv hdrs[] = {NV(":status", status)};

        call->finished = true;
        call->headers_sent = true;
        call_drop_input(call);
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
        if ((unsigned)status < _GRPC_STATUS_MAX) {
                call->server->stats.calls_finished[status]++;
                if (call->entry.stats)
                        call->entry.stats->finished[status]++;
        }
        free(call->status_message);
        call->status_message = message ? strdup(message) : NULL;
        if (call->deadline)
                event_del(call->deadline);
        /* Whatever of the request is still to come is not needed any more. */
        call_drop_input(call);
        if (status == GRPC_STATUS_RESOURCE_EXHAUSTED)
                /* Backlog or budget: what is queued is the problem; the status goes out first. */
                call_drop_output(call);

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

/* A unary reply was queued (r >= 0): finish; or it was not: say why. */
static int call_reply_queued(GrpcCall *call, int r) {
        if (r < 0) {
                if (r != -ECONNRESET)
                        (void)grpc_call_fail(call, r, "cannot queue the response");
                return r;
        }
        return grpc_call_finish(call);
}

int grpc_call_reply(GrpcCall *call, const ProtobufCMessage *msg) {
        return call_reply_queued(call, grpc_call_send(call, msg));
}

int grpc_call_reply_shared(GrpcCall *call, GrpcShared *m) {
        return call_reply_queued(call, grpc_call_send_shared(call, m));
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

static void on_call_request_timeout(evutil_socket_t fd, short what, void *userdata) {
        GrpcCall *call = userdata;
        char buf[128];

        if (!grpc_call_is_active(call))
                return;
        snprintf(buf, sizeof(buf), "the request did not arrive within %u ms",
                 call->server->limits.request_timeout_ms);
        grpc_server_log_refusal(call->server, "gRPC %s from %s: %s.", call->path ?: "?", call->conn->description,
                                buf);
        call_notify_cancel(call);
        (void)grpc_call_fail_status(call, GRPC_STATUS_DEADLINE_EXCEEDED, buf);
}

/* A request must arrive in time: a unary or server-streaming one up to END_STREAM, each message of
 * a bidi stream from its first byte. The timer runs from the moment that began. */
static void call_update_request_timer(GrpcCall *call) {
        unsigned ms = call->server->limits.request_timeout_ms;
        bool needed = grpc_call_is_active(call) && !call->half_closed &&
                      (call->entry.method->kind != GRPC_METHOD_BIDI_STREAM ||
                       grpc_frame_reader_pending(&call->reader) > 0);

        if (!needed || ms == 0) {
                if (call->request_timer)
                        event_del(call->request_timer);
                return;
        }
        if (!call->request_timer) {
                call->request_timer = evtimer_new(call->server->base, on_call_request_timeout, call);
                if (!call->request_timer)
                        return;
        }
        if (!evtimer_pending(call->request_timer, NULL))
                timer_add_ms(call->request_timer, ms);
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

                call->over_budget = false;
                ProtobufCMessage *m =
                        protobuf_c_message_unpack(call->entry.method->request, &call->allocator, size, msg);
                /* The wire bytes are decoded now; a large buffer is given back at once. */
                grpc_frame_reader_trim(&call->reader);
                call_sync_reader(call);
                if (!m) {
                        if (call->over_budget)
                                call_fail_over_budget(call, "the decoded request needs more memory than allowed");
                        else
                                (void)grpc_call_fail_status(call, GRPC_STATUS_INTERNAL,
                                                            "error parsing request proto");
                        return;
                }

                if (call->entry.method->kind == GRPC_METHOD_BIDI_STREAM) {
                        call_invoke(call, m);
                        protobuf_c_message_free_unpacked(m, &call->allocator);
                        if (!grpc_call_is_active(call))
                                return;
                } else
                        call->request = m;
        }
}

static void call_on_end_stream(GrpcCall *call) {
        call->half_closed = true;
        if (call->request_timer)
                event_del(call->request_timer);
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
        call_drop_input(call);
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

        GrpcRole role = grpc_server_role(s, &c->peer);
        if (role < e->method->role) {
                grpc_server_log_refusal(s, "Denied gRPC %s to %s: needs role %s, has %s.", call->path,
                                        c->description, grpc_role_to_string(e->method->role),
                                        grpc_role_to_string(role));
                s->stats.permission_denied++;
                _cleanup_(freep) char *denial =
                        s->denial ? s->denial(&c->peer, call->path, e->method->role, s->authorize_userdata) : NULL;
                snprintf(buf, sizeof(buf), "%.200s requires role %s", call->path,
                         grpc_role_to_string(e->method->role));
                (void)grpc_call_fail_status(call, GRPC_STATUS_PERMISSION_DENIED, denial ?: buf);
                return;
        }

        call->dispatched = true;
        call_update_request_timer(call);
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
        call_drop_input(call);
        call->out_claimed = 0; /* a gone stream's frames are never sent */
        call_drop_output(call);

        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->next = call->prev = NULL;
        c->n_calls--;
        /* What is left (a decoded request) stays with the call, no longer the connection's. */
        grpc_conn_charge(c, -(ssize_t)call->memory);
        call->conn = NULL;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------ */

static void conn_sync_io(GrpcConn *c) {
        size_t now = evbuffer_get_length(bufferevent_get_input(c->bev)) +
                     evbuffer_get_length(bufferevent_get_output(c->bev));

        grpc_conn_charge(c, (ssize_t)now - (ssize_t)c->memory_io);
        c->memory_io = now;
}

/* nghttp2 stops producing frames above the high-water mark: what it made in this send and what the
 * bufferevent has not written yet. */
static bool conn_output_full(GrpcConn *c) {
        if (evbuffer_get_length(c->frames) + evbuffer_get_length(bufferevent_get_output(c->bev)) <
            OUTPUT_HIGH_WATER)
                return false;
        c->send_blocked = true;
        return true;
}

static ssize_t on_session_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                               void *user_data) {
        GrpcConn *c = user_data;

        if (conn_output_full(c))
                return NGHTTP2_ERR_WOULDBLOCK;
        if (evbuffer_add(c->frames, data, length) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return (ssize_t)length;
}

/* A DATA frame of on_data_read()'s length: its header, then the call's bytes moved, not copied (a
 * shared reply stays one reference until the socket has it). No padding is ever asked for. */
static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *source, void *user_data) {
        GrpcConn *c = user_data;
        GrpcCall *call = source->ptr;

        if (conn_output_full(c))
                return NGHTTP2_ERR_WOULDBLOCK;
        call->out_claimed = 0;
        /* call_drop_output() keeps a waiting frame's bytes; only when out of memory it could not. */
        if (evbuffer_get_length(call->out) < length)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (evbuffer_add(c->frames, framehd, H2_FRAME_HEADER_SIZE) < 0 ||
            evbuffer_remove_buffer(call->out, c->frames, length) != (int)length)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        call_charge(call, -(ssize_t)length);
        return 0;
}

static void conn_arm_idle(GrpcConn *c) {
        unsigned ms = c->server->limits.idle_timeout_ms;

        /* Before the preface the handshake timeout runs, and it is never restarted. */
        if (!c->preface_done)
                return;
        if (c->n_calls > 0 || ms == 0) {
                event_del(c->timer);
                return;
        }
        timer_add_ms(c->timer, ms);
}

static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user_data) {
        GrpcConn *c = user_data;
        unsigned ms = c->server->limits.header_timeout_ms;

        /* A header block (HEADERS and its CONTINUATIONs) must arrive within the header timeout:
         * nothing else can happen on the connection meanwhile, and its stream holds a slot. */
        if (hd->type == NGHTTP2_HEADERS) {
                if (ms > 0)
                        timer_add_ms(c->header_timer, ms);
        } else if (hd->type != NGHTTP2_CONTINUATION)
                event_del(c->header_timer);
        return 0;
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
        call->allocator = (ProtobufCAllocator){
                .alloc = on_request_alloc,
                .free = on_request_free,
                .allocator_data = call,
        };
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

/* Header list over the limits: answer RESOURCE_EXHAUSTED and fail the callback, so nghttp2 resets
 * the stream and stops handing us (and checking) the rest of the block. */
static int call_header_overflow(GrpcCall *call) {
        GrpcConn *c = call->conn;
        const GrpcLimits *l = &c->server->limits;
        char buf[160];

        snprintf(buf, sizeof(buf), "request headers over the limit (%zu bytes, %u fields)", l->max_header_list_size,
                 l->max_header_fields);
        (void)grpc_call_fail_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, buf);
        if (++c->n_header_overflows > MAX_HEADER_OVERFLOWS) {
                grpc_server_log_refusal(c->server, "Closing gRPC connection %s: too many oversize header lists.",
                                        c->description);
                (void)nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                            nghttp2_session_get_last_proc_stream_id(c->session),
                                            NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
                c->goaway_sent = true;
                /* Fatal: nghttp2_session_mem_recv() fails and the connection goes. */
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        GrpcConn *c = user_data;
        const GrpcLimits *l = &c->server->limits;

        /* Request trailers carry nothing we use. */
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        GrpcCall *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call)
                return 0;

        /* nghttp2 only advertises SETTINGS_MAX_HEADER_LIST_SIZE; enforcing it is ours. */
        call->header_bytes += namelen + valuelen + 32;
        if (call->header_bytes > l->max_header_list_size || ++call->n_header_fields > l->max_header_fields)
                return call_header_overflow(call);

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

static void conn_arm_keepalive(GrpcConn *c, unsigned ms) {
        if (c->keepalive && ms > 0)
                timer_add_ms(c->keepalive, ms);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        GrpcConn *c = user_data;
        GrpcCall *call;

        switch (frame->hd.type) {
        case NGHTTP2_HEADERS:
                event_del(c->header_timer);
                /* May run after on_stream_close: the stream data is then gone. */
                call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (!call)
                        break;
                if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && grpc_call_is_active(call))
                        call_on_request_headers(call);
                if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                        call_on_end_stream(call);
                break;
        case NGHTTP2_DATA:
                call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
                if (call && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                        call_on_end_stream(call);
                break;
        case NGHTTP2_SETTINGS:
                if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !c->preface_done) {
                        /* The client spoke HTTP/2: the handshake is over, idle rules from now. */
                        c->preface_done = true;
                        event_del(c->timer);
                        conn_arm_idle(c);
                }
                break;
        case NGHTTP2_PING:
                if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && c->ping_outstanding) {
                        c->ping_outstanding = false;
                        conn_arm_keepalive(c, c->server->limits.keepalive_ms);
                }
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
        if (!grpc_conn_budget_allows(c, len)) {
                call_fail_over_budget(call, "request data over the memory budget");
                return 0;
        }
        int r = grpc_frame_reader_feed(&call->reader, data, len);
        call_sync_reader(call);
        if (r < 0) {
                call_fail_frame(call, r);
                return 0;
        }
        /* Growing the buffer may have gone over (it doubles); the stream that grew it pays. */
        if (!grpc_conn_budget_allows(c, 0)) {
                call_fail_over_budget(call, "request data over the memory budget");
                return 0;
        }
        call_take_messages(call);
        if (grpc_call_is_active(call))
                call_update_request_timer(call);
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
        conn_arm_idle(c);
        return 0;
}

/* ---- connection ------------------------------------------------------------------------------- */

static void conn_leave_handshake(GrpcConn *c) {
        if (!c->handshaking)
                return;
        c->handshaking = false;
        if (c->listener)
                c->listener->n_handshaking--;
}

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

        /* Its place on the listener is free at once; its peer slot goes with its memory. */
        conn_leave_handshake(c);
        if (c->listener)
                c->listener->n_conns--;
        c->listener = NULL;

        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        event_del(c->timer);
        event_del(c->header_timer);
        if (c->keepalive)
                event_del(c->keepalive);
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
                nghttp2_session_del(c->session); /* its memory is uncharged through the allocator */
        if (c->bev)
                bufferevent_free(c->bev); /* closes the fd and frees the SSL */
        if (c->frames)
                evbuffer_free(c->frames);
        grpc_conn_charge(c, -(ssize_t)c->memory);
        if (c->listener) {
                /* Never got as far as the server's lists (grpc_conn_new failed). */
                conn_leave_handshake(c);
                c->listener->n_conns--;
        }
        grpc_slot_release(c->server, c->slot);
        if (c->timer)
                event_free(c->timer);
        if (c->header_timer)
                event_free(c->header_timer);
        if (c->keepalive)
                event_free(c->keepalive);
        if (c->flush_event)
                event_free(c->flush_event);
        free(c->subject);
        free(c->common_name);
        strv_free(c->san_dns);
        strv_free(c->san_uri);
        free(c->description);
        free(c);
}

/* Checks whether the connection is done, and pauses reading while output piles up. */
static void conn_update(GrpcConn *c) {
        if (c->dead)
                return;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t pending = evbuffer_get_length(out);

        conn_sync_io(c);
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

/* Hands the frames of one send to the socket. On a plain socket with nothing queued before them
 * they are written at once, which spares the round trip through the loop for write readiness (two
 * epoll_ctl and a wakeup per burst of replies); what the socket does not take, and everything on
 * TLS, goes to the bufferevent. A write error is left for the bufferevent to find and report. */
static void conn_push_frames(GrpcConn *c) {
        struct evbuffer *out = bufferevent_get_output(c->bev);

        if (evbuffer_get_length(c->frames) == 0)
                return;
        if (!c->tls && evbuffer_get_length(out) == 0)
                (void)evbuffer_write(c->frames, bufferevent_getfd(c->bev));
        if (evbuffer_get_length(c->frames) > 0)
                (void)evbuffer_add_buffer(out, c->frames);
}

/* Rounds of output up to the high-water mark that one connection writes before the others' turn. */
#define SEND_ROUNDS_MAX 8

static int conn_send(GrpcConn *c) {
        if (c->dead || !c->session)
                return 0;
        for (unsigned round = 0;; round++) {
                c->send_blocked = false;
                int r = nghttp2_session_send(c->session);
                conn_push_frames(c);
                if (r != 0) {
                        log_debug("gRPC connection %s: cannot send: %s", c->description, nghttp2_strerror(r));
                        grpc_conn_close(c);
                        return -EIO;
                }
                /* Stopped at the high-water mark but the socket took it all: no drain will call
                 * back, so go on: now, or after SEND_ROUNDS_MAX rounds behind the other events
                 * already active (other connections' reads and flushes). */
                if (!c->send_blocked || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
                        break;
                if (round + 1 == SEND_ROUNDS_MAX) {
                        conn_flush(c);
                        break;
                }
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

void grpc_conn_receive(GrpcConn *c, const uint8_t *data, size_t len) {
        if (len == 0 || c->dead || !c->session)
                return;
        ssize_t n = nghttp2_session_mem_recv(c->session, data, len);
        if (n < 0) {
                log_debug("gRPC connection %s: bad HTTP/2: %s", c->description, nghttp2_strerror((int)n));
                /* nghttp2 may have queued a GOAWAY that says why; try to get it out. */
                (void)nghttp2_session_send(c->session);
                conn_push_frames(c);
                grpc_conn_close(c);
        }
}

static void conn_process_input(GrpcConn *c) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len = evbuffer_get_length(in);

        if (len == 0 || c->dead || !c->session)
                return;
        c->last_input_usec = now_usec();
        grpc_conn_receive(c, evbuffer_pullup(in, -1), len);
        if (c->dead)
                return;
        evbuffer_drain(in, len);
        (void)conn_send(c);
}

static void on_conn_read(struct bufferevent *bev, void *userdata) {
        GrpcConn *c = userdata;

        if (c->read_paused || c->awaiting_peer)
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

static void on_conn_keepalive(evutil_socket_t fd, short what, void *userdata) {
        static const uint8_t opaque[8] = "iommud";
        GrpcConn *c = userdata;
        const GrpcLimits *l = &c->server->limits;
        uint64_t now = now_usec(), quiet = now - c->last_input_usec;

        if (c->ping_outstanding) {
                /* Not even a PING ACK in keepalive_timeout: the peer is gone (a half-open TCP
                 * connection never reports an error by itself). */
                c->server->stats.connections_timed_out++;
                grpc_server_log_refusal(c->server, "Closing gRPC connection %s: no answer to a keepalive PING in %u ms.",
                                        c->description, l->keepalive_timeout_ms);
                return grpc_conn_close(c);
        }
        if (quiet < (uint64_t)l->keepalive_ms * 1000) {
                conn_arm_keepalive(c, l->keepalive_ms - (unsigned)(quiet / 1000));
                return;
        }
        if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, opaque) != 0)
                return grpc_conn_close(c);
        c->ping_outstanding = true;
        conn_arm_keepalive(c, l->keepalive_timeout_ms);
        conn_flush(c);
}

static nghttp2_mem conn_mem(GrpcConn *c) {
        return (nghttp2_mem){
                .mem_user_data = c,
                .malloc = on_nghttp2_malloc,
                .free = on_nghttp2_free,
                .calloc = on_nghttp2_calloc,
                .realloc = on_nghttp2_realloc,
        };
}

static int conn_start_session(GrpcConn *c) {
        _cleanup_(nghttp2_session_callbacks_delp) nghttp2_session_callbacks *cbs = NULL;
        _cleanup_(nghttp2_option_delp) nghttp2_option *opt = NULL;
        const GrpcLimits *l = &c->server->limits;
        nghttp2_mem mem = conn_mem(c);

        if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_send_callback(cbs, on_session_send);
        nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
        nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

        /* Same as nghttp2's built-in rapid-reset defaults, stated so the choice is visible. */
        nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
        nghttp2_option_set_max_continuations(opt, 8);

        if (nghttp2_session_server_new3(&c->session, cbs, c, opt, &mem) != 0)
                return -ENOMEM;

        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, l->max_streams},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
                {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)l->max_header_list_size},
        };
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv)) != 0 ||
            nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONNECTION_WINDOW) != 0)
                return -ENOMEM;

        c->last_input_usec = now_usec();
        conn_arm_keepalive(c, l->keepalive_ms);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        return conn_send(c);
}

/* Places the connection with its role: the reserves it may use. False: it may not stay. */
static bool conn_take_standing(GrpcConn *c) {
        const char *why;

        c->tier = grpc_tier_of(&c->peer, grpc_server_role(c->server, &c->peer));
        if (grpc_conn_admissible(c, &why))
                return true;
        c->server->stats.connections_refused++;
        grpc_server_log_refusal(c->server, "Refusing gRPC connection %s: %s.", c->description, why);
        return false;
}

void grpc_conn_restanding(GrpcConn *c) {
        if (!c->dead && !c->handshaking)
                c->tier = grpc_tier_of(&c->peer, grpc_server_role(c->server, &c->peer));
}

void grpc_conn_resolved(GrpcConn *c) {
        GrpcServer *s = c->server;

        if (c->dead || !c->awaiting_peer || (s->resolve && s->resolve(&c->peer, s->resolve_userdata) > 0))
                return;
        c->awaiting_peer = false;
        if (!conn_take_standing(c))
                return grpc_conn_close(c);
        if (conn_start_session(c) < 0)
                grpc_conn_close(c);
}

static void conn_on_tls_connected(GrpcConn *c) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        int r;

        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
                grpc_server_log_refusal(c->server, "Closing TLS connection %s: ALPN h2 not negotiated.",
                                        c->description);
                return grpc_conn_close(c);
        }

        r = grpc_tls_peer_identity(c);
        if (r < 0) {
                grpc_server_log_refusal(c->server, "Closing TLS connection %s: no usable client certificate.",
                                        c->description);
                return grpc_conn_close(c);
        }

        char *d = NULL;
        if (asprintf(&d, "tls %s %s", c->peer.subject, c->description) >= 0) {
                free(c->description);
                c->description = d;
                c->peer.description = d;
        }
        log_debug("gRPC connection %s established.", c->description);

        /* Authenticated: out of the handshake pool, into its certificate's slot. */
        conn_leave_handshake(c);
        _cleanup_(freep) char *key = NULL;
        if (asprintf(&key, "cert:%s", c->peer.subject) < 0 || grpc_slot_acquire(c->server, key, &c->slot) < 0)
                return grpc_conn_close(c);
        /* What the connection held so far is its peer's from now on. */
        c->slot->memory += c->memory;
        if (!conn_take_standing(c))
                return grpc_conn_close(c);

        r = conn_start_session(c);
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
                if (events & BEV_EVENT_TIMEOUT) {
                        c->server->stats.connections_timed_out++;
                        grpc_server_log_refusal(c->server, "Closing gRPC connection %s: it reads nothing we send.",
                                                c->description);
                } else
                        log_debug("gRPC connection %s closed by the peer.", c->description);
                grpc_conn_close(c);
        }
}

static void on_conn_timer(evutil_socket_t fd, short what, void *userdata) {
        GrpcConn *c = userdata;

        if (!c->preface_done) {
                c->server->stats.connections_timed_out++;
                grpc_server_log_refusal(c->server, "Closing gRPC connection %s: handshake not done in %u ms.",
                                        c->description, c->server->limits.handshake_timeout_ms);
                return grpc_conn_close(c);
        }
        if (c->n_calls > 0)
                return;
        log_debug("gRPC connection %s idle, closing.", c->description);
        /* GOAWAY first, so the client retries on a new connection instead of failing a call. */
        grpc_conn_goaway(c);
        if (nghttp2_session_get_last_proc_stream_id(c->session) == 0 && !c->dead)
                /* Never made a call at all: nothing to be graceful about. */
                grpc_conn_close(c);
}

static void on_header_timeout(evutil_socket_t fd, short what, void *userdata) {
        GrpcConn *c = userdata;

        /* A header block blocks the whole connection until its END_HEADERS: no way to be gentle. */
        c->server->stats.connections_timed_out++;
        grpc_server_log_refusal(c->server, "Closing gRPC connection %s: request headers not complete in %u ms.",
                                c->description, c->server->limits.header_timeout_ms);
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

static int format_address(const struct sockaddr *sa, char *host, size_t size, char *ip, size_t ipsize) {
        char a[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (sa && sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                evutil_inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
                port = ntohs(in->sin_port);
                snprintf(host, size, "%s:%u", a, port);
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                evutil_inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
                port = ntohs(in6->sin6_port);
                snprintf(host, size, "[%s]:%u", a, port);
        } else
                snprintf(host, size, "?");
        snprintf(ip, ipsize, "%s", a);
        return 0;
}

/* Who the peer is, and the key of its slot (NULL for TLS: known after the handshake). */
static int describe_peer(GrpcConn *c, GrpcListener *l, int fd, const struct sockaddr *sa, char **ret_key) {
        char host[INET6_ADDRSTRLEN + 16], ip[INET6_ADDRSTRLEN];

        *ret_key = NULL;
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
                             (unsigned)cred.gid, (int)cred.pid) < 0 ||
                    asprintf(ret_key, "uid:%u", (unsigned)cred.uid) < 0)
                        return -ENOMEM;
        } else {
                format_address(sa, host, sizeof(host), ip, sizeof(ip));
                c->peer.kind = l->kind == GRPC_LISTENER_TLS ? GRPC_PEER_TLS : GRPC_PEER_TCP_PLAIN;
                if (asprintf(&c->description, "%s%s", l->kind == GRPC_LISTENER_TLS ? "" : "tcp ", host) < 0)
                        return -ENOMEM;
                if (l->kind != GRPC_LISTENER_TLS && asprintf(ret_key, "addr:%s", ip) < 0)
                        return -ENOMEM;
        }
        c->peer.description = c->description;
        return 0;
}

/* A new unauthenticated TLS connection pushes out the oldest one still in its handshake: sockets
 * that never speak can then delay a real client's handshake, never prevent it. */
static bool listener_evict_handshake(GrpcServer *s, GrpcListener *l) {
        GrpcConn *oldest = NULL;

        for (GrpcConn *c = s->conns; c; c = c->next)
                if (c->listener == l && c->handshaking && (!oldest || c->id < oldest->id))
                        oldest = c;
        if (!oldest)
                return false;
        s->stats.connections_evicted++;
        grpc_server_log_refusal(s, "Dropping TLS connection %s: still no handshake, and a new client is waiting.",
                                oldest->description);
        grpc_conn_close(oldest);
        return true;
}

int grpc_conn_new(GrpcServer *s, GrpcListener *l, int fd, const struct sockaddr *sa, int salen, GrpcConn **ret) {
        _cleanup_(closep) int owned_fd = fd;
        _cleanup_(freep) char *key = NULL;
        const GrpcLimits *lim = &s->limits;
        const char *why;
        GrpcConn *c;
        int r;

        c = calloc(1, sizeof(GrpcConn));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->id = ++s->next_conn_id;
        c->tls = l->kind == GRPC_LISTENER_TLS;

        r = describe_peer(c, l, fd, sa, &key);
        if (r < 0)
                goto fail;

        /* Admission. A TLS peer is nobody until its handshake ends: it may only take a handshake
         * place, and the newest handshake wins over the oldest. */
        if (c->tls) {
                if (l->n_handshaking >= lim->max_handshakes)
                        (void)listener_evict_handshake(s, l);
                c->tier = GRPC_TIER_NONE;
        } else if (s->resolve && s->resolve(&c->peer, s->resolve_userdata) > 0) {
                /* The role needs the user database; decided when the lookup is back. */
                c->awaiting_peer = true;
                c->tier = GRPC_TIER_PRIVILEGED;
        } else
                c->tier = grpc_tier_of(&c->peer, grpc_server_role(s, &c->peer));

        c->listener = l;
        l->n_conns++;
        if (c->tls) {
                c->handshaking = true;
                l->n_handshaking++;
        }
        if (key) {
                r = grpc_slot_acquire(s, key, &c->slot);
                if (r < 0)
                        goto fail;
        }
        if (!grpc_conn_admissible(c, &why) && !(c->tls && listener_evict_handshake(s, l))) {
                grpc_server_log_refusal(s, "Refusing gRPC connection %s: %s.", c->description, why);
                r = -EUSERS;
                goto fail;
        }

        if (l->kind != GRPC_LISTENER_UNIX) {
                /* We write whole frames per flush; Nagle would only hold back the small ones
                 * (trailers, RST_STREAM, WINDOW_UPDATE) behind delayed ACKs. */
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }

        c->timer = evtimer_new(s->base, on_conn_timer, c);
        c->header_timer = evtimer_new(s->base, on_header_timeout, c);
        c->flush_event = event_new(s->base, -1, 0, on_conn_flush, c);
        c->frames = evbuffer_new();
        if (l->kind != GRPC_LISTENER_UNIX && lim->keepalive_ms > 0)
                c->keepalive = evtimer_new(s->base, on_conn_keepalive, c);
        if (!c->timer || !c->header_timer || !c->flush_event || !c->frames ||
            (l->kind != GRPC_LISTENER_UNIX && lim->keepalive_ms > 0 && !c->keepalive)) {
                r = -ENOMEM;
                goto fail;
        }

        if (c->tls) {
                SSL *ssl = SSL_new(l->ssl_ctx);
                if (!ssl) {
                        r = -ENOMEM;
                        goto fail;
                }
                SSL_set_app_data(ssl, c);
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
        bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH_WATER);
        /* libevent writes at most 16 KiB per call by default: a burst of replies then costs a
         * writev (and a wakeup of the peer) for every two or three of them. */
        (void)bufferevent_set_max_single_write(c->bev, OUTPUT_HIGH_WATER);
        if (lim->idle_timeout_ms > 0) {
                /* Output that does not move for that long: the peer reads nothing. */
                struct timeval tv = {.tv_sec = lim->idle_timeout_ms / 1000,
                                     .tv_usec = (lim->idle_timeout_ms % 1000) * 1000};
                bufferevent_set_timeouts(c->bev, NULL, &tv);
        }

        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        if (lim->handshake_timeout_ms > 0)
                timer_add_ms(c->timer, lim->handshake_timeout_ms);

        log_debug("gRPC connection %s accepted (%u open).", c->description, s->n_conns);
        if (ret)
                *ret = c;

        if (c->tls) {
                /* The session starts on BEV_EVENT_CONNECTED, after ALPN and the client certificate. */
                bufferevent_enable(c->bev, EV_READ | EV_WRITE);
                return 0;
        }
        if (c->awaiting_peer)
                /* Input waits in the socket until grpc_conn_resolved(). */
                return 0;
        r = conn_start_session(c);
        if (r < 0)
                grpc_conn_close(c);
        return 0;

fail:
        grpc_conn_free(c);
        return r;
}
