/* libFuzzer target: the HTTP/2 input of one connection, through nghttp2_session_mem_recv() on a
 * real connection object and every callback of the gRPC transport (headers, limits, the frame
 * reader, dispatch to Health and Reflection, flow control, resets, GOAWAY).
 *
 * Input layout: byte 0 picks the peer's role, byte 1 seeds the read sizes (0: all at once), the
 * rest is what the client sends, starting with the connection preface. */
#include <stdint.h>

#include "fuzz-grpc-harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FuzzGrpc *fuzz;

        if (!fuzz)
                fuzz = fuzz_grpc_new();
        if (size < 2)
                return 0;
        fuzz->role = (GrpcRole)(data[0] % _GRPC_ROLE_MAX);
        fuzz_grpc_connection(fuzz, data + 2, size - 2, data[1]);
        return 0;
}
