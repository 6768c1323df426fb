/* grpc.health.v1.Health: Check and Watch over the per-service status table the server keeps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-internal.h"
#include "health.pb-c.h"
#include "log.h"
#include "macro.h"

static GrpcHealthEntry *health_find(GrpcServer *s, const char *service) {
        for (size_t i = 0; i < s->n_health; i++)
                if (strcmp(s->health[i].service, service) == 0)
                        return &s->health[i];
        return NULL;
}

static int health_send(GrpcCall *call, GrpcHealthStatus status) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

        resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
        return grpc_call_send(call, &resp.base);
}

void grpc_health_drop_watcher(GrpcServer *s, GrpcCall *call) {
        for (size_t i = 0; i < s->n_health_watchers; i++)
                if (s->health_watchers[i] == call) {
                        s->health_watchers[i] = s->health_watchers[--s->n_health_watchers];
                        free(grpc_call_get_userdata(call));
                        grpc_call_set_userdata(call, NULL);
                        grpc_call_unref(call);
                        return;
                }
}

int grpc_server_set_health(GrpcServer *s, const char *service, GrpcHealthStatus status) {
        GrpcHealthEntry *e = health_find(s, service);

        if (!e) {
                GrpcHealthEntry *t = reallocarray(s->health, s->n_health + 1, sizeof(GrpcHealthEntry));
                if (!t)
                        return -ENOMEM;
                s->health = t;
                e = &s->health[s->n_health];
                *e = (GrpcHealthEntry){.service = strdup(service), .status = GRPC_HEALTH_UNKNOWN};
                if (!e->service)
                        return -ENOMEM;
                s->n_health++;
        }
        if (e->status == status)
                return 0;
        e->status = status;

        /* Walk backwards: a watcher whose queue is full is dropped (swap-remove) in the loop. */
        for (size_t i = s->n_health_watchers; i > 0; i--) {
                GrpcCall *call = s->health_watchers[i - 1];
                const char *watched = grpc_call_get_userdata(call);
                if (!watched || strcmp(watched, service) != 0)
                        continue;
                int r = health_send(call, status);
                if (r < 0) {
                        _cleanup_(grpc_call_unrefp) _unused_ GrpcCall *ref = grpc_call_ref(call);
                        grpc_health_drop_watcher(s, call);
                        (void)grpc_call_fail(call, r, "health watcher cannot keep up");
                }
        }
        return 0;
}

static int on_health_check(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Grpc__Health__V1__HealthCheckRequest *req =
                (const Grpc__Health__V1__HealthCheckRequest *)request;
        GrpcHealthEntry *e = health_find(grpc_call_get_server(call), req->service ? req->service : "");

        if (!e)
                return grpc_call_fail_status(call, GRPC_STATUS_NOT_FOUND, "unknown service");

        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)e->status;
        return grpc_call_reply(call, &resp.base);
}

static void on_health_watch_cancel(GrpcCall *call, void *userdata) {
        grpc_health_drop_watcher(grpc_call_get_server(call), call);
}

static int on_health_watch(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Grpc__Health__V1__HealthCheckRequest *req =
                (const Grpc__Health__V1__HealthCheckRequest *)request;
        GrpcServer *s = grpc_call_get_server(call);
        const char *service = req->service ? req->service : "";
        GrpcHealthEntry *e = health_find(s, service);

        /* Unknown services get SERVICE_UNKNOWN and the call stays open: it may appear later. */
        int r = health_send(
                call,
                e ? e->status
                  : (GrpcHealthStatus)
                                GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
        if (r < 0)
                return r;

        GrpcCall **t = reallocarray(s->health_watchers, s->n_health_watchers + 1, sizeof(GrpcCall *));
        if (!t)
                return -ENOMEM;
        s->health_watchers = t;
        char *copy = strdup(service);
        if (!copy)
                return -ENOMEM;
        grpc_call_set_userdata(call, copy);
        s->health_watchers[s->n_health_watchers++] = grpc_call_ref(call);
        grpc_call_set_cancel(call, on_health_watch_cancel, NULL);
        return 0;
}

static const GrpcMethod health_methods[] = {
        {
                .path = "/grpc.health.v1.Health/Check",
                .kind = GRPC_METHOD_UNARY,
                .request = &grpc__health__v1__health_check_request__descriptor,
                .handler = on_health_check,
                .role = GRPC_ROLE_NONE,
        },
        {
                .path = "/grpc.health.v1.Health/Watch",
                .kind = GRPC_METHOD_SERVER_STREAM,
                .request = &grpc__health__v1__health_check_request__descriptor,
                .handler = on_health_watch,
                .role = GRPC_ROLE_NONE,
        },
};

int grpc_health_add_methods(GrpcServer *s) {
        return grpc_server_add_methods(s, health_methods, ELEMENTSOF(health_methods), NULL);
}
