/* Reading IOMMU groups and judging them: VFIO viability and the type changes the kernel permits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "inventory-private.h"
#include "macro.h"
#include "parse.h"
#include "roots.h"
#include "strv.h"

static const char *const reserved_region_types[] = { "direct", "direct-relaxable", "reserved", "msi" };

static bool kernel_at_least(const HostInfo *host, unsigned major, unsigned minor) {
        return host->kernel_major > major || (host->kernel_major == major && host->kernel_minor >= minor);
}

/* One line: "0x%016llx 0x%016llx %s" (start, inclusive end, type). */
static int parse_reserved_region(const char *line, ReservedRegion *ret) {
        char start[32], end[32], type[32];
        uint64_t s, e;
        bool known = false;

        if (sscanf(line, "%31s %31s %31s", start, end, type) != 3)
                return -EINVAL;
        if (strncmp(start, "0x", 2) != 0 || strncmp(end, "0x", 2) != 0 || parse_u64(start, 16, &s) < 0 ||
            parse_u64(end, 16, &e) < 0 || e < s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(reserved_region_types); i++)
                known = known || strcmp(type, reserved_region_types[i]) == 0;
        if (!known)
                return -EBADMSG;

        ret->start = strdup(start);
        ret->end = strdup(end);
        ret->type = strdup(type);
        if (!ret->start || !ret->end || !ret->type)
                return -ENOMEM;
        ret->start_addr = s;
        ret->end_addr = e;
        return 0;
}

static void read_reserved_regions(const HostRoots *roots, Group *g, const char *dir) {
        _cleanup_(freep) char *text = NULL, *path = NULL;
        unsigned lineno = 0;
        char *saveptr = NULL;
        int k;

        if (asprintf(&path, "%s/reserved_regions", dir) < 0)
                return;
        k = read_attr_at(roots->sysfs_fd, path, &text);
        if (k < 0) {
                item_errors_add(&g->errors, path, k, "cannot read");
                return;
        }

        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                ReservedRegion region = {};

                lineno++;
                k = parse_reserved_region(line, &region);
                if (k < 0) {
                        free(region.start);
                        free(region.end);
                        free(region.type);
                        item_errors_add(&g->errors, path, 0, "ignoring line %u '%s': %s", lineno, line,
                                        k == -EBADMSG ? "unknown region type" : "not 'START END TYPE'");
                        continue;
                }
                ReservedRegion *slot = array_append(&g->reserved_regions, &g->n_reserved_regions,
                                                    sizeof(ReservedRegion));
                if (!slot) {
                        free(region.start);
                        free(region.end);
                        free(region.type);
                        return;
                }
                *slot = region;
        }
}

static void judge_viability(const Inventory *inv, Group *g) {
        /* Before 5.19 VFIO accepted any driver on a bridge; from 5.19 only drivers that manage DMA
         * themselves (vfio-pci and variants, pci-stub, pcieport) may stay bound. */
        bool bridges_exempt = inv->host.kernel_version_known && !kernel_at_least(&inv->host, 5, 19);

        g->viable = true;
        for (char **a = g->devices; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                Blocker *b;

                if (!d || !d->driver || driver_is_dma_managed(d->driver))
                        continue;
                if (bridges_exempt && d->header_type > 0)
                        continue;

                g->viable = false;
                b = array_append(&g->blockers, &g->n_blockers, sizeof(Blocker));
                if (!b)
                        return;
                b->device = strdup(d->address);
                b->driver = strdup(d->driver);
                if (asprintf(&b->reason,
                             "group %u is not viable for VFIO: %s%s%s%s is bound to %s; every member must be "
                             "unbound or bound to vfio-pci (prepare the whole group)",
                             g->id, d->address, d->device_name ? " (" : "", d->device_name ?: "",
                             d->device_name ? ")" : "", d->driver) < 0)
                        b->reason = NULL;
        }
}

static const Unit *find_unit(const Inventory *inv, const char *name) {
        if (name)
                FOREACH_ARRAY(u, inv->units, inv->n_units)
                        if (strcmp(u->name, name) == 0)
                                return u;
        return NULL;
}

static void allow(TypeChangeRules *t, const char *type) {
        size_t n = strv_length(t->allowed);

        (void)strv_push_dup(&t->allowed, &n, type);
}

/* What writing sys/kernel/iommu_groups/<id>/type can do now; KERNEL.md §1.4 gives the rules by
 * kernel version. */
static void judge_type_change(const Inventory *inv, Group *g) {
        const HostInfo *host = &inv->host;
        TypeChangeRules *t = &g->type_change;
        const Device *bound = NULL; /* first member with a driver that uses the DMA API */
        const Device *any_bound = NULL;
        bool no_passthrough = false;
        bool dma_to_fq;
        int k = 0;

        t->allowed = calloc(1, sizeof(char *));
        if (!t->allowed)
                return;

        if (!host->kernel_version_known) {
                t->reason = strdup("the kernel version is unknown, so the rules for changing the type are too");
                return;
        }
        if (!kernel_at_least(host, 5, 11)) {
                k = asprintf(&t->reason, "Linux %u.%u has a read-only type attribute (writable from 5.11)",
                             host->kernel_major, host->kernel_minor);
                goto done;
        }
        if (g->type == DOMAIN_TYPE_UNKNOWN || g->type == DOMAIN_TYPE_KERNEL_UNKNOWN || g->n_devices == 0) {
                k = asprintf(&t->reason, "group %u has no readable default domain, so its type cannot change", g->id);
                goto done;
        }
        t->writable = true;

        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                const Unit *u;

                if (!d)
                        continue;
                if (d->driver && !any_bound)
                        any_bound = d;
                if (d->driver && !driver_is_dma_managed(d->driver) && !bound)
                        bound = d;
                /* 6.12's VT-d driver forces DMA on units without pass-through support. */
                u = find_unit(inv, d->iommu_unit);
                if (u && u->kind == UNIT_KIND_INTEL_VTD && strv_contains(u->features_absent, "pass-through") &&
                    kernel_at_least(host, 6, 12))
                        no_passthrough = true;
        }

        /* DMA -> DMA-FQ only switches on the flush queue and is allowed while bound from 5.15. */
        dma_to_fq = g->type == DOMAIN_TYPE_DMA && kernel_at_least(host, 5, 15);

        if (!kernel_at_least(host, 6, 4)) {
                if (g->n_devices != 1) {
                        k = asprintf(&t->reason,
                                     "Linux %u.%u cannot change the type of a group with more than one device "
                                     "(possible from 6.4)",
                                     host->kernel_major, host->kernel_minor);
                        goto done;
                }
                if (any_bound) {
                        if (dma_to_fq)
                                allow(t, "DMA-FQ");
                        k = asprintf(&t->reason,
                                     "%s is bound to %s; Linux %u.%u changes the type only while no driver "
                                     "is bound (any driver, vfio-pci included)",
                                     any_bound->address, any_bound->driver, host->kernel_major, host->kernel_minor);
                        goto done;
                }
        } else if (bound) {
                if (dma_to_fq)
                        allow(t, "DMA-FQ");
                k = asprintf(&t->reason, "%s is bound to %s, which uses the DMA API; unbind it first", bound->address,
                             bound->driver);
                goto done;
        }

        if (!no_passthrough)
                allow(t, "identity");
        allow(t, "DMA");
        if (kernel_at_least(host, 5, 15))
                allow(t, "DMA-FQ");
        allow(t, "auto");
        if (no_passthrough)
                k = asprintf(&t->reason, "identity is refused: the VT-d unit has no pass-through support");

done:
        if (k < 0)
                t->reason = NULL;
}

int group_load(const HostRoots *roots, const Inventory *inv, unsigned id, Group *g) {
        _cleanup_(freep) char *dir = NULL, *path = NULL, *vfio = NULL;
        size_t n_members = 0;
        int k;

        g->id = id;
        if (asprintf(&dir, "sys/kernel/iommu_groups/%u", id) < 0)
                return -ENOMEM;

        if (asprintf(&path, "%s/type", dir) < 0)
                return -ENOMEM;
        k = read_attr_at(roots->sysfs_fd, path, &g->type_raw);
        if (k < 0)
                item_errors_add(&g->errors, path, k, "cannot read");
        else {
                g->type = domain_type_from_string(g->type_raw);
                if (g->type == DOMAIN_TYPE_UNKNOWN)
                        item_errors_add(&g->errors, path, 0, "unrecognized domain type '%s'", g->type_raw);
        }

        read_reserved_regions(roots, g, dir);

        free(path);
        if (asprintf(&path, "%s/devices", dir) < 0)
                return -ENOMEM;
        k = read_dir_at(roots->sysfs_fd, path, &g->devices, &n_members);
        if (k < 0) {
                item_errors_add(&g->errors, path, k, "cannot list members");
                g->devices = calloc(1, sizeof(char *));
                if (!g->devices)
                        return -ENOMEM;
        }
        g->n_devices = n_members;

        /* Both directions must agree: the member's iommu_group link and the group's devices/ entry. */
        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);

                if (!d)
                        item_errors_add(&g->errors, path, 0, "member '%s' is not a known PCI device", *a);
                else if (d->group < 0)
                        item_errors_add(&g->errors, path, 0, "member '%s' has no valid iommu_group link", *a);
                else if (d->group != (int)id)
                        item_errors_add(&g->errors, path, 0, "member '%s' links to group %d, not %u", *a, d->group,
                                        id);
        }

        if (asprintf(&vfio, "dev/vfio/%u", id) < 0)
                return -ENOMEM;
        g->vfio_node = exists_at(roots->dev_fd, vfio) > 0;

        judge_viability(inv, g);
        judge_type_change(inv, g);
        return 0;
}

void group_done(Group *g) {
        free(g->type_raw);
        FOREACH_ARRAY(r, g->reserved_regions, g->n_reserved_regions) {
                free(r->start);
                free(r->end);
                free(r->type);
        }
        free(g->reserved_regions);
        strv_free(g->devices);
        FOREACH_ARRAY(b, g->blockers, g->n_blockers) {
                free(b->device);
                free(b->driver);
                free(b->reason);
        }
        free(g->blockers);
        strv_free(g->type_change.allowed);
        free(g->type_change.reason);
        item_errors_done(&g->errors);
}

void groups_free(Group *groups, size_t n) {
        FOREACH_ARRAY(g, groups, n)
                group_done(g);
        free(groups);
}

static int compare_groups(const void *a, const void *b) {
        const Group *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

int groups_load(const HostRoots *roots, const Inventory *inv, ItemErrors *tree_errors, Group **ret,
                size_t *ret_n) {
        _cleanup_(strv_freep) char **names = NULL;
        Group *groups = NULL;
        size_t n = 0;
        int k;

        k = read_dir_at(roots->sysfs_fd, "sys/kernel/iommu_groups", &names, NULL);
        if (k == -ENOENT) {
                /* Kernels built without CONFIG_IOMMU_API have no iommu_groups directory at all. */
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (k < 0) {
                item_errors_add(tree_errors, "sys/kernel/iommu_groups", k, "cannot list groups");
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }

        for (char **name = names; *name; name++) {
                _cleanup_(strv_freep) char **members = NULL;
                char members_dir[64];
                size_t n_members = 0;
                uint32_t id;
                Group *g;

                if (parse_u32(*name, 10, &id) < 0 || id > INT32_MAX) {
                        item_errors_add(tree_errors, "sys/kernel/iommu_groups", 0,
                                        "ignoring entry '%s': not a group number", *name);
                        continue;
                }
                /* A group without members is being freed by the kernel (its last device left). */
                snprintf(members_dir, sizeof(members_dir), "sys/kernel/iommu_groups/%u/devices", id);
                if (read_dir_at(roots->sysfs_fd, members_dir, &members, &n_members) >= 0 && n_members == 0)
                        continue;
                g = array_append(&groups, &n, sizeof(Group));
                if (!g) {
                        groups_free(groups, n);
                        return -ENOMEM;
                }
                k = group_load(roots, inv, id, g);
                if (k < 0) {
                        groups_free(groups, n);
                        return k;
                }
        }

        /* Directory order is by name ("10" before "2"); the model is ordered by number. */
        if (n > 1)
                qsort(groups, n, sizeof(Group), compare_groups);
        *ret = groups;
        *ret_n = n;
        return 0;
}
