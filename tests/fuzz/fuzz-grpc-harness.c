/* See fuzz-grpc-harness.h. */
#include <errno.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz-grpc-harness.h"
#include "grpc-frame.h"
#include "grpc-internal.h"
#include "log.h"

static GrpcRole authorize(const GrpcPeer *peer, void *userdata) {
        const FuzzGrpc *f = userdata;

        return f->role;
}

FuzzGrpc *fuzz_grpc_new(void) {
        FuzzGrpc *f = calloc(1, sizeof(FuzzGrpc));
        char dir[] = "/tmp/iommud-fuzz-XXXXXX", path[sizeof(dir) + 16];
        GrpcLimits limits;

        log_set_max_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        if (!f || !(f->base = event_base_new()) || !mkdtemp(dir))
                abort();
        grpc_limits_default(&limits);
        if (grpc_server_new(f->base, &limits, authorize, f, &f->server) < 0 ||
            grpc_server_add_standard_services(f->server) < 0)
                abort();
        snprintf(path, sizeof(path), "%s/sock", dir);
        if (grpc_server_listen_unix(f->server, path, 0600) < 0)
                abort();
        /* The socket file is not needed: connections come from socketpair(). */
        (void)unlink(path);
        (void)rmdir(dir);
        (void)grpc_server_set_health(f->server, "", GRPC_HEALTH_SERVING);
        return f;
}

static GrpcConn *find_conn(GrpcServer *s, uint64_t id) {
        for (GrpcConn *c = s->conns; c; c = c->next)
                if (c->id == id && !c->dead)
                        return c;
        return NULL;
}

static void drain(int fd) {
        char buf[65536];

        while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
}

static void run_loop(FuzzGrpc *f, int peer_fd) {
        for (unsigned i = 0; i < 16; i++) {
                event_base_loop(f->base, EVLOOP_NONBLOCK);
                drain(peer_fd);
        }
}

void fuzz_grpc_connection(FuzzGrpc *f, const uint8_t *data, size_t size, unsigned seed) {
        GrpcConn *c = NULL;
        uint64_t id;
        int fds[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                abort();
        if (grpc_conn_new(f->server, f->server->listeners, fds[0], NULL, 0, &c) < 0 || !c) {
                close(fds[1]);
                return;
        }
        id = c->id;
        for (size_t fed = 0; fed < size;) {
                size_t chunk = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 4096 : size;

                if (chunk > size - fed)
                        chunk = size - fed;
                c = find_conn(f->server, id);
                if (!c)
                        break;
                grpc_conn_receive(c, data + fed, chunk);
                fed += chunk;
                /* What the handlers do later (deferred events, flushes) happens between reads. */
                run_loop(f, fds[1]);
        }
        c = find_conn(f->server, id);
        if (c)
                grpc_conn_close(c);
        run_loop(f, fds[1]);
        close(fds[1]);
        if (f->server->n_conns != 0)
                abort(); /* a connection outlived its close */
}

/* ---- the client side ------------------------------------------------------------------------ */

typedef struct Out {
        uint8_t *buf;
        size_t size, alloc;
        bool oom;
} Out;

static ssize_t out_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data) {
        Out *o = user_data;

        if (o->size + length > o->alloc) {
                size_t n = (o->size + length) * 2;
                uint8_t *t = realloc(o->buf, n);
                if (!t) {
                        o->oom = true;
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                }
                o->buf = t;
                o->alloc = n;
        }
        memcpy(o->buf + o->size, data, length);
        o->size += length;
        return (ssize_t)length;
}

typedef struct Body {
        const uint8_t *data;
        size_t size, pos;
} Body;

static ssize_t body_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        Body *b = source->ptr;
        size_t n = b->size - b->pos < length ? b->size - b->pos : length;

        memcpy(buf, b->data + b->pos, n);
        b->pos += n;
        if (b->pos == b->size)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
}

#define NV(n, v) \
        { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

int fuzz_h2_request(const char *path, const uint8_t *message, size_t size, uint8_t **ret, size_t *ret_size) {
        nghttp2_session_callbacks *cbs = NULL;
        nghttp2_session *session = NULL;
        Out out = {};
        uint8_t *framed = malloc(GRPC_FRAME_HEADER_SIZE + size);
        Body body = { .data = framed, .size = GRPC_FRAME_HEADER_SIZE + size };
        nghttp2_data_provider provider = { .source.ptr = &body, .read_callback = body_read };
        nghttp2_nv headers[] = {
                NV(":method", "POST"),
                NV(":scheme", "http"),
                NV(":path", path),
                NV(":authority", "localhost"),
                NV("content-type", "application/grpc+proto"),
                NV("te", "trailers"),
        };
        int r = -ENOMEM;

        if (!framed)
                return -ENOMEM;
        (void)grpc_frame_header_encode(framed, size);
        if (size)
                memcpy(framed + GRPC_FRAME_HEADER_SIZE, message, size);
        if (nghttp2_session_callbacks_new(&cbs) != 0)
                goto finish;
        nghttp2_session_callbacks_set_send_callback(cbs, out_send);
        if (nghttp2_session_client_new(&session, cbs, &out) != 0)
                goto finish;
        if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
            nghttp2_submit_request(session, NULL, headers, sizeof(headers) / sizeof(headers[0]), &provider, NULL) < 0)
                goto finish;
        if (nghttp2_session_send(session) != 0 || out.oom)
                goto finish;
        *ret = out.buf;
        *ret_size = out.size;
        out.buf = NULL;
        r = 0;
finish:
        nghttp2_session_del(session);
        nghttp2_session_callbacks_del(cbs);
        free(out.buf);
        free(framed);
        return r;
}
