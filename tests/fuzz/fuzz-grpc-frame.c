/* libFuzzer target for the gRPC length-prefixed frame codec and grpc-timeout parsing.
 *
 * Input layout: byte 0 picks the message size limit, byte 1 seeds the DATA chunk sizes, the rest
 * is the request body as it would arrive in DATA frames. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        GrpcFrameReader r;

        if (size < 2)
                return 0;
        /* Small limits reach the oversize path with small inputs. */
        size_t max = (size_t)data[0] * 16;
        unsigned seed = data[1];
        data += 2;
        size -= 2;

        grpc_frame_reader_init(&r, max);
        size_t fed = 0, taken = 0;
        int err = 0;
        while (fed < size) {
                size_t chunk = 1 + (seed = seed * 1103515245u + 12345u) % 64;
                if (chunk > size - fed)
                        chunk = size - fed;
                err = grpc_frame_reader_feed(&r, data + fed, chunk);
                if (err < 0)
                        break;
                fed += chunk;

                const uint8_t *msg;
                size_t len;
                int k;
                while ((k = grpc_frame_reader_next(&r, &msg, &len)) > 0) {
                        assert(len <= max);
                        assert(len == 0 || msg);
                        /* The message must be the exact bytes after its prefix in the input. */
                        assert(len == 0 || memcmp(msg, data + taken + GRPC_FRAME_HEADER_SIZE, len) == 0);
                        taken += GRPC_FRAME_HEADER_SIZE + len;
                }
                if (k < 0) {
                        err = k;
                        break;
                }
                assert(taken + grpc_frame_reader_pending(&r) == fed);
        }
        if (err < 0) {
                assert(err == -EMSGSIZE || err == -EPROTONOSUPPORT || err == -EBADMSG || err == -ENOMEM);
                /* Sticky. */
                assert(grpc_frame_reader_feed(&r, data, 0) == err);
                uint64_t declared;
                if (err == -EMSGSIZE)
                        assert(grpc_frame_reader_declared_size(&r, &declared) && declared > max);
        }
        grpc_frame_reader_done(&r);

        /* The same bytes as a grpc-timeout header value. */
        char *s = strndup((const char *)data, size < 16 ? size : 16);
        uint64_t usec;
        if (s) {
                if (grpc_timeout_parse(s, &usec) == 0)
                        assert(strlen(s) >= 2 && strlen(s) <= 9);
                free(s);
        }

        uint8_t hdr[GRPC_FRAME_HEADER_SIZE];
        assert(grpc_frame_header_encode(hdr, size) == 0);
        assert(hdr[0] == 0);
        return 0;
}
