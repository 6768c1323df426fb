/* iommud_grpc_*: requests by method and status, connections by listener, from the server's counters. */
#include "grpc-metrics.h"

#include <string.h>

#include "grpc-status.h"

static void on_method(const char *path, const GrpcMethodStats *stats, void *userdata) {
        MetricsWriter *w = userdata;

        /* Only the statuses a method has ended with: seventeen rows per method would be noise. OK is
         * always there, so every method shows. */
        for (int code = 0; code < _GRPC_STATUS_MAX; code++)
                if (code == GRPC_STATUS_OK || stats->finished[code] > 0)
                        metrics_sample_u64(w, "iommud_grpc_requests_total", stats->finished[code], "method", path,
                                           "code", grpc_status_to_string(code), NULL);
}

void grpc_metrics_collect(MetricsWriter *w, void *userdata) {
        static const struct {
                GrpcPeerKind kind;
                const char *name;
        } listeners[] = {
                { GRPC_PEER_UNIX, "unix" },
                { GRPC_PEER_TLS, "tls" },
                { GRPC_PEER_TCP_PLAIN, "tcp-insecure" },
        };
        const GrpcServer *s = userdata;
        const GrpcStats *st = grpc_server_get_stats(s);

        metrics_family(w, "iommud_grpc_requests_total", METRIC_COUNTER,
                       "gRPC calls finished, by method and grpc-status.");
        grpc_server_foreach_method(s, on_method, w);
        metrics_family(w, "iommud_grpc_calls_cancelled_total", METRIC_COUNTER,
                       "gRPC calls whose stream went away before a status was sent.");
        metrics_sample_u64(w, "iommud_grpc_calls_cancelled_total", st->calls_cancelled, NULL);
        metrics_family(w, "iommud_grpc_connections", METRIC_GAUGE, "Open gRPC connections by kind of listener.");
        for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++)
                metrics_sample_u64(w, "iommud_grpc_connections", grpc_server_n_connections_of(s, listeners[i].kind),
                                   "listener", listeners[i].name, NULL);
        metrics_family(w, "iommud_grpc_connections_accepted_total", METRIC_COUNTER, "gRPC connections accepted.");
        metrics_sample_u64(w, "iommud_grpc_connections_accepted_total", st->connections_accepted, NULL);
        metrics_family(w, "iommud_grpc_connections_refused_total", METRIC_COUNTER,
                       "gRPC connections closed at accept: over a limit, or shutting down.");
        metrics_sample_u64(w, "iommud_grpc_connections_refused_total", st->connections_refused, NULL);
}
