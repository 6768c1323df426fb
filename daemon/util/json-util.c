/* json-c helpers shared by every layer that writes or reads JSON. */
#include "json-util.h"

json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

const char *json_get_string(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}
