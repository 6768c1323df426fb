/* How iommuctl names devices, groups and their status for people: one spelling for every view. */
#include "labels.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto-json.h"
#include "string-util.h"

const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

/* The pci.ids name, else "PREFIX" and the ID in 'digits' hex digits, else "-". */
static const char *name_or_hex(const char *name, int32_t id, const char *prefix, int digits, char buf[static 16]) {
        if (name && *name)
                return name;
        if (id < 0)
                return "-";
        snprintf(buf, 16, "%s%0*" PRIx32, prefix, digits, (uint32_t)id);
        return buf;
}

const char *device_class_label(const Iommud__V1__Device *d, char buf[static 16]) {
        return name_or_hex(d->class_name, d->class_, "class ", 6, buf);
}

const char *device_vendor_label(const Iommud__V1__Device *d, char buf[static 16]) {
        return name_or_hex(d->vendor_name, d->vendor_id, "", 4, buf);
}

const char *device_name_label(const Iommud__V1__Device *d, char buf[static 16]) {
        return name_or_hex(d->device_name, d->device_id, "", 4, buf);
}

const char *driver_color(const char *driver) {
        if (!driver || !*driver)
                return COLOR_DIM;
        return strncmp(driver, "vfio", 4) == 0 ? COLOR_GREEN : NULL;
}

const char *group_state_label(const Iommud__V1__Group *g) {
        if (g->state == IOMMUD__V1__GROUP_STATE__GROUP_STATE_UNSPECIFIED)
                return "-";
        return proto_group_state_to_string(g->state);
}

const char *group_state_color(const Iommud__V1__Group *g) {
        switch (g->state) {
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_VFIO_READY:
                return COLOR_GREEN;
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_IN_USE:
                return COLOR_BLUE;
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_BLOCKED:
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_TRANSITIONING:
                return COLOR_YELLOW;
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_FAILED:
                return COLOR_RED;
        default:
                return NULL;
        }
}

char *group_owner_label(const Iommud__V1__Group *g) {
        const Iommud__V1__Owner *o = g->owner;

        if (!o || !o->kind || !*o->kind)
                return strdup("-");
        if (streq(o->kind, "libvirt"))
                return strprintf("libvirt:%s", or_dash(o->domain_name));
        return strprintf("%s:%s", o->kind, or_dash(o->client));
}
