/* json-c helpers shared by every layer that writes or reads JSON. */
#pragma once

#include <json-c/json.h>

/* A JSON string, or JSON null for NULL. */
json_object *json_string_or_null(const char *s);

/* The string member key of o, NULL when it is missing or not a string. */
const char *json_get_string(json_object *o, const char *key);
