/* The gRPC server's counters as metric families: the one place that knows both layers. */
#pragma once

#include "grpc-server.h"
#include "metrics-server.h"

/* A MetricsCollectFunc; userdata is the GrpcServer. */
void grpc_metrics_collect(MetricsWriter *w, void *userdata);
