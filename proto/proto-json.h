/* iommud.v1 messages -> JSON: the one mapping. `iommud --dump` builds the protobuf messages and prints
 * them through it, and so does `iommuctl --json`; a group's status fields (state, owner, users,
 * host_uses, findings, type_change.verdicts) appear only when the message carries them (a daemon's
 * answer), and "empty"/"empty_reason" only for a group the kernel shows without members. */
#pragma once

#include <json-c/json.h>

#include "iommud.pb-c.h"

/* Each returns a new object shaped like the corresponding part of the dump, or NULL on OOM. */
json_object *proto_device_to_json(const Iommud__V1__Device *d);
json_object *proto_group_to_json(const Iommud__V1__Group *g);
json_object *proto_unit_to_json(const Iommud__V1__Unit *u);
/* [{"file": ..., "message": ...}] */
json_object *proto_errors_to_json(Iommud__V1__ItemError *const *errors, size_t n);
json_object *proto_host_info_to_json(const Iommud__V1__HostInfo *h);
/* {"host": ..., "units": [...], "group_count": N, "device_count": N, "error_count": N} */
json_object *proto_host_response_to_json(const Iommud__V1__GetHostResponse *r);
/* {"sequence": N, "event": "<kind>", ...the event's fields, each item in its dump shape} */
json_object *proto_watch_event_to_json(const Iommud__V1__WatchEvent *e);

/* "driver_changed", "group_added", ...; "unknown" for an event kind newer than this client. */
const char *proto_watch_event_kind(const Iommud__V1__WatchEvent *e);
/* "host", "vfio_ready", ...; "unspecified" for 0 or an unknown value. */
const char *proto_group_state_to_string(Iommud__V1__GroupState s);
