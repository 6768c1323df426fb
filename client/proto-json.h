/* iommud.v1 messages -> the JSON of `iommud --dump`: the client's one mapping, kept equal to the daemon's by
 * a test. */
#pragma once

#include <json-c/json.h>

#include "iommud.pb-c.h"

/* Each returns a new object shaped like the corresponding part of the dump, or NULL on OOM. */
json_object *proto_device_to_json(const Iommud__V1__Device *d);
json_object *proto_group_to_json(const Iommud__V1__Group *g);
json_object *proto_unit_to_json(const Iommud__V1__Unit *u);
json_object *proto_host_info_to_json(const Iommud__V1__HostInfo *h);
/* {"host": ..., "units": [...], "group_count": N, "device_count": N, "error_count": N} */
json_object *proto_host_response_to_json(const Iommud__V1__GetHostResponse *r);
/* {"sequence": N, "event": "<kind>", ...the event's fields, each item in its dump shape} */
json_object *proto_watch_event_to_json(const Iommud__V1__WatchEvent *e);

/* "driver_changed", "group_added", ...; "unknown" for an event kind newer than this client. */
const char *proto_watch_event_kind(const Iommud__V1__WatchEvent *e);
/* "host", "vfio_ready", ...; "unspecified" for 0 or an unknown value. */
const char *proto_group_state_to_string(Iommud__V1__GroupState s);
