/* Inventory -> iommud.v1 messages. Strings are borrowed from the inventory, never copied. */
#include "svc-convert.h"

#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "strv.h"

void *proto_arena_alloc(ProtoArena *a, size_t size) {
        void *p;

        if (a->n == a->allocated) {
                size_t allocated = a->allocated ? a->allocated * 2 : 64;
                void **n = realloc(a->allocations, allocated * sizeof(void *));

                if (!n) {
                        a->oom = true;
                        return NULL;
                }
                a->allocations = n;
                a->allocated = allocated;
        }
        p = calloc(1, size ?: 1);
        if (!p) {
                a->oom = true;
                return NULL;
        }
        a->allocations[a->n++] = p;
        return p;
}

char *proto_arena_strdup(ProtoArena *a, const char *s) {
        size_t len = strlen(s);
        char *p = proto_arena_alloc(a, len + 1);

        if (p)
                memcpy(p, s, len + 1);
        return p;
}

void proto_arena_done(ProtoArena *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->allocations[i]);
        free(a->allocations);
        *a = (ProtoArena){};
}

/* Allocates one message and sets it to its INIT value. */
#define ARENA_NEW(a, type, init)                                                                          \
        ({                                                                                                \
                type *_m = proto_arena_alloc(a, sizeof(type));                                            \
                if (_m)                                                                                   \
                        *_m = (type)init;                                                                 \
                _m;                                                                                       \
        })

/* protobuf-c wants char *; it never writes through it. */
static char *str(const char *s) {
        return (char *)(s ?: "");
}

static char **strv(char **l, size_t *ret_n) {
        *ret_n = strv_length(l);
        return *ret_n ? l : NULL;
}

Iommud__V1__ItemError **item_errors_to_proto(ProtoArena *a, const ItemErrors *e, size_t *ret_n) {
        Iommud__V1__ItemError **items;

        *ret_n = 0;
        if (e->n == 0)
                return NULL;
        items = proto_arena_alloc(a, e->n * sizeof(*items));
        if (!items)
                return NULL;
        for (size_t i = 0; i < e->n; i++) {
                Iommud__V1__ItemError *p = ARENA_NEW(a, Iommud__V1__ItemError, IOMMUD__V1__ITEM_ERROR__INIT);

                if (!p)
                        return NULL;
                p->file = str(e->items[i].file);
                p->message = str(e->items[i].message);
                items[(*ret_n)++] = p;
        }
        return items;
}

Iommud__V1__Device *device_to_proto(ProtoArena *a, const Device *d) {
        Iommud__V1__Device *p = ARENA_NEW(a, Iommud__V1__Device, IOMMUD__V1__DEVICE__INIT);

        if (!p)
                return NULL;
        p->address = str(d->address);
        p->vendor_id = d->vendor_id;
        p->device_id = d->device_id;
        p->subsystem_vendor_id = d->subsystem_vendor_id;
        p->subsystem_device_id = d->subsystem_device_id;
        p->class_ = d->class_code;
        p->revision = d->revision;
        p->vendor_name = str(d->vendor_name);
        p->device_name = str(d->device_name);
        p->subsystem_vendor_name = str(d->subsystem_vendor_name);
        p->subsystem_name = str(d->subsystem_name);
        p->class_name = str(d->class_name);
        p->header_type = d->header_type;
        p->multifunction = d->multifunction;
        p->driver = str(d->driver);
        p->driver_override = str(d->driver_override);
        p->group = d->group;
        p->iommu_unit = str(d->iommu_unit);
        p->numa_node = d->numa_node;
        p->parent = str(d->parent);
        p->sysfs_path = str(d->sysfs_path);

        if (d->sriov_role != SRIOV_NONE) {
                p->sriov = ARENA_NEW(a, Iommud__V1__Sriov, IOMMUD__V1__SRIOV__INIT);
                if (p->sriov) {
                        p->sriov->role = str(d->sriov_role == SRIOV_PF ? "pf" : "vf");
                        p->sriov->totalvfs = d->sriov_totalvfs;
                        p->sriov->numvfs = d->sriov_numvfs;
                        p->sriov->pf = str(d->sriov_pf);
                }
        }

        p->config_read = d->config_read;
        p->config_extended = d->config_extended;
        p->is_pcie = d->is_pcie;
        if (d->config_extended) {
                p->acs = ARENA_NEW(a, Iommud__V1__Acs, IOMMUD__V1__ACS__INIT);
                if (p->acs) {
                        p->acs->present = d->acs_present;
                        p->acs->cap = d->acs_cap;
                        p->acs->ctrl = d->acs_ctrl;
                }
        }
        p->ats = d->ats;
        p->pri = d->pri;
        p->pasid = d->pasid;
        p->removable = str(d->removable);
        p->serial_present = d->serial_present;
        p->serial = d->serial;
        p->reset_methods_known = d->reset_methods != NULL;
        p->reset_methods = strv(d->reset_methods, &p->n_reset_methods);
        p->boot_vga = d->boot_vga;
        p->net_interfaces = strv(d->net_interfaces, &p->n_net_interfaces);
        p->block_devices = strv(d->block_devices, &p->n_block_devices);
        p->drm_cards = strv(d->drm_cards, &p->n_drm_cards);
        p->modalias = str(d->modalias);
        p->errors = item_errors_to_proto(a, &d->errors, &p->n_errors);
        return p;
}

Iommud__V1__Group *group_to_proto(ProtoArena *a, const Inventory *inv, const Group *g, bool with_devices) {
        Iommud__V1__Group *p = ARENA_NEW(a, Iommud__V1__Group, IOMMUD__V1__GROUP__INIT);

        if (!p)
                return NULL;
        p->id = g->id;
        p->domain_type = str(domain_type_to_string(g->type));
        p->domain_type_raw = str(g->type_raw);
        p->device_addresses = strv(g->devices, &p->n_device_addresses);

        if (with_devices && g->n_devices > 0) {
                p->devices = proto_arena_alloc(a, g->n_devices * sizeof(*p->devices));
                for (size_t i = 0; p->devices && i < g->n_devices; i++) {
                        const Device *d = inventory_find_device(inv, g->devices[i]);

                        if (d && (p->devices[p->n_devices] = device_to_proto(a, d)))
                                p->n_devices++;
                }
        }

        if (g->n_reserved_regions > 0) {
                p->reserved_regions = proto_arena_alloc(a, g->n_reserved_regions * sizeof(*p->reserved_regions));
                for (size_t i = 0; p->reserved_regions && i < g->n_reserved_regions; i++) {
                        const ReservedRegion *r = &g->reserved_regions[i];
                        Iommud__V1__ReservedRegion *rp =
                                ARENA_NEW(a, Iommud__V1__ReservedRegion, IOMMUD__V1__RESERVED_REGION__INIT);

                        if (!rp)
                                break;
                        rp->start = str(r->start);
                        rp->end = str(r->end);
                        rp->start_addr = r->start_addr;
                        rp->end_addr = r->end_addr;
                        rp->type = str(r->type);
                        p->reserved_regions[p->n_reserved_regions++] = rp;
                }
        }

        p->viable = g->viable;
        if (g->n_blockers > 0) {
                p->blockers = proto_arena_alloc(a, g->n_blockers * sizeof(*p->blockers));
                for (size_t i = 0; p->blockers && i < g->n_blockers; i++) {
                        Iommud__V1__Blocker *bp = ARENA_NEW(a, Iommud__V1__Blocker, IOMMUD__V1__BLOCKER__INIT);

                        if (!bp)
                                break;
                        bp->device = str(g->blockers[i].device);
                        bp->driver = str(g->blockers[i].driver);
                        bp->reason = str(g->blockers[i].reason);
                        bp->kind = str(blocker_kind_to_string(g->blockers[i].kind));
                        p->blockers[p->n_blockers++] = bp;
                }
        }

        p->empty = g->empty;
        p->empty_reason = str(g->empty_reason);
        p->type_change = ARENA_NEW(a, Iommud__V1__TypeChange, IOMMUD__V1__TYPE_CHANGE__INIT);
        if (p->type_change) {
                p->type_change->writable = g->type_change.writable;
                p->type_change->allowed = strv(g->type_change.allowed, &p->type_change->n_allowed);
                p->type_change->reason = str(g->type_change.reason);
                if (g->type_change.n_refused > 0)
                        p->type_change->refused =
                                proto_arena_alloc(a, g->type_change.n_refused * sizeof(*p->type_change->refused));
                for (size_t i = 0; p->type_change->refused && i < g->type_change.n_refused; i++) {
                        Iommud__V1__TypeRefusal *rp =
                                ARENA_NEW(a, Iommud__V1__TypeRefusal, IOMMUD__V1__TYPE_REFUSAL__INIT);

                        if (!rp)
                                break;
                        rp->type = str(g->type_change.refused[i].type);
                        rp->reason = str(g->type_change.refused[i].reason);
                        p->type_change->refused[p->type_change->n_refused++] = rp;
                }
        }
        p->vfio_node = g->vfio_node;
        p->errors = item_errors_to_proto(a, &g->errors, &p->n_errors);
        return p;
}

Iommud__V1__Unit *unit_to_proto(ProtoArena *a, const Unit *u) {
        Iommud__V1__Unit *p = ARENA_NEW(a, Iommud__V1__Unit, IOMMUD__V1__UNIT__INIT);

        if (!p)
                return NULL;
        p->name = str(u->name);
        p->kind = str(unit_kind_to_string(u->kind));
        p->pci_device = str(u->pci_device);
        p->registers = ARENA_NEW(a, Iommud__V1__UnitRegisters, IOMMUD__V1__UNIT_REGISTERS__INIT);
        if (p->registers) {
                p->registers->intel_cap = str(u->intel_cap);
                p->registers->intel_ecap = str(u->intel_ecap);
                p->registers->intel_version = str(u->intel_version);
                p->registers->intel_address = str(u->intel_address);
                p->registers->amd_cap = str(u->amd_cap);
                p->registers->amd_features = str(u->amd_features);
        }
        p->features = strv(u->features, &p->n_features);
        p->features_absent = strv(u->features_absent, &p->n_features_absent);
        p->devices = strv(u->devices, &p->n_devices);
        p->errors = item_errors_to_proto(a, &u->errors, &p->n_errors);
        return p;
}

Iommud__V1__HostInfo *host_info_to_proto(ProtoArena *a, const HostInfo *h) {
        Iommud__V1__HostInfo *p = ARENA_NEW(a, Iommud__V1__HostInfo, IOMMUD__V1__HOST_INFO__INIT);

        if (!p)
                return NULL;
        p->kernel_release = str(h->kernel_release);
        p->kernel_version = ARENA_NEW(a, Iommud__V1__KernelVersion, IOMMUD__V1__KERNEL_VERSION__INIT);
        if (p->kernel_version) {
                p->kernel_version->known = h->kernel_version_known;
                p->kernel_version->major = h->kernel_major;
                p->kernel_version->minor = h->kernel_minor;
        }
        p->cmdline = str(h->cmdline);
        p->kernel_params = ARENA_NEW(a, Iommud__V1__KernelParams, IOMMUD__V1__KERNEL_PARAMS__INIT);
        if (p->kernel_params) {
                p->kernel_params->iommu = str(h->params.iommu);
                p->kernel_params->iommu_passthrough = str(h->params.iommu_passthrough);
                p->kernel_params->iommu_strict = str(h->params.iommu_strict);
                p->kernel_params->intel_iommu = str(h->params.intel_iommu);
                p->kernel_params->amd_iommu = str(h->params.amd_iommu);
        }
        p->iommu_enabled = h->iommu_enabled;
        p->iommu_off_reason = str(h->iommu_off_reason);
        p->acpi = ARENA_NEW(a, Iommud__V1__Acpi, IOMMUD__V1__ACPI__INIT);
        if (p->acpi) {
                p->acpi->dmar = h->acpi_dmar;
                p->acpi->ivrs = h->acpi_ivrs;
        }
        p->cmdline_default_domain_type =
                ARENA_NEW(a, Iommud__V1__CmdlineDefaultDomainType, IOMMUD__V1__CMDLINE_DEFAULT_DOMAIN_TYPE__INIT);
        if (p->cmdline_default_domain_type) {
                p->cmdline_default_domain_type->type = str(domain_type_to_string(h->cmdline_default_type));
                p->cmdline_default_domain_type->source = str(h->cmdline_default_type_source);
        }
        p->vfio = ARENA_NEW(a, Iommud__V1__Vfio, IOMMUD__V1__VFIO__INIT);
        if (p->vfio) {
                p->vfio->loaded = h->vfio_loaded;
                p->vfio->pci_loaded = h->vfio_pci_loaded;
                p->vfio->iommu_type1_loaded = h->vfio_iommu_type1_loaded;
                p->vfio->dev_vfio_vfio = h->dev_vfio_vfio;
                p->vfio->dev_iommu = h->dev_iommu;
                p->vfio->allow_unsafe_interrupts = h->allow_unsafe_interrupts;
        }
        p->errors = item_errors_to_proto(a, &h->errors, &p->n_errors);
        return p;
}

Iommud__V1__GetHostResponse *host_response_to_proto(ProtoArena *a, const Inventory *inv) {
        Iommud__V1__GetHostResponse *p = ARENA_NEW(a, Iommud__V1__GetHostResponse, IOMMUD__V1__GET_HOST_RESPONSE__INIT);

        if (!p)
                return NULL;
        p->host = host_info_to_proto(a, &inv->host);
        if (inv->n_units > 0) {
                p->units = proto_arena_alloc(a, inv->n_units * sizeof(*p->units));
                for (size_t i = 0; p->units && i < inv->n_units; i++)
                        if ((p->units[p->n_units] = unit_to_proto(a, &inv->units[i])))
                                p->n_units++;
        }
        p->group_count = (uint32_t)inv->n_groups;
        p->device_count = (uint32_t)inv->n_devices;
        p->error_count = (uint32_t)inv->n_errors;
        return p;
}

/* ---- core's status -------------------------------------------------------------------------------- */

Iommud__V1__GroupState group_state_to_proto(GroupStateKind s) {
        static const Iommud__V1__GroupState states[] = {
                [GROUP_HOST] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_HOST,
                [GROUP_VFIO_READY] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_VFIO_READY,
                [GROUP_BLOCKED] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_BLOCKED,
                [GROUP_TRANSITIONING] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_TRANSITIONING,
                [GROUP_IN_USE] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_IN_USE,
                [GROUP_FAILED] = IOMMUD__V1__GROUP_STATE__GROUP_STATE_FAILED,
        };

        return (size_t)s < sizeof(states) / sizeof(states[0]) ? states[s]
                                                               : IOMMUD__V1__GROUP_STATE__GROUP_STATE_UNSPECIFIED;
}

static char **arena_strv(ProtoArena *a, char *const *l, size_t *ret_n) {
        size_t n = 0;
        char **p;

        *ret_n = 0;
        while (l && l[n])
                n++;
        if (n == 0)
                return NULL;
        p = proto_arena_alloc(a, n * sizeof(char *));
        for (size_t i = 0; p && i < n; i++)
                if ((p[i] = proto_arena_strdup(a, l[i])))
                        (*ret_n)++;
        return p;
}

void group_status_to_proto(ProtoArena *a, Iommud__V1__Group *p, const GroupStatus *s) {
        p->state = group_state_to_proto(s->state);
        if (s->owner_kind != GROUP_OWNER_NONE || s->owner_client) {
                p->owner = ARENA_NEW(a, Iommud__V1__Owner, IOMMUD__V1__OWNER__INIT);
                if (p->owner) {
                        p->owner->kind = (char *)group_owner_kind_to_string(s->owner_kind);
                        p->owner->client = proto_arena_strdup(a, s->owner_client ?: "");
                        p->owner->domain_name = proto_arena_strdup(a, s->domain_name ?: "");
                        p->owner->domain_uuid = proto_arena_strdup(a, s->domain_uuid ?: "");
                }
        }
        if (s->n_users > 0) {
                p->users = proto_arena_alloc(a, s->n_users * sizeof(*p->users));
                for (size_t i = 0; p->users && i < s->n_users; i++) {
                        const GroupStatusUser *u = &s->users[i];
                        Iommud__V1__GroupUser *up = ARENA_NEW(a, Iommud__V1__GroupUser, IOMMUD__V1__GROUP_USER__INIT);

                        if (!up)
                                break;
                        up->kind = (char *)(u->process ? "process" : "libvirt");
                        up->domain_name = proto_arena_strdup(a, u->domain_name ?: "");
                        up->domain_uuid = proto_arena_strdup(a, u->domain_uuid ?: "");
                        up->pid = u->pid;
                        up->command = proto_arena_strdup(a, u->command ?: "");
                        up->text = proto_arena_strdup(a, u->text ?: "");
                        p->users[p->n_users++] = up;
                }
        }
        if (s->host_uses.n > 0) {
                p->host_uses = proto_arena_alloc(a, s->host_uses.n * sizeof(*p->host_uses));
                for (size_t i = 0; p->host_uses && i < s->host_uses.n; i++) {
                        const HostUse *u = &s->host_uses.items[i];
                        Iommud__V1__HostUse *up = ARENA_NEW(a, Iommud__V1__HostUse, IOMMUD__V1__HOST_USE__INIT);

                        if (!up)
                                break;
                        up->kind = (char *)host_use_kind_to_string(u->kind);
                        up->device = proto_arena_strdup(a, u->device ?: "");
                        up->text = proto_arena_strdup(a, u->text ?: "");
                        up->forcible = u->forcible;
                        p->host_uses[p->n_host_uses++] = up;
                }
        }
        p->findings = arena_strv(a, s->findings, &p->n_findings);
        if (p->type_change && s->verdicts[0].type) {
                /* What iommud can change the type to, not only what the kernel takes as things are. */
                p->type_change->allowed = arena_strv(a, s->type_allowed, &p->type_change->n_allowed);
                p->type_change->verdicts = proto_arena_alloc(a, GROUP_TYPE_VERDICTS * sizeof(*p->type_change->verdicts));
                for (size_t i = 0; p->type_change->verdicts && i < GROUP_TYPE_VERDICTS; i++) {
                        Iommud__V1__TypeVerdict *v = ARENA_NEW(a, Iommud__V1__TypeVerdict, IOMMUD__V1__TYPE_VERDICT__INIT);

                        if (!v)
                                break;
                        v->type = (char *)s->verdicts[i].type;
                        v->allowed = s->verdicts[i].allowed;
                        v->current = s->verdicts[i].current;
                        v->text = proto_arena_strdup(a, s->verdicts[i].text ?: "");
                        p->type_change->verdicts[p->type_change->n_verdicts++] = v;
                }
        }
}

Iommud__V1__Cause *cause_to_proto(ProtoArena *a, const EventCause *c) {
        Iommud__V1__Cause *p = ARENA_NEW(a, Iommud__V1__Cause, IOMMUD__V1__CAUSE__INIT);
        char *text;

        if (!p || !c)
                return p;
        p->kind = (char *)event_cause_kind_to_string(c->kind);
        p->operation_id = c->operation_id;
        p->operation = proto_arena_strdup(a, c->operation ?: "");
        p->peer = proto_arena_strdup(a, c->peer ?: "");
        p->domain_name = proto_arena_strdup(a, c->domain_name ?: "");
        p->domain_uuid = proto_arena_strdup(a, c->domain_uuid ?: "");
        text = event_cause_describe(c);
        p->text = proto_arena_strdup(a, text ?: "");
        free(text);
        return p;
}
