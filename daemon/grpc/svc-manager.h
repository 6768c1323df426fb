/* The iommud.v1.IommuManager gRPC service on top of core's Manager. */
#pragma once

#include "grpc-server.h"

typedef struct Manager Manager;
typedef struct Operations Operations;

typedef struct SvcManager SvcManager;

/* Adds the service's methods to the server; manager and operations must outlive the returned object,
 * which must outlive the server's calls (free it after the server). authorize tells a peer's role,
 * for the force flag that only admins may set. */
int svc_manager_new(GrpcServer *server, Manager *manager, Operations *operations, GrpcAuthorizeFunc authorize,
                    void *authorize_userdata, SvcManager **ret);
SvcManager *svc_manager_free(SvcManager *svc);
/* Ends every open Watch stream with UNAVAILABLE: the first step of a graceful shutdown. */
void svc_manager_end_watches(SvcManager *svc);
/* After the settings changed: ends the Watch streams whose peers no longer have the reader role. */
void svc_manager_recheck_watches(SvcManager *svc, GrpcAuthorizeFunc authorize, void *userdata);
