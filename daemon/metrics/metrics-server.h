/* The Prometheus metrics endpoint: GET /metrics on an opt-in HTTP listener (libevent's evhttp),
 * answered from core's state at the moment of the scrape, and from collectors other layers add. */
#pragma once

#include <stdint.h>

#include "metrics-text.h"

struct event_base;
typedef struct Manager Manager;
typedef struct Operations Operations;
typedef struct MetricsServer MetricsServer;

/* Writes more families into a scrape (main adds the gRPC server's this way). */
typedef void (*MetricsCollectFunc)(MetricsWriter *w, void *userdata);

/* manager and operations must outlive the server. */
int metrics_server_new(struct event_base *base, Manager *manager, Operations *operations, MetricsServer **ret);
MetricsServer *metrics_server_free(MetricsServer *s);
static inline void metrics_server_freep(MetricsServer **s) {
        metrics_server_free(*s);
}

/* Listens on "1.2.3.4:9109" or "[::1]:9109" (the canonical form of config.c); port 0 picks one,
 * *ret_port (may be NULL) tells which. */
int metrics_server_listen(MetricsServer *s, const char *address, uint16_t *ret_port);

/* Collectors run in the order added, after core's families. */
int metrics_server_add_collector(MetricsServer *s, MetricsCollectFunc collect, void *userdata);

/* The whole exposition, as a scrape gets it (tests, and the handler). */
int metrics_server_collect(MetricsServer *s, struct evbuffer *out);
