/* errno -> gRPC status in one table, so every transport error reads the same to clients. */
#include <errno.h>
#include <stdint.h>

#include "grpc-status.h"
#include "macro.h"

static const struct {
        int error;
        GrpcStatus status;
} errno_table[] = {
        {ENOENT, GRPC_STATUS_NOT_FOUND},
        {ENODEV, GRPC_STATUS_NOT_FOUND},
        {ENXIO, GRPC_STATUS_NOT_FOUND},
        {EEXIST, GRPC_STATUS_ALREADY_EXISTS},
        {EPERM, GRPC_STATUS_PERMISSION_DENIED},
        {EACCES, GRPC_STATUS_PERMISSION_DENIED},
        {EINVAL, GRPC_STATUS_INVALID_ARGUMENT},
        {EDOM, GRPC_STATUS_INVALID_ARGUMENT},
        {ERANGE, GRPC_STATUS_OUT_OF_RANGE},
        /* In use / wrong state: retrying is pointless until someone changes the host. */
        {EBUSY, GRPC_STATUS_FAILED_PRECONDITION},
        {EOPNOTSUPP, GRPC_STATUS_FAILED_PRECONDITION},
        {ENOTEMPTY, GRPC_STATUS_FAILED_PRECONDITION},
        {ENOTCONN, GRPC_STATUS_FAILED_PRECONDITION},
        /* iommud cannot record changes (its state directory is read-only): reads only. */
        {EROFS, GRPC_STATUS_FAILED_PRECONDITION},
        /* A concurrent operation got in the way: retry the whole sequence. */
        {EDEADLK, GRPC_STATUS_ABORTED},
        {EALREADY, GRPC_STATUS_ABORTED},
        {ESTALE, GRPC_STATUS_ABORTED},
        {ETIMEDOUT, GRPC_STATUS_DEADLINE_EXCEEDED},
        {ETIME, GRPC_STATUS_DEADLINE_EXCEEDED},
        {ECANCELED, GRPC_STATUS_CANCELLED},
        {ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {ENOBUFS, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {EMSGSIZE, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {EUSERS, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {EMFILE, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {ENOSPC, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {ENOSYS, GRPC_STATUS_UNIMPLEMENTED},
        {EPROTONOSUPPORT, GRPC_STATUS_UNIMPLEMENTED},
        /* Transient: this very call may succeed if retried. */
        {EAGAIN, GRPC_STATUS_UNAVAILABLE},
        {ESHUTDOWN, GRPC_STATUS_UNAVAILABLE},
        {ECONNREFUSED, GRPC_STATUS_UNAVAILABLE},
        {ECONNRESET, GRPC_STATUS_UNAVAILABLE},
        {EHOSTDOWN, GRPC_STATUS_UNAVAILABLE},
        {EBADMSG, GRPC_STATUS_INTERNAL},
        {EPROTO, GRPC_STATUS_INTERNAL},
        {EIO, GRPC_STATUS_INTERNAL},
        {EUCLEAN, GRPC_STATUS_DATA_LOSS},
        {ENOTRECOVERABLE, GRPC_STATUS_DATA_LOSS},
        {ENOKEY, GRPC_STATUS_UNAUTHENTICATED},
        {EKEYREJECTED, GRPC_STATUS_UNAUTHENTICATED},
};

GrpcStatus grpc_status_from_errno(int error) {
        if (error < 0)
                error = -error;
        if (error == 0)
                return GRPC_STATUS_OK;
        FOREACH_ARRAY (e, errno_table, ELEMENTSOF(errno_table))
                if (e->error == error)
                        return e->status;
        return GRPC_STATUS_UNKNOWN;
}

static const char *const status_names[_GRPC_STATUS_MAX] = {
        [GRPC_STATUS_OK] = "OK",
        [GRPC_STATUS_CANCELLED] = "CANCELLED",
        [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
        [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
        [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [GRPC_STATUS_ABORTED] = "ABORTED",
        [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [GRPC_STATUS_INTERNAL] = "INTERNAL",
        [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
        [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
        [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *grpc_status_to_string(GrpcStatus s) {
        if ((unsigned)s >= _GRPC_STATUS_MAX)
                return NULL;
        return status_names[s];
}

size_t grpc_message_encode(const char *in, char *out, size_t outsz) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        if (outsz == 0)
                return 0;
        for (const uint8_t *p = (const uint8_t *)(in ? in : ""); *p; p++) {
                /* The spec's unreserved set: printable ASCII except '%'. */
                if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
                        if (o + 1 >= outsz)
                                break;
                        out[o++] = (char)*p;
                } else {
                        if (o + 3 >= outsz)
                                break;
                        out[o++] = '%';
                        out[o++] = hex[*p >> 4];
                        out[o++] = hex[*p & 15];
                }
        }
        out[o] = '\0';
        return o;
}
