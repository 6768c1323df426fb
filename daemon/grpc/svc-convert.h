/* The inventory as iommud.v1 protobuf messages, built in an arena that lives as long as one reply. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "group-status.h"
#include "inventory.h"
#include "iommud.pb-c.h"
#include "manager.h"

/* Every allocation of one reply. Messages point into the inventory's strings without copying, so
 * an arena must be packed (sent) before control returns to the event loop. */
typedef struct ProtoArena {
        void **allocations;
        size_t n, allocated;
        bool oom; /* an allocation failed; the messages built are incomplete */
} ProtoArena;

void *proto_arena_alloc(ProtoArena *a, size_t size);
/* A copy of s that lives as long as the arena: for strings that do not (core's computed values). */
char *proto_arena_strdup(ProtoArena *a, const char *s);
void proto_arena_done(ProtoArena *a);

Iommud__V1__ItemError **item_errors_to_proto(ProtoArena *a, const ItemErrors *e, size_t *ret_n);
Iommud__V1__Device *device_to_proto(ProtoArena *a, const Device *d);
/* with_devices: also the members' full records (GetGroup, ListGroups), not only their addresses. */
Iommud__V1__Group *group_to_proto(ProtoArena *a, const Inventory *inv, const Group *g, bool with_devices);
Iommud__V1__Unit *unit_to_proto(ProtoArena *a, const Unit *u);
Iommud__V1__HostInfo *host_info_to_proto(ProtoArena *a, const HostInfo *h);
Iommud__V1__GroupState group_state_to_proto(GroupStateKind s);
/* Core's status of the group into p (a group_to_proto() result): state, owner, users, host uses,
 * findings, and the type-change verdicts with what iommud can change the type to. Strings copied. */
void group_status_to_proto(ProtoArena *a, Iommud__V1__Group *p, const GroupStatus *s);
Iommud__V1__Cause *cause_to_proto(ProtoArena *a, const EventCause *c);
/* Host settings, units and counts: GetHost and the Watch snapshot. */
Iommud__V1__GetHostResponse *host_response_to_proto(ProtoArena *a, const Inventory *inv);
