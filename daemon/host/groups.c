/* Reading IOMMU groups and judging them: VFIO viability and the type changes the kernel permits. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "intern.h"
#include "inventory-private.h"
#include "macro.h"
#include "parse.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

static const char *const reserved_region_types[] = { "direct", "direct-relaxable", "reserved", "msi" };

/* Whether the running kernel is at least major.minor: 1 yes, 0 no, -1 unknown (no readable release). Only
 * for rules that nothing in sysfs reveals; each caller says which rule and why no feature tells it. */
static int kernel_since(const HostInfo *host, unsigned major, unsigned minor) {
        if (!host->kernel_version_known)
                return -1;
        return host->kernel_major > major || (host->kernel_major == major && host->kernel_minor >= minor);
}

static const char *const blocker_kinds[_BLOCKER_KIND_MAX] = {
        [BLOCKER_DRIVER] = "driver",
        [BLOCKER_DIRECT_REGION] = "direct-region",
};

const char *blocker_kind_to_string(BlockerKind k) {
        return (unsigned)k < _BLOCKER_KIND_MAX ? blocker_kinds[k] : NULL;
}

const TypeRefusal *type_change_refusal(const TypeChangeRules *t, const char *type) {
        FOREACH_ARRAY(r, t->refused, t->n_refused)
                if (strcmp(r->type, type) == 0)
                        return r;
        return NULL;
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

        /* Interned: most groups share their regions (the MSI window). */
        ret->start = (char *)intern(start);
        ret->end = (char *)intern(end);
        ret->type = (char *)intern(type);
        if (!ret->start || !ret->end || !ret->type)
                return -ENOMEM;
        ret->start_addr = s;
        ret->end_addr = e;
        return 0;
}

static void read_reserved_regions(int dir_fd, Group *g, const char *dir) {
        _cleanup_(freep) char *text = NULL, *path = NULL;
        unsigned lineno = 0;
        char *saveptr = NULL;
        int k;

        if (asprintf(&path, "%s/reserved_regions", dir) < 0)
                return;
        k = read_sysfs_attr_at(dir_fd, "reserved_regions", &text);
        if (k < 0) {
                item_errors_add(&g->errors, path, k, "cannot read");
                return;
        }

        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                ReservedRegion region = {};

                lineno++;
                k = parse_reserved_region(line, &region);
                if (k < 0) {
                        item_errors_add(&g->errors, path, 0, "ignoring line %u '%s': %s", lineno, line,
                                        k == -EBADMSG ? "unknown region type" : "not 'START END TYPE'");
                        continue;
                }
                ReservedRegion *slot = array_append(&g->reserved_regions, &g->n_reserved_regions,
                                                    sizeof(ReservedRegion));
                if (!slot)
                        return;
                *slot = region;
        }
}

static const Unit *find_unit(const Inventory *inv, const char *name) {
        if (name)
                FOREACH_ARRAY(u, inv->units, inv->n_units)
                        if (strcmp(u->name, name) == 0)
                                return u;
        return NULL;
}

/* The unit translating the group: every member of a group sits behind the same one. */
static const Unit *group_unit(const Inventory *inv, const Group *g) {
        for (char **a = g->devices; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                const Unit *u = d ? find_unit(inv, d->iommu_unit) : NULL;

                if (u)
                        return u;
        }
        return NULL;
}

static const char *direct_region_name(const Unit *u) {
        if (u && u->kind == UNIT_KIND_INTEL_VTD)
                return "an RMRR";
        if (u && u->kind == UNIT_KIND_AMD_VI)
                return "an IVMD unity map";
        return "a firmware range";
}

/* Why VFIO cannot take a group whose members need a 'direct' region (the firmware requires it mapped
 * 1:1 at all times), or NULL when this kernel and IOMMU driver accept it. docs/KERNEL-RULES.md §1 has the
 * kernel facts. No sysfs file tells which rule a kernel follows, so the version decides. */
static char *direct_region_refusal(const HostInfo *host, const Unit *u) {
        int core = kernel_since(host, 6, 6);

        if (core > 0)
                return strprintf("from Linux 6.6 the IOMMU core refuses to give such a device the blocking "
                                 "domain VFIO starts with (\"Firmware has requested this device have a 1:1 IOMMU "
                                 "mapping\")");
        if (u && u->kind == UNIT_KIND_INTEL_VTD)
                return strprintf("the VT-d driver refuses devices with RMRRs for VFIO domains (\"Device is "
                                 "ineligible for IOMMU domain attach due to platform RMRR requirement\")%s",
                                 core < 0 ? ", and from 6.6 the IOMMU core refuses them on every unit" : "");
        /* AMD-Vi before 6.6 attaches such devices to VFIO's domain without looking at unity maps. */
        if (u && u->kind == UNIT_KIND_AMD_VI && core == 0)
                return NULL;
        if (core < 0)
                return strprintf("the kernel version is unknown, and from 6.6 the IOMMU core refuses such "
                                 "devices for VFIO on every unit");
        return strprintf("iommud does not know whether the %s driver of Linux %u.%u accepts such devices for "
                         "VFIO (from 6.6 the IOMMU core refuses them on every unit)",
                         u ? unit_kind_to_string(u->kind) : "IOMMU", host->kernel_major, host->kernel_minor);
}

static Blocker *blocker_add(Group *g, BlockerKind kind) {
        Blocker *b = array_append(&g->blockers, &g->n_blockers, sizeof(Blocker));

        g->viable = false;
        if (b)
                b->kind = kind;
        return b;
}

static void judge_viability(const Inventory *inv, Group *g) {
        /* Before 5.19 VFIO accepted any driver on a bridge; from 5.19 only drivers that manage DMA
         * themselves (vfio-pci and variants, pci-stub, pcieport) may stay bound. */
        bool bridges_exempt = kernel_since(&inv->host, 5, 19) == 0;
        const Unit *unit = group_unit(inv, g);

        g->viable = true;
        FOREACH_ARRAY(r, g->reserved_regions, g->n_reserved_regions) {
                _cleanup_(freep) char *why = NULL;
                Blocker *b;

                /* direct-relaxable (USB and graphics RMRRs, the ISA range) may be dropped: VFIO accepts it. */
                if (strcmp(r->type, "direct") != 0)
                        continue;
                why = direct_region_refusal(&inv->host, unit);
                if (!why)
                        continue;
                b = blocker_add(g, BLOCKER_DIRECT_REGION);
                if (!b)
                        return;
                b->reason = strprintf("group %u is not viable for VFIO: its reserved region %s-%s is direct (%s "
                                      "that must stay mapped 1:1), and %s; nothing iommud can do changes that: "
                                      "the device stays with the host",
                                      g->id, r->start, r->end, direct_region_name(unit), why);
        }

        for (char **a = g->devices; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                Blocker *b;

                if (!d || !d->driver || driver_is_dma_managed(d->driver))
                        continue;
                if (bridges_exempt && d->header_type > 0)
                        continue;

                b = blocker_add(g, BLOCKER_DRIVER);
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

static void allow(TypeChangeRules *t, const char *type) {
        size_t n = strv_length(t->allowed);

        if (!type_change_refusal(t, type) && !strv_contains(t->allowed, type))
                (void)strv_push_dup(&t->allowed, &n, type);
}

static const char *const settable_types[] = { "identity", "DMA", "DMA-FQ", "auto" };

/* Records that the kernel refuses 'type' for the group; the first reason found for a type stands. Takes
 * ownership of 'reason' (NULL on OOM is dropped with the refusal's reason only). */
static void refuse(TypeChangeRules *t, const char *type, char *reason) {
        TypeRefusal *r;

        if (type_change_refusal(t, type)) {
                free(reason);
                return;
        }
        r = array_append(&t->refused, &t->n_refused, sizeof(TypeRefusal));
        if (!r) {
                free(reason);
                return;
        }
        r->type = strdup(type);
        r->reason = reason;
}

static void refuse_all(TypeChangeRules *t, const char *reason) {
        for (size_t i = 0; i < ELEMENTSOF(settable_types); i++)
                refuse(t, settable_types[i], reason ? strdup(reason) : NULL);
}

static bool dma_fq_seen(const Group *groups, size_t n) {
        FOREACH_ARRAY(g, groups, n)
                if (g->type == DOMAIN_TYPE_DMA_FQ)
                        return true;
        return false;
}

#define LABEL_MAX 320

/* "0000:06:00.0 (82574L Gigabit Network Connection)", or the address alone when pci.ids has no name. */
static const char *label(const Device *d, char buf[static LABEL_MAX]) {
        if (!d->device_name)
                return d->address;
        snprintf(buf, LABEL_MAX, "%s (%s)", d->address, d->device_name);
        return buf;
}

/* Why the IOMMU driver keeps 'd' in an identity domain, or NULL when it does not. The drivers decide
 * this once, at boot, from quirks and options only partly visible from user space, so the rules below
 * say when a device qualifies, and the group's own type is the evidence: a forced device can never
 * leave identity, so a group that reads DMA or DMA-FQ is not forced. *ret_unknown is set when the
 * facts the rule needs could not be read. docs/KERNEL-RULES.md §3 has the kernel sources. */
static char *forced_identity(const Inventory *inv, const Group *g, const Device *d, const Unit *u, bool *ret_unknown) {
        const HostInfo *h = &inv->host;
        bool display = d->class_code >= 0 && (d->class_code >> 16) == 0x03;
        char buf[LABEL_MAX];

        *ret_unknown = false;
        if (g->type != DOMAIN_TYPE_IDENTITY || !u)
                return NULL;

        if (u->kind == UNIT_KIND_INTEL_VTD) {
                /* IDENTMAP_AZALIA: set when the Tylersburg isochronous unit has no TLB entries. */
                if (d->vendor_id == 0x8086 && d->device_id == 0x3a3e)
                        return strprintf("%s is the Tylersburg HD audio controller, which the VT-d driver keeps "
                                         "in an identity domain when the BIOS leaves its DMAR unit without TLB "
                                         "entries", d->address);
                /* IDENTMAP_INTGPU, Debian's CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF (the default of its
                 * kernels): an Intel display device on the root bus, unless intel_iommu=on. */
                if (display && d->vendor_id == 0x8086 && !d->parent && h->intel_intgpu_mapped != 1)
                        return strprintf("%s is an integrated Intel GPU, which Debian's kernels keep in an "
                                         "identity domain unless booted with intel_iommu=on", label(d, buf));
                /* IDENTMAP_GFX from intel_iommu=igfx_off; 6.12's driver no longer has it. */
                if (display && h->intel_igfx_off && kernel_since(h, 6, 12) != 1)
                        return strprintf("%s is a display device, which intel_iommu=igfx_off keeps in an "
                                         "identity domain", label(d, buf));
                return NULL;
        }

        if (u->kind == UNIT_KIND_AMD_VI) {
                /* IOMMUv2-capable devices (AMD GPUs): 6.1 asks for ATS, PRI and PASID and a unit with GT and
                 * PPR; 6.12 for PASID and GT, PPR and EPHSup on the units. amd_iommu=force_isolation turns it
                 * off unless the default is passthrough. Memory encryption and SNP turn it off too, which
                 * user space cannot see: the group's type tells. */
                bool unit_v2 = strv_contains(u->features, "GTSup") && strv_contains(u->features, "PPRSup");
                bool unit_v2_known = unit_v2 || strv_contains(u->features_absent, "GTSup") ||
                                     strv_contains(u->features_absent, "PPRSup");

                if (h->amd_force_isolation && h->cmdline_default_type != DOMAIN_TYPE_IDENTITY)
                        return NULL;
                if (!d->config_extended || !unit_v2_known) {
                        *ret_unknown = true;
                        return strprintf("cannot tell whether the AMD-Vi driver keeps %s in an identity domain: "
                                         "%s", d->address,
                                         !d->config_extended ? "its extended config space is unreadable"
                                                             : "the unit's features are unreadable");
                }
                if (unit_v2 && d->pasid && ((d->ats && d->pri) || strv_contains(u->features, "EPHSup")))
                        return strprintf("%s supports PASID%s, which the AMD-Vi driver keeps in an identity "
                                         "domain unless memory encryption or SNP is active", label(d, buf),
                                         d->ats && d->pri ? ", PRI and ATS" : "");
        }
        return NULL;
}

/* The types the kernel refuses for this group whatever is bound: forced by a member or its unit, or
 * missing from this kernel. */
static void judge_refusals(const Inventory *inv, const Group *all, size_t n_all, Group *g) {
        const HostInfo *h = &inv->host;
        TypeChangeRules *t = &g->type_change;
        int since_5_14 = kernel_since(h, 5, 14), since_6_4 = kernel_since(h, 6, 4);

        /* DMA-FQ exists from 5.15; a group reading it proves it whatever the version says. */
        if (kernel_since(h, 5, 15) != 1 && !dma_fq_seen(all, n_all))
                refuse(t, "DMA-FQ",
                       h->kernel_version_known
                               ? strprintf("Linux %u.%u has no DMA-FQ type (from 5.15)", h->kernel_major,
                                           h->kernel_minor)
                               : strprintf("the kernel version is unknown and no group reads DMA-FQ, so the "
                                           "type may not exist (it does from 5.15)"));

        /* Before 6.4 the kernel changes single-device groups only; the count test comes first, so not
         * even DMA -> DMA-FQ passes it. */
        if (since_6_4 != 1 && g->n_devices != 1) {
                _cleanup_(freep) char *why =
                        h->kernel_version_known
                                ? strprintf("Linux %u.%u cannot change the type of a group with more than one "
                                            "device (possible from 6.4)",
                                            h->kernel_major, h->kernel_minor)
                                : strprintf("the kernel version is unknown, and before 6.4 the kernel cannot "
                                            "change the type of a group with more than one device");

                refuse_all(t, why);
        }

        for (char **a = g->devices; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                const Unit *u;
                char *forced, buf[LABEL_MAX];
                bool unknown;

                if (!d)
                        continue;
                u = find_unit(inv, d->iommu_unit);

                /* Untrusted (below an external-facing port) means DMA; sysfs shows it as removable. Before
                 * 6.4 the device's type must equal the request, so DMA-FQ is refused as well. */
                if (d->removable && strcmp(d->removable, "removable") == 0) {
                        refuse(t, "identity",
                               strprintf("%s is untrusted (removable, below a port the firmware marks "
                                         "external-facing), and the kernel keeps untrusted devices in DMA "
                                         "domains", label(d, buf)));
                        if (since_6_4 != 1)
                                refuse(t, "DMA-FQ",
                                       strprintf("%s is untrusted, and before 6.4 the kernel accepts only DMA "
                                                 "for it", d->address));
                } else if (!d->removable && since_5_14 != 1)
                        refuse(t, "identity",
                               strprintf("cannot tell whether %s is untrusted: %s", d->address,
                                         h->kernel_version_known
                                                 ? "this kernel has no removable attribute (from 5.14)"
                                                 : "the kernel version is unknown, and kernels before 5.14 "
                                                   "have no removable attribute"));

                forced = forced_identity(inv, g, d, u, &unknown);
                if (forced) {
                        refuse(t, "DMA", strdup(forced));
                        refuse(t, "DMA-FQ", forced);
                }

                /* VT-d without pass-through (ECAP.PT): the driver forces DMA. 6.1 still gave identity
                 * through a page-table identity map; the static identity domain that needs PT came in
                 * between (6.11, inferred), so kernels before 6.11 are trusted with identity. */
                if (u && u->kind == UNIT_KIND_INTEL_VTD && kernel_since(h, 6, 11) != 0) {
                        if (!u->intel_ecap)
                                refuse(t, "identity",
                                       strprintf("cannot tell whether the VT-d unit %s supports pass-through: "
                                                 "its ecap is unreadable", u->name));
                        else if (strv_contains(u->features_absent, "pass-through"))
                                refuse(t, "identity",
                                       strprintf("the VT-d unit %s has no pass-through support (ECAP.PT), and "
                                                 "the VT-d driver keeps its devices in DMA domains", u->name));
                }
        }
}

/* The types refused for the same reason as refused[i], or NULL when an earlier refusal has that reason
 * (its clause names them all). */
static char *types_refused_for(const TypeChangeRules *t, size_t i, size_t *ret_n) {
        const char *why = t->refused[i].reason;
        char *types;

        for (size_t k = 0; k < i; k++)
                if (t->refused[k].reason && streq(t->refused[k].reason, why))
                        return NULL;
        types = strdup(t->refused[i].type);
        *ret_n = 1;
        for (size_t k = i + 1; types && k < t->n_refused; k++)
                if (t->refused[k].reason && streq(t->refused[k].reason, why)) {
                        char *more = strprintf("%s, %s", types, t->refused[k].type);

                        free(types);
                        types = more;
                        (*ret_n)++;
                }
        return types;
}

/* One sentence: what is in the way now, then one clause per refusal reason naming its types. */
static void compose_reason(TypeChangeRules *t, const char *now) {
        _cleanup_(freep) char *text = now ? strdup(now) : NULL;

        for (size_t i = 0; i < t->n_refused; i++) {
                _cleanup_(freep) char *types = NULL;
                size_t n_types = 0;
                char *next;

                if (!t->refused[i].reason)
                        continue;
                types = types_refused_for(t, i, &n_types);
                if (!types)
                        continue;
                if (n_types == ELEMENTSOF(settable_types))
                        next = strprintf("%s%s%s", text ?: "", text ? "; " : "", t->refused[i].reason);
                else
                        next = strprintf("%s%s%s refused: %s", text ?: "", text ? "; " : "", types,
                                         t->refused[i].reason);
                if (!next)
                        return;
                free(text);
                text = next;
        }
        t->reason = TAKE_PTR(text);
}

/* What writing sys/kernel/iommu_groups/<id>/type can do: which types the kernel refuses for this group
 * in any state, and which it accepts now, without unbinding anything. docs/KERNEL-RULES.md §2 has the
 * rules. */
static void judge_type_change(const Inventory *inv, const Group *all, size_t n_all, Group *g) {
        const HostInfo *host = &inv->host;
        TypeChangeRules *t = &g->type_change;
        const Device *bound = NULL; /* first member with a driver that uses the DMA API */
        const Device *any_bound = NULL;
        _cleanup_(freep) char *now = NULL;
        bool dma_to_fq;

        t->allowed = calloc(1, sizeof(char *));
        if (!t->allowed)
                return;

        /* Whether the kernel can write the type at all is a feature of the attribute: 0444 without a
         * store (up to 5.10), 0644 from 5.11. */
        if (g->type_mode < 0) {
                refuse_all(t, "the mode of the type attribute is unreadable, so whether the kernel can change it is unknown");
                goto done;
        }
        if (!(g->type_mode & S_IWUSR)) {
                refuse_all(t, "the type attribute is read-only: this kernel cannot change a group's type (Linux "
                              "writes it from 5.11)");
                goto done;
        }
        if (g->type == DOMAIN_TYPE_UNKNOWN || g->type == DOMAIN_TYPE_KERNEL_UNKNOWN || g->n_devices == 0) {
                _cleanup_(freep) char *why =
                        strprintf("group %u has no readable default domain, so its type cannot change", g->id);

                refuse_all(t, why);
                goto done;
        }
        t->writable = true;
        /* 6.4 counts only drivers that use the DMA API; before (or when unknown), any bound driver. */
        t->managed_drivers_may_stay = kernel_since(host, 6, 4) == 1;
        judge_refusals(inv, all, n_all, g);

        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);

                if (!d)
                        continue;
                if (d->driver && !any_bound)
                        any_bound = d;
                if (d->driver && !driver_is_dma_managed(d->driver) && !bound)
                        bound = d;
        }

        /* DMA -> DMA-FQ only switches on the flush queue and is allowed while bound. */
        dma_to_fq = g->type == DOMAIN_TYPE_DMA;

        if (!t->managed_drivers_may_stay && any_bound) {
                if (dma_to_fq)
                        allow(t, "DMA-FQ");
                now = host->kernel_version_known
                              ? strprintf("%s is bound to %s; Linux %u.%u changes the type only while no driver "
                                          "is bound (any driver, vfio-pci included)",
                                          any_bound->address, any_bound->driver, host->kernel_major,
                                          host->kernel_minor)
                              : strprintf("%s is bound to %s; the kernel version is unknown, so iommud changes "
                                          "the type only while no driver is bound",
                                          any_bound->address, any_bound->driver);
                goto done;
        }
        if (bound) {
                if (dma_to_fq)
                        allow(t, "DMA-FQ");
                now = strprintf("%s is bound to %s, which uses the DMA API; unbind it first", bound->address,
                                bound->driver);
                goto done;
        }
        for (size_t i = 0; i < ELEMENTSOF(settable_types); i++)
                allow(t, settable_types[i]);

done:
        /* What is bound does not matter when the kernel refuses every type anyway. */
        if (t->n_refused == ELEMENTSOF(settable_types))
                now = (free(now), NULL);
        compose_reason(t, now);
}

/* Reads one group's files; judging waits until every group is read (DMA-FQ is a fact of them all).
 * Everything is read relative to the group's directory, opened once. A group without members is
 * read all the same and marked empty. */
static int group_read(const HostRoots *roots, const Inventory *inv, const HostListing *listing, unsigned id,
                      Group *g) {
        _cleanup_(freep) char *dir = NULL, *path = NULL, *vfio = NULL;
        _cleanup_(closep) int dir_fd = -1;
        char name[16];
        size_t n_members = 0;
        mode_t mode;
        int k;

        g->id = id;
        if (asprintf(&dir, "sys/kernel/iommu_groups/%u", id) < 0 || asprintf(&path, "%s/devices", dir) < 0)
                return -ENOMEM;
        dir_fd = open_in_root(roots->sysfs_fd, dir, O_PATH | O_DIRECTORY);
        k = dir_fd < 0 ? dir_fd : read_dir_at(dir_fd, "devices", &g->devices, &n_members);
        if (k >= 0 && n_members == 0) {
                /* Shown as the kernel shows it; the caller decides whether to keep it. */
                g->empty = true;
                strv_free(g->devices);
                g->devices = NULL;
        }
        if (k < 0 || g->empty) {
                item_errors_add(&g->errors, path, k, "cannot list members");
                g->devices = calloc(1, sizeof(char *));
                if (!g->devices)
                        return -ENOMEM;
        }
        g->n_devices = n_members;

        free(path);
        if (asprintf(&path, "%s/type", dir) < 0)
                return -ENOMEM;
        k = dir_fd < 0 ? dir_fd : read_sysfs_attr_at(dir_fd, "type", &g->type_raw);
        if (k >= 0) {
                char *raw = g->type_raw;

                g->type_raw = (char *)intern(raw);
                free(raw);
        }
        if (k < 0)
                item_errors_add(&g->errors, path, k, "cannot read");
        else {
                g->type = domain_type_from_string(g->type_raw);
                if (g->type == DOMAIN_TYPE_UNKNOWN)
                        item_errors_add(&g->errors, path, 0, "unrecognized domain type '%s'", g->type_raw);
        }

        /* S_IWUSR on the type attribute is the kernel's "can store" (docs/KERNEL-RULES.md §2). */
        k = dir_fd < 0 ? dir_fd : mode_at(dir_fd, "type", &mode);
        g->type_mode = k < 0 ? -1 : (int)(mode & 07777);
        if (k < 0 && k != -ENOENT)
                item_errors_add(&g->errors, path, k, "cannot read the mode");

        if (dir_fd >= 0)
                read_reserved_regions(dir_fd, g, dir);
        else {
                free(path);
                if (asprintf(&path, "%s/reserved_regions", dir) < 0)
                        return -ENOMEM;
                item_errors_add(&g->errors, path, dir_fd, "cannot read");
        }

        /* Both directions must agree: the member's iommu_group link and the group's devices/ entry. */
        free(path);
        if (asprintf(&path, "%s/devices", dir) < 0)
                return -ENOMEM;
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

        snprintf(name, sizeof(name), "%u", id);
        if (listing && listing->vfio)
                g->vfio_node = sorted_strv_contains(listing->vfio, listing->n_vfio, name);
        else {
                if (asprintf(&vfio, "dev/vfio/%u", id) < 0)
                        return -ENOMEM;
                g->vfio_node = exists_at(roots->dev_fd, vfio) > 0;
        }
        if (g->empty)
                g->empty_reason = g->vfio_node ? "its last device left while a VFIO user still holds the group"
                                               : "its last device left; the kernel frees it once nothing holds it";
        return 0;
}

static void group_judge(const Inventory *inv, const Group *all, size_t n_all, Group *g) {
        judge_viability(inv, g);
        judge_type_change(inv, all, n_all, g);
}

int group_load(const HostRoots *roots, const Inventory *inv, const HostListing *listing, unsigned id, Group *g) {
        int r;

        r = group_read(roots, inv, listing, id, g);
        if (r < 0)
                return r;
        /* A group without members is judged like any other: the caller decides what it means. */
        if (!g->devices) {
                g->devices = calloc(1, sizeof(char *));
                if (!g->devices)
                        return -ENOMEM;
        }
        group_judge(inv, inv->groups, inv->n_groups, g);
        return 0;
}

/* The type and the reserved regions' strings are interned: not freed here. */
void group_done(Group *g) {
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
        FOREACH_ARRAY(r, g->type_change.refused, g->type_change.n_refused) {
                free(r->type);
                free(r->reason);
        }
        free(g->type_change.refused);
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

int groups_load(const HostRoots *roots, const Inventory *inv, const HostListing *listing, ItemErrors *tree_errors,
                Group **ret, size_t *ret_n) {
        _cleanup_(strv_freep) char **own = NULL;
        char *const *names;
        Group *groups = NULL;
        size_t n = 0, n_names = 0;
        int k = 0;

        if (listing && listing->groups) {
                names = listing->groups;
                n_names = listing->n_groups;
        } else {
                k = read_dir_at(roots->sysfs_fd, "sys/kernel/iommu_groups", &own, &n_names);
                names = own;
        }
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

        /* One allocation for all of them: the model is sized to the host. */
        groups = calloc(n_names ?: 1, sizeof(Group));
        if (!groups)
                return -ENOMEM;
        for (char *const *name = names; *name; name++) {
                uint32_t id;
                Group *g;

                if (parse_u32(*name, 10, &id) < 0 || id > INT32_MAX) {
                        item_errors_add(tree_errors, "sys/kernel/iommu_groups", 0,
                                        "ignoring entry '%s': not a group number", *name);
                        continue;
                }
                g = &groups[n];
                k = group_read(roots, inv, listing, id, g);
                if (k < 0) {
                        groups_free(groups, n + 1);
                        return k;
                }
                /* A group without members is shown as the kernel shows it, marked empty. */
                n++;
        }
        FOREACH_ARRAY(g, groups, n)
                group_judge(inv, groups, n, g);

        /* Directory order is by name ("10" before "2"); the model is ordered by number. */
        if (n > 1)
                qsort(groups, n, sizeof(Group), compare_groups);
        *ret = groups;
        *ret_n = n;
        return 0;
}

/* ---- equality ------------------------------------------------------------------------------ */

static bool reserved_regions_equal(const Group *a, const Group *b) {
        if (a->n_reserved_regions != b->n_reserved_regions)
                return false;
        for (size_t i = 0; i < a->n_reserved_regions; i++) {
                const ReservedRegion *x = &a->reserved_regions[i], *y = &b->reserved_regions[i];

                if (!streq_ptr(x->start, y->start) || !streq_ptr(x->end, y->end) ||
                    !streq_ptr(x->type, y->type))
                        return false;
        }
        return true;
}

static bool blockers_equal(const Group *a, const Group *b) {
        if (a->n_blockers != b->n_blockers)
                return false;
        for (size_t i = 0; i < a->n_blockers; i++) {
                const Blocker *x = &a->blockers[i], *y = &b->blockers[i];

                if (!streq_ptr(x->device, y->device) || !streq_ptr(x->driver, y->driver) ||
                    !streq_ptr(x->reason, y->reason) ||
                    !streq_ptr(blocker_kind_to_string(x->kind), blocker_kind_to_string(y->kind)))
                        return false;
        }
        return true;
}

static bool type_change_equal(const TypeChangeRules *a, const TypeChangeRules *b) {
        if (a->writable != b->writable || !strv_equal(a->allowed, b->allowed) ||
            !streq_ptr(a->reason, b->reason) || a->n_refused != b->n_refused)
                return false;
        for (size_t i = 0; i < a->n_refused; i++)
                if (!streq_ptr(a->refused[i].type, b->refused[i].type) ||
                    !streq_ptr(a->refused[i].reason, b->refused[i].reason))
                        return false;
        return true;
}

bool group_equal(const Group *a, const Group *b) {
        return a->id == b->id && streq_ptr(a->type_raw, b->type_raw) && strv_equal(a->devices, b->devices) &&
               reserved_regions_equal(a, b) && a->viable == b->viable && blockers_equal(a, b) &&
               type_change_equal(&a->type_change, &b->type_change) && a->vfio_node == b->vfio_node &&
               item_errors_equal(&a->errors, &b->errors);
}
