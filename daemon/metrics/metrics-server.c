/* The metrics endpoint: evhttp serves GET /metrics; every value is read from core when scraped. */
#include "metrics-server.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "fileio.h"
#include "host-use.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "string-util.h"
#include "strv.h"

/* A scrape is one small GET: anything bigger or slower is not Prometheus. */
#define MAX_HEADERS_SIZE (8 * 1024)
#define TIMEOUT_SEC 10
#define MAX_COLLECTORS 8
/* Judging every group's host use reads the host and costs ~20 us a group (0.3 s on 16,640 devices):
 * done at most this often, so that scrapes do not stall the loop. */
#define HOST_USES_MAX_AGE_USEC (60 * UINT64_C(1000000))

struct MetricsServer {
        struct event_base *base;
        Manager *manager;
        Operations *operations;
        struct evhttp *http;
        struct {
                MetricsCollectFunc collect;
                void *userdata;
        } collectors[MAX_COLLECTORS];
        size_t n_collectors;
        unsigned host_uses[_HOST_USE_KIND_MAX];
        uint64_t host_uses_usec; /* when host_uses was judged; 0: never */
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- core's families ------------------------------------------------------------------------------ */

typedef struct GroupCount {
        const char *state, *type;
        bool viable;
        unsigned n;
} GroupCount;

static void collect_groups(MetricsServer *s, MetricsWriter *w) {
        const Inventory *inv = manager_get_inventory(s->manager);
        _cleanup_(freep) GroupCount *counts = NULL;
        size_t n = 0;

        /* Few distinct (state, type, viable) combinations: a linear search is fine. */
        FOREACH_ARRAY(g, inv->groups, inv->n_groups) {
                const char *state = group_state_to_string(operations_group_state(s->operations, g, NULL));
                const char *type = g->type_raw ?: "unknown";
                GroupCount *c = NULL;

                for (size_t i = 0; !c && i < n; i++)
                        if (counts[i].state == state && streq(counts[i].type, type) && counts[i].viable == g->viable)
                                c = &counts[i];
                if (!c) {
                        c = array_append(&counts, &n, sizeof(*c));
                        if (!c)
                                return;
                        *c = (GroupCount){ .state = state, .type = type, .viable = g->viable };
                }
                c->n++;
        }
        metrics_family(w, "iommud_groups", METRIC_GAUGE,
                       "IOMMU groups by iommud's state, the kernel's domain type and VFIO viability.");
        FOREACH_ARRAY(c, counts, n)
                metrics_sample_u64(w, "iommud_groups", c->n, "state", c->state, "type", c->type, "viable",
                                   c->viable ? "true" : "false", NULL);
}

static void collect_inventory(MetricsServer *s, MetricsWriter *w) {
        const Inventory *inv = manager_get_inventory(s->manager);
        const ManagerStats *ms = manager_get_stats(s->manager);

        metrics_family(w, "iommud_build_info", METRIC_GAUGE, "The running iommud's version.");
        metrics_sample(w, "iommud_build_info", 1, "version", PACKAGE_VERSION, NULL);
        metrics_family(w, "iommud_devices", METRIC_GAUGE, "PCI devices on the host.");
        metrics_sample_u64(w, "iommud_devices", inv->n_devices, NULL);
        metrics_family(w, "iommud_iommu_units", METRIC_GAUGE, "IOMMU hardware units.");
        metrics_sample_u64(w, "iommud_iommu_units", inv->n_units, NULL);
        metrics_family(w, "iommud_inventory_errors", METRIC_GAUGE,
                       "Problems met reading the host (files missing, unreadable or garbled).");
        metrics_sample_u64(w, "iommud_inventory_errors", inv->n_errors, NULL);
        collect_groups(s, w);

        metrics_family(w, "iommud_watch_subscribers", METRIC_GAUGE, "Open Watch streams and D-Bus watchers.");
        metrics_sample_u64(w, "iommud_watch_subscribers", manager_n_subscribers(s->manager), NULL);
        metrics_family(w, "iommud_events_total", METRIC_COUNTER, "Changes published to subscribers.");
        metrics_sample_u64(w, "iommud_events_total", manager_get_sequence(s->manager), NULL);
        metrics_family(w, "iommud_uevents_total", METRIC_COUNTER, "udev events handled.");
        metrics_sample_u64(w, "iommud_uevents_total", ms->uevents, NULL);
        metrics_family(w, "iommud_rescan_duration_seconds", METRIC_HISTOGRAM, "Time to re-read the whole host.");
        metrics_histogram(w, "iommud_rescan_duration_seconds", &ms->rescans, NULL);
}

static void collect_operations(MetricsServer *s, MetricsWriter *w) {
        const OperationsStats *st = operations_get_stats(s->operations);
        uint64_t now = now_usec();

        /* Every kind and result from the start, so that rate() and increase() see the first one. */
        metrics_family(w, "iommud_operations_total", METRIC_COUNTER,
                       "Operations asked for since the start, by kind and how they ended.");
        for (int k = 0; k < _OPERATION_KIND_MAX; k++)
                for (int r = 0; r < _OPERATION_RESULT_MAX; r++) {
                        if (r == OPERATION_RESULT_RUNNING || r == OPERATION_RESULT_CRASH_ROLLED_BACK ||
                            r == OPERATION_RESULT_CRASH_KEPT || r == OPERATION_RESULT_INTERRUPTED)
                                continue; /* an end this run never counts */
                        metrics_sample_u64(w, "iommud_operations_total", st->total[k][r], "kind",
                                           operation_kind_to_string(k), "result", operation_result_to_string(r),
                                           NULL);
                }
        metrics_family(w, "iommud_operation_duration_seconds", METRIC_HISTOGRAM,
                       "Operations that changed the host, from the request to the end of the last step.");
        for (int k = 0; k < _OPERATION_KIND_MAX; k++)
                metrics_histogram(w, "iommud_operation_duration_seconds", &st->duration[k], "kind",
                                  operation_kind_to_string(k), NULL);
        metrics_family(w, "iommud_operations_in_flight", METRIC_GAUGE, "Groups with an operation under way.");
        metrics_sample_u64(w, "iommud_operations_in_flight", operations_n_in_flight(s->operations), NULL);
        metrics_family(w, "iommud_operations_queued", METRIC_GAUGE, "Operations waiting for the executor.");
        metrics_sample_u64(w, "iommud_operations_queued", operations_n_queued(s->operations), NULL);

        /* Judged as an operation would judge them, at most once a minute. */
        if (s->host_uses_usec == 0 || now - s->host_uses_usec > HOST_USES_MAX_AGE_USEC) {
                if (operations_count_host_uses(s->operations, s->host_uses) >= 0)
                        s->host_uses_usec = now;
        }
        if (s->host_uses_usec > 0) {
                metrics_family(w, "iommud_host_uses", METRIC_GAUGE,
                               "IOMMU groups the host uses, by kind of use (unknown: could not tell); judged at "
                               "most once a minute.");
                for (int k = 0; k < _HOST_USE_KIND_MAX; k++)
                        metrics_sample_u64(w, "iommud_host_uses", s->host_uses[k], "kind",
                                           host_use_kind_to_string(k), NULL);
        }
}

/* The usual process_* families of Prometheus client libraries, from /proc/self. */
static void collect_process(MetricsWriter *w) {
        _cleanup_(strv_freep) char **fds = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        unsigned long long size, resident;
        struct rusage ru;
        size_t n_fds = 0;
        int proc_fd;

        f = fopen("/proc/self/statm", "re");
        if (f && fscanf(f, "%llu %llu", &size, &resident) == 2) {
                metrics_family(w, "process_resident_memory_bytes", METRIC_GAUGE, "Resident memory size in bytes.");
                metrics_sample(w, "process_resident_memory_bytes", (double)resident * (double)sysconf(_SC_PAGESIZE),
                               NULL);
        }
        proc_fd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd >= 0 && read_dir_at(proc_fd, "fd", &fds, &n_fds) >= 0) {
                metrics_family(w, "process_open_fds", METRIC_GAUGE, "Open file descriptors.");
                metrics_sample_u64(w, "process_open_fds", n_fds, NULL);
        }
        if (proc_fd >= 0)
                close(proc_fd);
        if (getrusage(RUSAGE_SELF, &ru) == 0) {
                metrics_family(w, "process_cpu_seconds_total", METRIC_COUNTER, "User and system CPU time in seconds.");
                metrics_sample(w, "process_cpu_seconds_total",
                               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
                               NULL);
        }
}

int metrics_server_collect(MetricsServer *s, struct evbuffer *out) {
        MetricsWriter w = { .out = out };

        collect_inventory(s, &w);
        collect_operations(s, &w);
        for (size_t i = 0; i < s->n_collectors; i++)
                s->collectors[i].collect(&w, s->collectors[i].userdata);
        collect_process(&w);
        return 0;
}

/* ---- HTTP ---------------------------------------------------------------------------------------- */

static void on_http_metrics(struct evhttp_request *req, void *userdata) {
        MetricsServer *s = userdata;
        struct evbuffer *out = evhttp_request_get_output_buffer(req);

        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
                evhttp_send_error(req, HTTP_BADMETHOD, NULL);
                return;
        }
        (void)metrics_server_collect(s, out);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

static void on_http_other(struct evhttp_request *req, void *userdata) {
        struct evbuffer *out = evhttp_request_get_output_buffer(req);

        evbuffer_add_printf(out, "iommud serves Prometheus metrics at /metrics only.\n");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
        evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", NULL);
}

int metrics_server_new(struct event_base *base, Manager *manager, Operations *operations, MetricsServer **ret) {
        MetricsServer *s;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base = base;
        s->manager = manager;
        s->operations = operations;
        s->http = evhttp_new(base);
        if (!s->http) {
                free(s);
                return -ENOMEM;
        }
        evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
        evhttp_set_max_headers_size(s->http, MAX_HEADERS_SIZE);
        evhttp_set_max_body_size(s->http, 1024);
        /* Idle and slow connections are closed: libevent 2.1 has no cap on their number. */
        evhttp_set_timeout(s->http, TIMEOUT_SEC);
        if (evhttp_set_cb(s->http, "/metrics", on_http_metrics, s) < 0) {
                metrics_server_free(s);
                return -ENOMEM;
        }
        evhttp_set_gencb(s->http, on_http_other, s);
        *ret = s;
        return 0;
}

MetricsServer *metrics_server_free(MetricsServer *s) {
        if (!s)
                return NULL;
        if (s->http)
                evhttp_free(s->http);
        free(s);
        return NULL;
}

int metrics_server_listen(MetricsServer *s, const char *address, uint16_t *ret_port) {
        _cleanup_(freep) char *host = NULL;
        struct evhttp_bound_socket *bound;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        const char *colon = strrchr(address, ':');
        unsigned port;

        if (!colon || sscanf(colon + 1, "%u", &port) != 1 || port > 65535)
                return -EINVAL;
        if (address[0] == '[')
                host = strndup(address + 1, (size_t)(colon - address) - 2); /* without the brackets */
        else
                host = strndup(address, (size_t)(colon - address));
        if (!host)
                return -ENOMEM;

        bound = evhttp_bind_socket_with_handle(s->http, host, (uint16_t)port);
        if (!bound)
                return errno > 0 ? -errno : -EADDRNOTAVAIL;
        if (ret_port) {
                if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &len) < 0)
                        return -errno;
                *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                            : ((struct sockaddr_in *)&ss)->sin_port);
        }
        return 0;
}

int metrics_server_add_collector(MetricsServer *s, MetricsCollectFunc collect, void *userdata) {
        if (s->n_collectors >= MAX_COLLECTORS)
                return -E2BIG;
        s->collectors[s->n_collectors].collect = collect;
        s->collectors[s->n_collectors].userdata = userdata;
        s->n_collectors++;
        return 0;
}
