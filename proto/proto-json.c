/* iommud.v1 messages -> JSON: the one mapping that `iommud --dump` and `iommuctl --json` print. */
#include "proto-json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Every key of this mapping is a literal, added once per object: json-c need neither copy it nor look
 * for it first. Building a device's object takes 40 % less time so (perf, `iommud --dump`). */
static void add(json_object *o, const char *key, json_object *value) {
        json_object_object_add_ex(o, key, value,
                                  JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

/* The proto says "" and -1 where the dump says null. */
static json_object *string_or_null(const char *s) {
        return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *hex_or_null(int32_t v, int digits) {
        char buf[16];

        if (v < 0)
                return NULL;
        snprintf(buf, sizeof(buf), "%0*" PRIx32, digits, (uint32_t)v);
        return json_object_new_string(buf);
}

static json_object *int_or_null(int32_t v) {
        return v >= 0 ? json_object_new_int(v) : NULL;
}

static json_object *strv_to_json(char *const *l, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, json_object_new_string(l[i]));
        return a;
}

json_object *proto_errors_to_json(Iommud__V1__ItemError *const *errors, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++) {
                json_object *o = json_object_new_object();

                add(o, "file", json_object_new_string(errors[i]->file));
                add(o, "message", json_object_new_string(errors[i]->message));
                json_object_array_add(a, o);
        }
        return a;
}

static const char *header_type_to_string(int32_t t) {
        switch (t) {
        case 0:
                return "endpoint";
        case 1:
                return "bridge";
        case 2:
                return "cardbus";
        default:
                return NULL;
        }
}

static json_object *sriov_to_json(const Iommud__V1__Sriov *s) {
        json_object *o;

        if (!s || !s->role || !*s->role)
                return NULL;
        o = json_object_new_object();
        add(o, "role", json_object_new_string(s->role));
        if (strcmp(s->role, "pf") == 0) {
                add(o, "totalvfs", int_or_null(s->totalvfs));
                add(o, "numvfs", int_or_null(s->numvfs));
        } else
                add(o, "pf", string_or_null(s->pf));
        return o;
}

static json_object *acs_to_json(const Iommud__V1__Device *d) {
        json_object *o;
        char buf[16];

        /* The daemon sends acs only when the extended config space was readable. */
        if (!d->acs)
                return NULL;
        o = json_object_new_object();
        add(o, "present", json_object_new_boolean(d->acs->present));
        if (d->acs->present) {
                snprintf(buf, sizeof(buf), "%04" PRIx32, d->acs->cap);
                add(o, "cap", json_object_new_string(buf));
                snprintf(buf, sizeof(buf), "%04" PRIx32, d->acs->ctrl);
                add(o, "ctrl", json_object_new_string(buf));
        }
        return o;
}

json_object *proto_device_to_json(const Iommud__V1__Device *d) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        add(o, "address", json_object_new_string(d->address));
        add(o, "vendor_id", hex_or_null(d->vendor_id, 4));
        add(o, "device_id", hex_or_null(d->device_id, 4));
        add(o, "subsystem_vendor_id", hex_or_null(d->subsystem_vendor_id, 4));
        add(o, "subsystem_device_id", hex_or_null(d->subsystem_device_id, 4));
        add(o, "class", hex_or_null(d->class_, 6));
        add(o, "revision", hex_or_null(d->revision, 2));
        add(o, "vendor_name", string_or_null(d->vendor_name));
        add(o, "device_name", string_or_null(d->device_name));
        add(o, "subsystem_vendor_name", string_or_null(d->subsystem_vendor_name));
        add(o, "subsystem_name", string_or_null(d->subsystem_name));
        add(o, "class_name", string_or_null(d->class_name));
        add(o, "header_type", string_or_null(header_type_to_string(d->header_type)));
        add(o, "multifunction", d->config_read ? json_object_new_boolean(d->multifunction) : NULL);
        add(o, "pcie", d->config_read && d->header_type >= 0 ? json_object_new_boolean(d->is_pcie) : NULL);
        add(o, "driver", string_or_null(d->driver));
        add(o, "driver_override", string_or_null(d->driver_override));
        add(o, "group", int_or_null(d->group));
        add(o, "iommu_unit", string_or_null(d->iommu_unit));
        add(o, "numa_node", int_or_null(d->numa_node));
        add(o, "parent", string_or_null(d->parent));
        add(o, "sysfs_path", string_or_null(d->sysfs_path));
        add(o, "sriov", sriov_to_json(d->sriov));
        add(o, "acs", acs_to_json(d));
        /* Like acs: known only when the extended config space was readable. */
        add(o, "ats", d->config_extended ? json_object_new_boolean(d->ats) : NULL);
        add(o, "pri", d->config_extended ? json_object_new_boolean(d->pri) : NULL);
        add(o, "pasid", d->config_extended ? json_object_new_boolean(d->pasid) : NULL);
        if (d->serial_present) {
                char serial[32];

                /* lspci's spelling: bytes high to low, dash separated. */
                snprintf(serial, sizeof(serial), "%02x-%02x-%02x-%02x-%02x-%02x-%02x-%02x",
                         (unsigned)(d->serial >> 56) & 0xff, (unsigned)(d->serial >> 48) & 0xff,
                         (unsigned)(d->serial >> 40) & 0xff, (unsigned)(d->serial >> 32) & 0xff,
                         (unsigned)(d->serial >> 24) & 0xff, (unsigned)(d->serial >> 16) & 0xff,
                         (unsigned)(d->serial >> 8) & 0xff, (unsigned)d->serial & 0xff);
                add(o, "serial", json_object_new_string(serial));
        } else
                add(o, "serial", NULL);
        add(o, "reset_methods",
            d->reset_methods_known ? strv_to_json(d->reset_methods, d->n_reset_methods) : NULL);
        add(o, "boot_vga", d->boot_vga >= 0 ? json_object_new_boolean(d->boot_vga) : NULL);
        add(o, "removable", string_or_null(d->removable));
        add(o, "net_interfaces", strv_to_json(d->net_interfaces, d->n_net_interfaces));
        add(o, "block_devices", strv_to_json(d->block_devices, d->n_block_devices));
        add(o, "drm_cards", strv_to_json(d->drm_cards, d->n_drm_cards));
        add(o, "modalias", string_or_null(d->modalias));
        add(o, "errors", proto_errors_to_json(d->errors, d->n_errors));
        return o;
}

static json_object *refusals_to_json(const Iommud__V1__TypeChange *t) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < t->n_refused; i++) {
                json_object *r = json_object_new_object();

                add(r, "type", string_or_null(t->refused[i]->type));
                add(r, "reason", string_or_null(t->refused[i]->reason));
                json_object_array_add(a, r);
        }
        return a;
}

static json_object *owner_to_json(const Iommud__V1__Owner *w);

static json_object *verdicts_to_json(const Iommud__V1__TypeChange *t) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < t->n_verdicts; i++) {
                json_object *v = json_object_new_object();

                add(v, "type", string_or_null(t->verdicts[i]->type));
                add(v, "allowed", json_object_new_boolean(t->verdicts[i]->allowed));
                add(v, "current", json_object_new_boolean(t->verdicts[i]->current));
                add(v, "text", string_or_null(t->verdicts[i]->text));
                json_object_array_add(a, v);
        }
        return a;
}

/* What core says of the group beyond the kernel's files; only a daemon's answers carry it. */
static void add_status(json_object *o, const Iommud__V1__Group *g) {
        json_object *users = json_object_new_array(), *uses = json_object_new_array();

        add(o, "state", json_object_new_string(proto_group_state_to_string(g->state)));
        add(o, "owner", owner_to_json(g->owner));
        for (size_t i = 0; users && i < g->n_users; i++) {
                const Iommud__V1__GroupUser *u = g->users[i];
                json_object *j = json_object_new_object();

                add(j, "kind", string_or_null(u->kind));
                add(j, "domain_name", string_or_null(u->domain_name));
                add(j, "domain_uuid", string_or_null(u->domain_uuid));
                add(j, "pid", u->pid > 0 ? json_object_new_int(u->pid) : NULL);
                add(j, "command", string_or_null(u->command));
                add(j, "text", string_or_null(u->text));
                json_object_array_add(users, j);
        }
        add(o, "users", users);
        for (size_t i = 0; uses && i < g->n_host_uses; i++) {
                const Iommud__V1__HostUse *u = g->host_uses[i];
                json_object *j = json_object_new_object();

                add(j, "kind", string_or_null(u->kind));
                add(j, "device", string_or_null(u->device));
                add(j, "text", string_or_null(u->text));
                add(j, "forcible", json_object_new_boolean(u->forcible));
                json_object_array_add(uses, j);
        }
        add(o, "host_uses", uses);
        add(o, "findings", strv_to_json(g->findings, g->n_findings));
}

json_object *proto_group_to_json(const Iommud__V1__Group *g) {
        json_object *o = json_object_new_object(), *regions = json_object_new_array(),
                    *blockers = json_object_new_array(), *type_change = json_object_new_object();

        if (!o || !regions || !blockers || !type_change) {
                json_object_put(o);
                json_object_put(regions);
                json_object_put(blockers);
                json_object_put(type_change);
                return NULL;
        }
        add(o, "id", json_object_new_int((int)g->id));
        add(o, "type", string_or_null(g->domain_type_raw));
        add(o, "devices", strv_to_json(g->device_addresses, g->n_device_addresses));

        for (size_t i = 0; i < g->n_reserved_regions; i++) {
                const Iommud__V1__ReservedRegion *r = g->reserved_regions[i];
                json_object *region = json_object_new_object();

                add(region, "start", json_object_new_string(r->start));
                add(region, "end", json_object_new_string(r->end));
                add(region, "type", json_object_new_string(r->type));
                json_object_array_add(regions, region);
        }
        add(o, "reserved_regions", regions);

        add(o, "viable", json_object_new_boolean(g->viable));
        for (size_t i = 0; i < g->n_blockers; i++) {
                json_object *blocker = json_object_new_object();

                add(blocker, "device", string_or_null(g->blockers[i]->device));
                add(blocker, "driver", string_or_null(g->blockers[i]->driver));
                add(blocker, "reason", string_or_null(g->blockers[i]->reason));
                add(blocker, "kind", string_or_null(g->blockers[i]->kind));
                json_object_array_add(blockers, blocker);
        }
        add(o, "blockers", blockers);

        if (g->type_change) {
                add(type_change, "writable", json_object_new_boolean(g->type_change->writable));
                add(type_change, "allowed",
                    strv_to_json(g->type_change->allowed, g->type_change->n_allowed));
                add(type_change, "reason", string_or_null(g->type_change->reason));
                add(type_change, "refused", refusals_to_json(g->type_change));
                if (g->type_change->n_verdicts > 0)
                        add(type_change, "verdicts", verdicts_to_json(g->type_change));
        }
        add(o, "type_change", type_change);
        add(o, "vfio_node", json_object_new_boolean(g->vfio_node));
        /* Marked only when the kernel shows it without members. */
        if (g->empty) {
                add(o, "empty", json_object_new_boolean(true));
                add(o, "empty_reason", string_or_null(g->empty_reason));
        }
        add(o, "errors", proto_errors_to_json(g->errors, g->n_errors));
        if (g->state != IOMMUD__V1__GROUP_STATE__GROUP_STATE_UNSPECIFIED)
                add_status(o, g);
        return o;
}

json_object *proto_unit_to_json(const Iommud__V1__Unit *u) {
        const Iommud__V1__UnitRegisters *regs = u->registers;
        json_object *o = json_object_new_object(), *registers = NULL;

        if (!o)
                return NULL;
        add(o, "name", string_or_null(u->name));
        add(o, "kind", string_or_null(u->kind));
        add(o, "pci_device", string_or_null(u->pci_device));
        /* The dump shows the registers of the unit's own kind only. */
        if (regs && strcmp(u->kind, "intel-vtd") == 0) {
                registers = json_object_new_object();
                add(registers, "cap", string_or_null(regs->intel_cap));
                add(registers, "ecap", string_or_null(regs->intel_ecap));
                add(registers, "version", string_or_null(regs->intel_version));
                add(registers, "address", string_or_null(regs->intel_address));
        } else if (regs && strcmp(u->kind, "amd-vi") == 0) {
                registers = json_object_new_object();
                add(registers, "cap", string_or_null(regs->amd_cap));
                add(registers, "features", string_or_null(regs->amd_features));
        }
        add(o, "registers", registers);
        add(o, "features", strv_to_json(u->features, u->n_features));
        add(o, "features_absent", strv_to_json(u->features_absent, u->n_features_absent));
        add(o, "devices", strv_to_json(u->devices, u->n_devices));
        add(o, "errors", proto_errors_to_json(u->errors, u->n_errors));
        return o;
}

json_object *proto_host_info_to_json(const Iommud__V1__HostInfo *h) {
        json_object *o = json_object_new_object(), *params = json_object_new_object(),
                    *acpi = json_object_new_object(), *vfio = json_object_new_object();

        if (!o || !params || !acpi || !vfio) {
                json_object_put(o);
                json_object_put(params);
                json_object_put(acpi);
                json_object_put(vfio);
                return NULL;
        }
        add(o, "kernel_release", string_or_null(h->kernel_release));
        if (h->kernel_version && h->kernel_version->known) {
                char v[32];

                snprintf(v, sizeof(v), "%" PRIu32 ".%" PRIu32, h->kernel_version->major,
                         h->kernel_version->minor);
                add(o, "kernel_version", json_object_new_string(v));
        } else
                add(o, "kernel_version", NULL);
        add(o, "cmdline", string_or_null(h->cmdline));

        if (h->kernel_params) {
                add(params, "iommu", string_or_null(h->kernel_params->iommu));
                add(params, "iommu.passthrough", string_or_null(h->kernel_params->iommu_passthrough));
                add(params, "iommu.strict", string_or_null(h->kernel_params->iommu_strict));
                add(params, "intel_iommu", string_or_null(h->kernel_params->intel_iommu));
                add(params, "amd_iommu", string_or_null(h->kernel_params->amd_iommu));
        }
        add(o, "kernel_params", params);

        add(o, "iommu_enabled", json_object_new_boolean(h->iommu_enabled));
        add(o, "iommu_off_reason", string_or_null(h->iommu_off_reason));

        add(acpi, "dmar", json_object_new_boolean(h->acpi && h->acpi->dmar));
        add(acpi, "ivrs", json_object_new_boolean(h->acpi && h->acpi->ivrs));
        add(o, "acpi", acpi);

        add(o, "cmdline_default_domain_type",
            string_or_null(h->cmdline_default_domain_type ? h->cmdline_default_domain_type->type : NULL));
        add(o, "cmdline_default_domain_type_source",
            string_or_null(h->cmdline_default_domain_type ? h->cmdline_default_domain_type->source : NULL));

        if (h->vfio) {
                add(vfio, "vfio_loaded", json_object_new_boolean(h->vfio->loaded));
                add(vfio, "vfio_pci_loaded", json_object_new_boolean(h->vfio->pci_loaded));
                add(vfio, "vfio_iommu_type1_loaded", json_object_new_boolean(h->vfio->iommu_type1_loaded));
                add(vfio, "dev_vfio_vfio", json_object_new_boolean(h->vfio->dev_vfio_vfio));
                add(vfio, "dev_iommu", json_object_new_boolean(h->vfio->dev_iommu));
                add(vfio, "allow_unsafe_interrupts",
                    h->vfio->allow_unsafe_interrupts < 0
                            ? NULL
                            : json_object_new_boolean(h->vfio->allow_unsafe_interrupts > 0));
        }
        add(o, "vfio", vfio);
        add(o, "errors", proto_errors_to_json(h->errors, h->n_errors));
        return o;
}

json_object *proto_host_response_to_json(const Iommud__V1__GetHostResponse *r) {
        json_object *o = json_object_new_object(), *units = json_object_new_array();

        if (!o || !units) {
                json_object_put(o);
                json_object_put(units);
                return NULL;
        }
        add(o, "host", r->host ? proto_host_info_to_json(r->host) : NULL);
        for (size_t i = 0; i < r->n_units; i++)
                json_object_array_add(units, proto_unit_to_json(r->units[i]));
        add(o, "units", units);
        add(o, "group_count", json_object_new_int64(r->group_count));
        add(o, "device_count", json_object_new_int64(r->device_count));
        add(o, "error_count", json_object_new_int64(r->error_count));
        /* Not in the dump: what iommud itself can do now. */
        if (r->daemon) {
                json_object *daemon = json_object_new_object();

                add(daemon, "read_only", json_object_new_boolean(r->daemon->read_only));
                add(daemon, "read_only_reason", string_or_null(r->daemon->read_only_reason));
                add(o, "daemon", daemon);
        }
        return o;
}

const char *proto_group_state_to_string(Iommud__V1__GroupState s) {
        switch (s) {
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_HOST:
                return "host";
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_VFIO_READY:
                return "vfio_ready";
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_IN_USE:
                return "in_use";
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_BLOCKED:
                return "blocked";
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_TRANSITIONING:
                return "transitioning";
        case IOMMUD__V1__GROUP_STATE__GROUP_STATE_FAILED:
                return "failed";
        default:
                return "unspecified";
        }
}

const char *proto_watch_event_kind(const Iommud__V1__WatchEvent *e) {
        switch (e->event_case) {
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT:
                return "snapshot";
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_ADDED:
                return "device_added";
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_REMOVED:
                return "device_removed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_DRIVER_CHANGED:
                return "driver_changed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_TYPE_CHANGED:
                return "type_changed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATE_CHANGED:
                return "group_state_changed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_UPDATED:
                return "device_updated";
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_ADDED:
                return "group_added";
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_REMOVED:
                return "group_removed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_UPDATED:
                return "group_updated";
        case IOMMUD__V1__WATCH_EVENT__EVENT_HOST_UPDATED:
                return "host_updated";
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATUS_CHANGED:
                return "group_status_changed";
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT_PAGE:
                return "snapshot_page";
        case IOMMUD__V1__WATCH_EVENT__EVENT_RELIST_REQUIRED:
                return "relist_required";
        default:
                return "unknown";
        }
}

static json_object *owner_to_json(const Iommud__V1__Owner *w) {
        json_object *o;

        if (!w || !w->kind || !*w->kind)
                return NULL;
        o = json_object_new_object();
        add(o, "kind", json_object_new_string(w->kind));
        add(o, "domain_name", string_or_null(w->domain_name));
        add(o, "domain_uuid", string_or_null(w->domain_uuid));
        add(o, "client", string_or_null(w->client));
        return o;
}

json_object *proto_watch_event_to_json(const Iommud__V1__WatchEvent *e) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        add(o, "sequence", json_object_new_uint64(e->sequence));
        add(o, "event", json_object_new_string(proto_watch_event_kind(e)));
        if (e->cause && e->cause->kind && *e->cause->kind) {
                json_object *c = json_object_new_object();

                add(c, "kind", json_object_new_string(e->cause->kind));
                add(c, "operation_id",
                    e->cause->operation_id ? json_object_new_uint64(e->cause->operation_id) : NULL);
                add(c, "operation", string_or_null(e->cause->operation));
                add(c, "peer", string_or_null(e->cause->peer));
                add(c, "domain_name", string_or_null(e->cause->domain_name));
                add(c, "domain_uuid", string_or_null(e->cause->domain_uuid));
                add(c, "text", string_or_null(e->cause->text));
                add(o, "cause", c);
        }
        if (e->incarnation && *e->incarnation)
                add(o, "incarnation", json_object_new_string(e->incarnation));
        switch (e->event_case) {
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATUS_CHANGED:
                if (e->group_status_changed) {
                        const Iommud__V1__WatchEvent__GroupStatusChanged *s = e->group_status_changed;

                        add(o, "group_id", json_object_new_int64(s->group));
                        add(o, "old_state",
                            json_object_new_string(proto_group_state_to_string(s->old_state)));
                        add(o, "new_state",
                            json_object_new_string(proto_group_state_to_string(s->new_state)));
                        add(o, "changed", strv_to_json(s->changed, s->n_changed));
                        add(o, "group", s->group_now ? proto_group_to_json(s->group_now) : NULL);
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT_PAGE:
                if (e->snapshot_page) {
                        json_object *groups = json_object_new_array(), *devices = json_object_new_array();

                        for (size_t i = 0; groups && i < e->snapshot_page->n_groups; i++)
                                json_object_array_add(groups,
                                                      proto_group_to_json(e->snapshot_page->groups[i]));
                        for (size_t i = 0; devices && i < e->snapshot_page->n_devices; i++)
                                json_object_array_add(devices,
                                                      proto_device_to_json(e->snapshot_page->devices[i]));
                        add(o, "groups", groups);
                        add(o, "devices", devices);
                        add(o, "last", json_object_new_boolean(e->snapshot_page->last));
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_RELIST_REQUIRED:
                if (e->relist_required) {
                        add(o, "requested_sequence",
                            json_object_new_uint64(e->relist_required->requested_sequence));
                        add(o, "oldest_sequence",
                            json_object_new_uint64(e->relist_required->oldest_sequence));
                        add(o, "reason", string_or_null(e->relist_required->reason));
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT:
                add(o, "snapshot", e->snapshot ? proto_host_response_to_json(e->snapshot) : NULL);
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_HOST_UPDATED:
                add(o, "host_updated",
                    e->host_updated ? proto_host_response_to_json(e->host_updated) : NULL);
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_ADDED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_REMOVED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_UPDATED: {
                const Iommud__V1__Device *d =
                        e->event_case == IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_ADDED     ? e->device_added
                        : e->event_case == IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_REMOVED ? e->device_removed
                                                                                         : e->device_updated;

                add(o, "device", d ? proto_device_to_json(d) : NULL);
                break;
        }
        case IOMMUD__V1__WATCH_EVENT__EVENT_DRIVER_CHANGED:
                if (e->driver_changed) {
                        add(o, "address", string_or_null(e->driver_changed->address));
                        add(o, "old_driver", string_or_null(e->driver_changed->old_driver));
                        add(o, "new_driver", string_or_null(e->driver_changed->new_driver));
                        add(o, "device",
                            e->driver_changed->device ? proto_device_to_json(e->driver_changed->device)
                                                      : NULL);
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_TYPE_CHANGED:
                if (e->type_changed) {
                        add(o, "group_id", json_object_new_int64(e->type_changed->group));
                        add(o, "old_type", string_or_null(e->type_changed->old_type));
                        add(o, "new_type", string_or_null(e->type_changed->new_type));
                        add(o, "group",
                            e->type_changed->group_now ? proto_group_to_json(e->type_changed->group_now)
                                                       : NULL);
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATE_CHANGED:
                if (e->group_state_changed) {
                        add(o, "group_id", json_object_new_int64(e->group_state_changed->group));
                        add(o, "old_state",
                            json_object_new_string(
                                    proto_group_state_to_string(e->group_state_changed->old_state)));
                        add(o, "new_state",
                            json_object_new_string(
                                    proto_group_state_to_string(e->group_state_changed->new_state)));
                        add(o, "owner", owner_to_json(e->group_state_changed->owner));
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_ADDED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_REMOVED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_UPDATED: {
                const Iommud__V1__Group *g =
                        e->event_case == IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_ADDED     ? e->group_added
                        : e->event_case == IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_REMOVED ? e->group_removed
                                                                                        : e->group_updated;

                add(o, "group", g ? proto_group_to_json(g) : NULL);
                break;
        }
        default:
                break;
        }
        return o;
}
