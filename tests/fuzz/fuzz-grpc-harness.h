/* Shared by the fuzz targets that drive the gRPC server: a server on its own event loop, and
 * connections on a socketpair whose input is fed with grpc_conn_receive() as if read from the
 * socket, exactly as the HTTP/2 input of a real client. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "grpc-server.h"

struct event_base;

typedef struct FuzzGrpc {
        struct event_base *base;
        GrpcServer *server;
        GrpcRole role; /* what the authorizer answers for the next connection's calls */
} FuzzGrpc;

/* A server with the standard services (Health, Reflection) and a Unix listener in a scratch
 * directory; logging is kept to errors. Aborts on failure: a harness that cannot start is a bug. */
FuzzGrpc *fuzz_grpc_new(void);

/* One connection of a Unix peer: feeds data in chunks (sizes from seed), runs the loop until it is
 * quiet, reading and dropping what the server writes, then closes the connection. */
void fuzz_grpc_connection(FuzzGrpc *f, const uint8_t *data, size_t size, unsigned seed);

/* What a client sends to call path with one request message (already serialized, without the gRPC
 * prefix): the preface, SETTINGS, a HEADERS block and the DATA frames, made by nghttp2's client.
 * Returns a malloc'ed buffer in *ret and its size, or -ENOMEM. */
int fuzz_h2_request(const char *path, const uint8_t *message, size_t size, uint8_t **ret, size_t *ret_size);
