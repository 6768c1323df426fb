/* Property getters for plain fields, and the comparisons that decide which properties changed. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Getters for SD_BUS_PROPERTY(..., offsetof(Struct, field), ...): userdata points at the field. */
int bus_property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
/* int or int32_t, as "i" */
int bus_property_get_int(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
/* unsigned, as "u" */
int bus_property_get_unsigned(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
/* char *, NULL as "" */
int bus_property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
/* char **, NULL as an empty array */
int bus_property_get_strv(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);

/* Collects the names of changed properties for sd_bus_emit_properties_changed_strv(). */
typedef struct BusChangedNames {
        const char *names[32];
        unsigned n;
} BusChangedNames;

static inline void bus_changed_add_if(BusChangedNames *c, bool changed, const char *name) {
        if (changed && c->n + 1 < sizeof(c->names) / sizeof(c->names[0]))
                c->names[c->n++] = name;
}

/* Emits PropertiesChanged for the collected names; nothing when none changed. */
int bus_emit_changed(sd_bus *bus, const char *path, const char *interface, BusChangedNames *c);
