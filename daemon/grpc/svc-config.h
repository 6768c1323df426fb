/* The gRPC transport's settings from core's Config: limits and TLS files. */
#pragma once

#include "grpc-server.h"

typedef struct Config Config;
typedef struct ConfigLimits ConfigLimits;

void svc_grpc_limits(const ConfigLimits *l, GrpcLimits *ret);
/* The strings point into c. */
void svc_grpc_tls(const Config *c, GrpcTlsConfig *ret);
