/* The iommud.v1.IommuManager gRPC service on top of core's Manager. */
#pragma once

typedef struct GrpcServer GrpcServer;
typedef struct Manager Manager;

/* Adds the service's methods to the server; manager must outlive it. */
int svc_manager_register(GrpcServer *server, Manager *manager);
