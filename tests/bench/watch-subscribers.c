/* Watch subscribers for bench-watch.py: CONNECTIONS HTTP/2 connections to a Unix socket, STREAMS
 * Watch calls on each, and for every event the time it arrived (CLOCK_MONOTONIC, the clock of
 * Python's time.monotonic()). A compiled client, so that the benchmark measures the daemon's
 * fan-out rather than the decoding speed of a Python client on the same two cores.
 *
 *   watch-subscribers SOCKET CONNECTIONS STREAMS RESULT_FILE
 *
 * Runs until SIGTERM, then writes one line per event received, "SUBSCRIBER SEQUENCE SECONDS", to
 * RESULT_FILE and exits 0. Only the WatchEvent's sequence (field 1) is decoded. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WATCH_PATH "/iommud.v1.IommuManager/Watch"

typedef struct Arrival {
        uint32_t subscriber;
        uint64_t sequence;
        double seconds;
} Arrival;

typedef struct Stream {
        uint32_t subscriber;
        uint8_t *buf; /* gRPC frames not yet complete */
        size_t len, cap;
} Stream;

typedef struct Conn {
        int fd;
        nghttp2_session *session;
} Conn;

static Arrival *arrivals;
static size_t n_arrivals, cap_arrivals;
static volatile sig_atomic_t stop;

static void on_term(int sig) {
        stop = 1;
}

static void *xrealloc(void *p, size_t n) {
        p = realloc(p, n);
        if (!p) {
                fputs("watch-subscribers: out of memory\n", stderr);
                exit(1);
        }
        return p;
}

static double now_seconds(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -1;
}

/* The sequence (field 1, varint) of a WatchEvent; the other fields are skipped by wire type. */
static int event_sequence(const uint8_t *p, size_t n, uint64_t *ret) {
        const uint8_t *end = p + n;
        uint64_t key, v;

        while (p < end) {
                if (read_varint(&p, end, &key) < 0)
                        return -1;
                switch (key & 7) {
                case 0:
                        if (read_varint(&p, end, &v) < 0)
                                return -1;
                        if (key >> 3 == 1) {
                                *ret = v;
                                return 0;
                        }
                        break;
                case 1:
                        p += 8;
                        break;
                case 2:
                        if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                                return -1;
                        p += v;
                        break;
                case 5:
                        p += 4;
                        break;
                default:
                        return -1;
                }
        }
        return -1;
}

static void record(uint32_t subscriber, uint64_t sequence, double t) {
        if (n_arrivals == cap_arrivals) {
                cap_arrivals = cap_arrivals ? cap_arrivals * 2 : 65536;
                arrivals = xrealloc(arrivals, cap_arrivals * sizeof(*arrivals));
        }
        arrivals[n_arrivals++] = (Arrival){subscriber, sequence, t};
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
        Stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
        double t = now_seconds();
        size_t off = 0;

        if (!s)
                return 0;
        if (s->len + len > s->cap) {
                s->cap = (s->len + len) * 2;
                s->buf = xrealloc(s->buf, s->cap);
        }
        memcpy(s->buf + s->len, data, len);
        s->len += len;
        /* Complete gRPC messages: 1 byte compressed flag, 4 bytes big-endian length. */
        while (s->len - off >= 5) {
                uint32_t n = (uint32_t)s->buf[off + 1] << 24 | (uint32_t)s->buf[off + 2] << 16 |
                             (uint32_t)s->buf[off + 3] << 8 | s->buf[off + 4];
                uint64_t sequence;

                if (s->len - off - 5 < n)
                        break;
                if (event_sequence(s->buf + off + 5, n, &sequence) == 0)
                        record(s->subscriber, sequence, t);
                off += 5 + n;
        }
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
        return 0;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data) {
        Conn *c = user_data;
        ssize_t n = send(c->fd, data, length, MSG_NOSIGNAL);

        if (n < 0)
                return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
        return n;
}

/* The request body: an empty WatchRequest, one gRPC frame of length 0. */
static ssize_t read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        memset(buf, 0, 5);
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 5;
}

static int connect_unix(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        const nghttp2_nv headers[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}
                NV(":method", "POST"),           NV(":scheme", "http"), NV(":authority", "localhost"),
                NV(":path", WATCH_PATH),         NV("content-type", "application/grpc"),
                NV("te", "trailers"),
#undef NV
        };
        nghttp2_session_callbacks *callbacks;
        nghttp2_data_provider body = {.read_callback = read_request};
        unsigned n_conns, n_streams;
        struct pollfd *pfds;
        Conn *conns;
        Stream *streams;
        FILE *out;

        if (argc != 5) {
                fputs("usage: watch-subscribers SOCKET CONNECTIONS STREAMS RESULT_FILE\n", stderr);
                return 2;
        }
        n_conns = (unsigned)strtoul(argv[2], NULL, 10);
        n_streams = (unsigned)strtoul(argv[3], NULL, 10);
        signal(SIGTERM, on_term);

        nghttp2_session_callbacks_new(&callbacks);
        nghttp2_session_callbacks_set_send_callback(callbacks, send_cb);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);

        conns = calloc(n_conns, sizeof(*conns));
        pfds = calloc(n_conns, sizeof(*pfds));
        streams = calloc((size_t)n_conns * n_streams, sizeof(*streams));
        if (!conns || !pfds || !streams)
                return 1;
        for (unsigned i = 0; i < n_conns; i++) {
                /* Enough concurrent streams for all of ours, and a window that never stalls them. */
                const nghttp2_settings_entry settings[] = {
                        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, n_streams},
                        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1},
                };
                Conn *c = &conns[i];

                c->fd = connect_unix(argv[1]);
                if (c->fd < 0) {
                        perror("watch-subscribers: connect");
                        return 1;
                }
                nghttp2_session_client_new(&c->session, callbacks, c);
                nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 2);
                nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, (1 << 30));
                for (unsigned j = 0; j < n_streams; j++) {
                        Stream *s = &streams[(size_t)i * n_streams + j];

                        s->subscriber = i * n_streams + j;
                        if (nghttp2_submit_request(c->session, NULL, headers, sizeof(headers) / sizeof(headers[0]),
                                                   &body, s) < 0) {
                                fputs("watch-subscribers: cannot submit a Watch\n", stderr);
                                return 1;
                        }
                }
                pfds[i] = (struct pollfd){.fd = c->fd};
        }

        while (!stop) {
                for (unsigned i = 0; i < n_conns; i++) {
                        pfds[i].events = (nghttp2_session_want_read(conns[i].session) ? POLLIN : 0) |
                                         (nghttp2_session_want_write(conns[i].session) ? POLLOUT : 0);
                        if (nghttp2_session_want_write(conns[i].session))
                                nghttp2_session_send(conns[i].session);
                }
                if (poll(pfds, n_conns, 200) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("watch-subscribers: poll");
                        return 1;
                }
                for (unsigned i = 0; i < n_conns; i++) {
                        uint8_t buf[65536];
                        ssize_t n;

                        if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        while ((n = recv(conns[i].fd, buf, sizeof(buf), 0)) > 0)
                                if (nghttp2_session_mem_recv(conns[i].session, buf, (size_t)n) < 0) {
                                        fputs("watch-subscribers: HTTP/2 error from the server\n", stderr);
                                        return 1;
                                }
                        if (n == 0) {
                                fputs("watch-subscribers: the server closed a connection\n", stderr);
                                return 1;
                        }
                        nghttp2_session_send(conns[i].session);
                }
        }

        out = fopen(argv[4], "w");
        if (!out)
                return 1;
        for (size_t i = 0; i < n_arrivals; i++)
                fprintf(out, "%u %llu %.6f\n", arrivals[i].subscriber, (unsigned long long)arrivals[i].sequence,
                        arrivals[i].seconds);
        return fclose(out) == 0 ? 0 : 1;
}
