/* libFuzzer target: every request message through its method's handler, as a client sends it (HTTP/2
 * through nghttp2 and the gRPC transport), on the inventory of a fixture host captured from a real
 * kernel. Mutating calls get as far as the daemon lets them on a host whose state directory cannot
 * be written: checked, planned, and refused as read-only, so that no input changes the fixture.
 *
 * Input layout: byte 0 picks the method (the server's table, Health and Reflection included), byte
 * 1 the caller's role, the rest is the serialized request message. */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz-grpc-harness.h"
#include "fuzz-util.h"
#include "grpc-internal.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "svc-manager.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FuzzGrpc *fuzz;

static GrpcRole role_of(const GrpcPeer *peer, void *userdata) {
        return fuzz->role;
}

static void setup(void) {
        const char *root = getenv("FUZZ_HOST_ROOT") ?: FUZZ_SOURCE_ROOT "/tests/fixtures/captured/hypervisor-6.12";
        ManagerOptions options = {
                .sysfs_root = root,
                .proc_root = root,
                .dev_root = root,
                .max_subscribers = 64,
        };
        /* Nothing can be created below /proc: with no journal every operation is refused as read-only. */
        OperationsOptions ops_options = {
                .policy_dir = "/proc/iommud-fuzz/policy.d",
                .journal_dir = "/proc/iommud-fuzz/journal",
                .state_dir = fuzz_scratch_dir(),
                .timeout_sec = 5,
                .kernel_write_timeout_sec = 1,
                .max_queued = 4,
        };
        Manager *manager;
        Operations *operations;
        SvcManager *svc;

        fuzz = fuzz_grpc_new();
        if (manager_new(fuzz->base, &options, &manager) < 0 ||
            operations_new(fuzz->base, manager, &ops_options, &operations) < 0 ||
            svc_manager_new(fuzz->server, manager, operations, role_of, NULL, &svc) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(freep) uint8_t *wire = NULL;
        size_t wire_size;

        if (!fuzz)
                setup();
        if (size < 2)
                return 0;

        const GrpcMethodEntry *e = &fuzz->server->methods[data[0] % fuzz->server->n_methods];
        fuzz->role = (GrpcRole)(data[1] % _GRPC_ROLE_MAX);
        if (fuzz_h2_request(e->method->path, data + 2, size - 2, &wire, &wire_size) < 0)
                abort();
        fuzz_grpc_connection(fuzz, wire, wire_size, 0);
        return 0;
}
