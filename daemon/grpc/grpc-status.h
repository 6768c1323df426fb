/* gRPC status codes, the one errno -> status table, and grpc-message percent-encoding. */
#pragma once

#include <stddef.h>

typedef enum GrpcStatus {
        GRPC_STATUS_OK = 0,
        GRPC_STATUS_CANCELLED = 1,
        GRPC_STATUS_UNKNOWN = 2,
        GRPC_STATUS_INVALID_ARGUMENT = 3,
        GRPC_STATUS_DEADLINE_EXCEEDED = 4,
        GRPC_STATUS_NOT_FOUND = 5,
        GRPC_STATUS_ALREADY_EXISTS = 6,
        GRPC_STATUS_PERMISSION_DENIED = 7,
        GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
        GRPC_STATUS_FAILED_PRECONDITION = 9,
        GRPC_STATUS_ABORTED = 10,
        GRPC_STATUS_OUT_OF_RANGE = 11,
        GRPC_STATUS_UNIMPLEMENTED = 12,
        GRPC_STATUS_INTERNAL = 13,
        GRPC_STATUS_UNAVAILABLE = 14,
        GRPC_STATUS_DATA_LOSS = 15,
        GRPC_STATUS_UNAUTHENTICATED = 16,
        _GRPC_STATUS_MAX,
} GrpcStatus;

/* Maps a -errno (or errno) from core to the status a client should see. */
GrpcStatus grpc_status_from_errno(int error);
const char *grpc_status_to_string(GrpcStatus s); /* "NOT_FOUND"; NULL when out of range */

/* Percent-encodes 'in' for grpc-message into out (size outsz, always NUL-terminated, truncated
 * at a character boundary of the encoding). Returns the length written. */
size_t grpc_message_encode(const char *in, char *out, size_t outsz);
