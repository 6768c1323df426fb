/* Test-only gRPC server: the real daemon/grpc transport with IommuManager stubs, for the transport tests.
 *
 * Nothing here is daemon code. IommuManager methods answer UNIMPLEMENTED ("not wired yet") except two
 * test doubles: GetHost returns a fixed HostInfo, and Watch sends one fixed snapshot and then stays
 * open (deadline, cancel and shutdown tests need a call that lasts). */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc-server.h"
#include "iommud.pb-c.h"
#include "log.h"
#include "macro.h"

typedef struct Options {
        const char *unix_path;
        const char *tls_address;
        const char *tcp_address;
        GrpcTlsConfig tls;
        GrpcLimits limits;
        GrpcRole unix_role;
        unsigned drain_ms;
} Options;

static GrpcRole role_from_string(const char *s) {
        for (GrpcRole r = 0; r < _GRPC_ROLE_MAX; r++)
                if (strcmp(grpc_role_to_string(r), s) == 0)
                        return r;
        return GRPC_ROLE_NONE;
}

/* Test policy: Unix peers get --unix-role; a TLS client's role is its certificate's CN when that
 * names a role ("reader", "operator", "admin"), else none. */
static GrpcRole test_authorize(const GrpcPeer *peer, void *userdata) {
        const Options *o = userdata;

        switch (peer->kind) {
        case GRPC_PEER_UNIX:
                return o->unix_role;
        case GRPC_PEER_TLS:
                return peer->common_name ? role_from_string(peer->common_name) : GRPC_ROLE_NONE;
        default:
                return GRPC_ROLE_READER;
        }
}

static int on_not_wired(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        return grpc_call_fail_status(call, GRPC_STATUS_UNIMPLEMENTED, "not wired yet");
}

/* Test double: a fixed host, so clients can check a real message round trip. */
static void test_double_host(Iommud__V1__GetHostResponse *resp, Iommud__V1__HostInfo *host,
                             Iommud__V1__KernelVersion *kv, Iommud__V1__Vfio *vfio) {
        kv->known = true;
        kv->major = 6;
        kv->minor = 1;
        vfio->loaded = true;
        vfio->allow_unsafe_interrupts = -1;
        host->kernel_release = (char *)"6.1.0-test-double";
        host->kernel_version = kv;
        host->cmdline = (char *)"BOOT_IMAGE=/vmlinuz intel_iommu=on";
        host->iommu_enabled = true;
        host->vfio = vfio;
        resp->host = host;
        resp->group_count = 3;
        resp->device_count = 7;
}

static int on_test_double_get_host(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        Iommud__V1__GetHostResponse resp = IOMMUD__V1__GET_HOST_RESPONSE__INIT;
        Iommud__V1__HostInfo host = IOMMUD__V1__HOST_INFO__INIT;
        Iommud__V1__KernelVersion kv = IOMMUD__V1__KERNEL_VERSION__INIT;
        Iommud__V1__Vfio vfio = IOMMUD__V1__VFIO__INIT;

        test_double_host(&resp, &host, &kv, &vfio);
        return grpc_call_reply(call, &resp.base);
}

static int on_test_double_watch(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        Iommud__V1__WatchEvent ev = IOMMUD__V1__WATCH_EVENT__INIT;
        Iommud__V1__GetHostResponse resp = IOMMUD__V1__GET_HOST_RESPONSE__INIT;
        Iommud__V1__HostInfo host = IOMMUD__V1__HOST_INFO__INIT;
        Iommud__V1__KernelVersion kv = IOMMUD__V1__KERNEL_VERSION__INIT;
        Iommud__V1__Vfio vfio = IOMMUD__V1__VFIO__INIT;

        test_double_host(&resp, &host, &kv, &vfio);
        ev.sequence = 1;
        ev.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT;
        ev.snapshot = &resp;
        /* Stays open until the client cancels, the deadline passes, or the server shuts down. */
        return grpc_call_send(call, &ev.base);
}

#define M(name, kind_, req, handler_, role_)                                                                \
        {                                                                                                   \
                .path = "/iommud.v1.IommuManager/" name, .kind = kind_,                                     \
                .request = &iommud__v1__##req##__descriptor, .handler = handler_, .role = role_,            \
        }

static const GrpcMethod test_iommud_methods[] = {
        M("GetHost", GRPC_METHOD_UNARY, get_host_request, on_test_double_get_host, GRPC_ROLE_READER),
        M("ListGroups", GRPC_METHOD_UNARY, list_groups_request, on_not_wired, GRPC_ROLE_READER),
        M("GetGroup", GRPC_METHOD_UNARY, get_group_request, on_not_wired, GRPC_ROLE_READER),
        M("GetDevice", GRPC_METHOD_UNARY, get_device_request, on_not_wired, GRPC_ROLE_READER),
        M("ListDevices", GRPC_METHOD_UNARY, list_devices_request, on_not_wired, GRPC_ROLE_READER),
        M("ListUnits", GRPC_METHOD_UNARY, list_units_request, on_not_wired, GRPC_ROLE_READER),
        M("Watch", GRPC_METHOD_SERVER_STREAM, watch_request, on_test_double_watch, GRPC_ROLE_READER),
        M("SetDomainType", GRPC_METHOD_UNARY, set_domain_type_request, on_not_wired, GRPC_ROLE_ADMIN),
        M("PrepareGroup", GRPC_METHOD_UNARY, prepare_group_request, on_not_wired, GRPC_ROLE_OPERATOR),
        M("ReleaseGroup", GRPC_METHOD_UNARY, release_group_request, on_not_wired, GRPC_ROLE_OPERATOR),
        M("BlockGroup", GRPC_METHOD_UNARY, block_group_request, on_not_wired, GRPC_ROLE_ADMIN),
        M("UnblockGroup", GRPC_METHOD_UNARY, unblock_group_request, on_not_wired, GRPC_ROLE_ADMIN),
        M("GetPolicy", GRPC_METHOD_UNARY, get_policy_request, on_not_wired, GRPC_ROLE_READER),
        M("Plan", GRPC_METHOD_UNARY, plan_request, on_not_wired, GRPC_ROLE_READER),
        M("ApplyPolicy", GRPC_METHOD_UNARY, apply_policy_request, on_not_wired, GRPC_ROLE_ADMIN),
};

/* Test-only streaming source: one 16 KiB message per tick, to exercise flow control and the send
 * queue bound. GetGroupRequest.id = how many messages (0 = until the queue overflows). */
typedef struct Flood {
        GrpcCall *call;
        struct event *tick;
        unsigned left;
        bool forever;
} Flood;

static void flood_free(Flood *f) {
        event_free(f->tick);
        grpc_call_set_cancel(f->call, NULL, NULL);
        grpc_call_unref(f->call);
        free(f);
}

static void on_flood_cancel(GrpcCall *call, void *userdata) {
        flood_free(userdata);
}

static void on_flood_tick(evutil_socket_t fd, short what, void *userdata) {
        static char payload[16 * 1024 + 1];
        Flood *f = userdata;
        Iommud__V1__GetHostResponse resp = IOMMUD__V1__GET_HOST_RESPONSE__INIT;
        Iommud__V1__HostInfo host = IOMMUD__V1__HOST_INFO__INIT;

        if (!payload[0])
                memset(payload, 'x', sizeof(payload) - 1);
        host.cmdline = payload;
        resp.host = &host;

        if (!f->forever && f->left == 0) {
                (void)grpc_call_finish(f->call);
                return flood_free(f);
        }
        int r = grpc_call_send(f->call, &resp.base);
        if (r < 0) {
                (void)grpc_call_fail(f->call, r, "client does not keep up");
                return flood_free(f);
        }
        f->left--;
        struct timeval tv = {0, 1000};
        evtimer_add(f->tick, &tv);
}

static int on_test_flood(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Iommud__V1__GetGroupRequest *req = (const Iommud__V1__GetGroupRequest *)request;
        Flood *f = calloc(1, sizeof(Flood));

        if (!f)
                return -ENOMEM;
        f->call = grpc_call_ref(call);
        f->left = req->id;
        f->forever = req->id == 0;
        f->tick = evtimer_new(userdata, on_flood_tick, f);
        if (!f->tick) {
                grpc_call_unref(f->call);
                free(f);
                return -ENOMEM;
        }
        grpc_call_set_cancel(call, on_flood_cancel, f);
        event_active(f->tick, EV_TIMEOUT, 0);
        return 0;
}

static const GrpcMethod test_transport_methods[] = {
        {
                .path = "/iommud.test.Transport/Flood",
                .kind = GRPC_METHOD_SERVER_STREAM,
                .request = &iommud__v1__get_group_request__descriptor,
                .handler = on_test_flood,
                .role = GRPC_ROLE_NONE,
        },
};

static void on_shutdown_done(GrpcServer *s, void *userdata) {
        log_info("grpc-test-server: drained, exiting.");
        event_base_loopexit(userdata, NULL);
}

typedef struct Context {
        GrpcServer *server;
        struct event_base *base;
        const Options *options;
} Context;

static void on_sighup(evutil_socket_t sig, short what, void *userdata) {
        Context *ctx = userdata;

        int r = grpc_server_reload_tls(ctx->server, &ctx->options->tls);
        if (r < 0)
                log_error_errno(r, "grpc-test-server: TLS reload failed, keeping the old files: %m");
        else
                log_info("grpc-test-server: TLS files reloaded.");
        printf("RELOADED %d\n", r);
        fflush(stdout);
}

static void on_sigterm(evutil_socket_t sig, short what, void *userdata) {
        Context *ctx = userdata;

        log_info("grpc-test-server: shutting down.");
        int r = grpc_server_shutdown(ctx->server, 2000, on_shutdown_done, ctx->base);
        if (r < 0 && r != -EALREADY)
                event_base_loopexit(ctx->base, NULL);
}

int main(int argc, char *argv[]) {
        static const struct option longopts[] = {
                {"unix", required_argument, NULL, 'u'},
                {"tls", required_argument, NULL, 't'},
                {"tcp-insecure", required_argument, NULL, 'p'},
                {"cert", required_argument, NULL, 'c'},
                {"key", required_argument, NULL, 'k'},
                {"ca", required_argument, NULL, 'a'},
                {"unix-role", required_argument, NULL, 'r'},
                {"max-connections", required_argument, NULL, 'C'},
                {"max-streams", required_argument, NULL, 'S'},
                {"max-message", required_argument, NULL, 'M'},
                {"max-header-list", required_argument, NULL, 'H'},
                {"max-connection-buffer", required_argument, NULL, 'B'},
                {"handshake-timeout-ms", required_argument, NULL, 'T'},
                {"idle-timeout-ms", required_argument, NULL, 'I'},
                {"debug", no_argument, NULL, 'd'},
                {},
        };
        Options o = {.unix_role = GRPC_ROLE_ADMIN};
        _cleanup_(grpc_server_freep) GrpcServer *server = NULL;
        struct event_base *base = NULL;
        struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
        int c, r, ret = EXIT_FAILURE;

        grpc_limits_default(&o.limits);
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'u':
                        o.unix_path = optarg;
                        break;
                case 't':
                        o.tls_address = optarg;
                        break;
                case 'p':
                        o.tcp_address = optarg;
                        break;
                case 'c':
                        o.tls.cert_file = optarg;
                        break;
                case 'k':
                        o.tls.key_file = optarg;
                        break;
                case 'a':
                        o.tls.client_ca_file = optarg;
                        break;
                case 'r':
                        o.unix_role = role_from_string(optarg);
                        break;
                case 'C':
                        o.limits.max_connections = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'S':
                        o.limits.max_streams = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'M':
                        o.limits.max_message_size = strtoul(optarg, NULL, 10);
                        break;
                case 'H':
                        o.limits.max_header_list_size = strtoul(optarg, NULL, 10);
                        break;
                case 'B':
                        o.limits.max_connection_memory = strtoul(optarg, NULL, 10);
                        break;
                case 'T':
                        o.limits.handshake_timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'I':
                        o.limits.idle_timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return EXIT_FAILURE;
                }

        signal(SIGPIPE, SIG_IGN);
        base = event_base_new();
        if (!base)
                return EXIT_FAILURE;

        r = grpc_server_new(base, &o.limits, test_authorize, &o, &server);
        if (r < 0) {
                log_error_errno(r, "Cannot create the gRPC server: %m");
                goto finish;
        }
        r = grpc_server_add_standard_services(server);
        if (r >= 0)
                r = grpc_server_add_methods(server, test_iommud_methods, ELEMENTSOF(test_iommud_methods),
                                            NULL);
        if (r >= 0)
                r = grpc_server_add_methods(server, test_transport_methods,
                                            ELEMENTSOF(test_transport_methods), base);
        if (r < 0) {
                log_error_errno(r, "Cannot register methods: %m");
                goto finish;
        }

        if (o.unix_path) {
                r = grpc_server_listen_unix(server, o.unix_path, 0666);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %m", o.unix_path);
                        goto finish;
                }
        }
        uint16_t tls_port = 0, tcp_port = 0;
        if (o.tls_address) {
                r = grpc_server_listen_tls(server, o.tls_address, &o.tls, &tls_port);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen with TLS on %s: %m", o.tls_address);
                        goto finish;
                }
        }
        if (o.tcp_address) {
                r = grpc_server_listen_tcp_insecure(server, o.tcp_address, &tcp_port);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %m", o.tcp_address);
                        goto finish;
                }
        }

        Context ctx = {.server = server, .base = base, .options = &o};
        sigterm = evsignal_new(base, SIGTERM, on_sigterm, &ctx);
        sigint = evsignal_new(base, SIGINT, on_sigterm, &ctx);
        sighup = evsignal_new(base, SIGHUP, on_sighup, &ctx);
        if (!sigterm || !sigint || !sighup || evsignal_add(sigterm, NULL) < 0 ||
            evsignal_add(sigint, NULL) < 0 || evsignal_add(sighup, NULL) < 0)
                goto finish;

        /* The test harness waits for this line. */
        printf("READY tls_port=%u tcp_port=%u\n", (unsigned)tls_port, (unsigned)tcp_port);
        fflush(stdout);

        event_base_dispatch(base);
        ret = EXIT_SUCCESS;

        const GrpcStats *st = grpc_server_get_stats(server);
        printf("STATS accepted=%" PRIu64 " refused=%" PRIu64 " ok=%" PRIu64 " cancelled=%" PRIu64
               " denied=%" PRIu64 "\n",
               st->connections_accepted, st->connections_refused, st->calls_finished[GRPC_STATUS_OK],
               st->calls_cancelled, st->permission_denied);
        fflush(stdout);

finish:
        if (sigterm)
                event_free(sigterm);
        if (sigint)
                event_free(sigint);
        if (sighup)
                event_free(sighup);
        server = grpc_server_free(TAKE_PTR(server));
        event_base_free(base);
        return ret;
}
