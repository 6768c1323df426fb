/* Shared by the object files: plain-field property getters and change detection. */
#include "bus-util.h"

#include <stdint.h>
#include <string.h>

int bus_property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        int b = *(const bool *)userdata;

        return sd_bus_message_append_basic(reply, 'b', &b);
}

int bus_property_get_int(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _Static_assert(sizeof(int) == sizeof(int32_t), "int fields are sent as D-Bus int32");
        return sd_bus_message_append_basic(reply, 'i', userdata);
}

int bus_property_get_unsigned(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned fields are sent as D-Bus uint32");
        return sd_bus_message_append_basic(reply, 'u', userdata);
}

int bus_property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const char *s = *(char *const *)userdata;

        return sd_bus_message_append_basic(reply, 's', s ?: "");
}

int bus_property_get_strv(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        return sd_bus_message_append_strv(reply, *(char **const *)userdata);
}

int bus_emit_changed(sd_bus *bus, const char *path, const char *interface, BusChangedNames *c) {
        if (c->n == 0)
                return 0;
        c->names[c->n] = NULL;
        return sd_bus_emit_properties_changed_strv(bus, path, interface, (char **)c->names);
}
