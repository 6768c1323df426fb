/* Host-use verdicts: storage and network stacks followed to the top, display and compute nodes,
 * SR-IOV virtual functions and VFIO users, and what could not be looked at. */
#include "host-use.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "strv.h"

/* Stacks deeper than this (partition → crypt → LVM → thin → …) do not exist; a loop in a broken
 * tree must still end. */
#define MAX_STACK_DEPTH 16

static const char *const kind_names[_HOST_USE_KIND_MAX] = {
        [HOST_USE_STORAGE] = "storage", [HOST_USE_NETWORK] = "network", [HOST_USE_DISPLAY] = "display",
        [HOST_USE_COMPUTE] = "compute", [HOST_USE_SRIOV] = "sriov",     [HOST_USE_VFIO] = "vfio",
        [HOST_USE_UNKNOWN] = "unknown",
};

const char *host_use_kind_to_string(HostUseKind k) {
        return k < _HOST_USE_KIND_MAX ? kind_names[k] : NULL;
}

void host_uses_done(HostUses *uses) {
        FOREACH_ARRAY(u, uses->items, uses->n) {
                free(u->device);
                free(u->text);
        }
        free(uses->items);
        *uses = (HostUses){};
}

/* Takes text (NULL means OOM). */
static int add_use(HostUses *uses, HostUseKind kind, const char *device, bool forcible, char *text) {
        HostUse *u;

        if (!text)
                return -ENOMEM;
        u = array_append(&uses->items, &uses->n, sizeof(HostUse));
        if (!u || (device && !(u->device = strdup(device)))) {
                free(text);
                return -ENOMEM;
        }
        u->kind = kind;
        u->text = text;
        u->forcible = forcible;
        return 0;
}

char *host_uses_join(const HostUses *uses, unsigned kinds) {
        size_t len = 0;
        char *joined, *p;

        FOREACH_ARRAY(u, uses->items, uses->n)
                if (kinds & (1u << u->kind))
                        len += strlen(u->text) + 2;
        if (len == 0)
                return NULL;
        joined = p = malloc(len + 1);
        if (!joined)
                return NULL;
        FOREACH_ARRAY(u, uses->items, uses->n)
                if (kinds & (1u << u->kind))
                        p += sprintf(p, "%s%s", p == joined ? "" : "; ", u->text);
        return joined;
}

static const char *device_label(const Device *d) {
        return d->device_name ?: d->class_name ?: "PCI device";
}

/* "pid 812 (qemu-system-x86, uid 64055), pid 900 (…)" */
static char *describe_holders(const NodeHolder *holders, size_t n) {
        char *s = strdup("");

        for (size_t i = 0; s && i < n; i++) {
                char *next = holders[i].uid >= 0
                                     ? strprintf("%s%spid %d (%s, uid %d)", s, i ? ", " : "", holders[i].pid,
                                                 holders[i].comm ?: "?", holders[i].uid)
                                     : strprintf("%s%spid %d (%s)", s, i ? ", " : "", holders[i].pid,
                                                 holders[i].comm ?: "?");
                free(s);
                s = next;
        }
        return s;
}

typedef struct Judge {
        const HostRoots *roots;
        const HostUsage *u;
        const Inventory *inv;
        const Device *d;
        HostUses *uses;
        size_t found; /* known uses of the current kind found for d */
} Judge;

static int judge_add(Judge *j, HostUseKind kind, bool forcible, char *text) {
        if (kind != HOST_USE_UNKNOWN)
                j->found++;
        return add_use(j->uses, kind, j->d->address, forcible, text);
}

static int judge_unknown(Judge *j, const char *what, const char *reason) {
        return judge_add(j, HOST_USE_UNKNOWN, true,
                         strprintf("iommud cannot tell whether %s (%s) %s: %s", j->d->address, device_label(j->d),
                                   what, reason));
}

/* ---- storage --------------------------------------------------------------------------------- */

static char *block_label(const BlockDevice *b) {
        if (b->dm_name)
                return strprintf("%s (%s)", b->name, b->dm_name);
        if (b->md_level)
                return strprintf("%s (%s)", b->name, b->md_level);
        return strdup(b->name);
}

static const char *stacked_kind(const BlockDevice *b) {
        if (b->md_level)
                return "an active md array";
        if (b->dm_uuid && strncmp(b->dm_uuid, "LVM-", 4) == 0)
                return "an active LVM logical volume";
        if (b->dm_uuid && strncmp(b->dm_uuid, "CRYPT-", 6) == 0)
                return "an open dm-crypt mapping";
        if (b->dm_uuid && strncmp(b->dm_uuid, "mpath-", 6) == 0)
                return "an active multipath map";
        if (strncmp(b->name, "bcache", 6) == 0)
                return "an active bcache device";
        return "an active stacked device";
}

/* The block device a path in the host's tables names: "/dev/nvme0n1p2", "/dev/mapper/vg-swap" (a
 * link to ../dm-N with udev, a node of its own without), or any other node, by its number. */
static const BlockDevice *block_by_path(const HostRoots *roots, const HostUsage *u, const char *path) {
        const char *dev = strstr(path, "/dev/");
        char number[64];

        /* The kernel prints the path as seen from the reader's root: swap switched on inside a chroot
         * or another mount namespace shows as "/srv/chroot/dev/sda2". */
        if (dev)
                path = dev;

        if (strncmp(path, "/dev/mapper/", 12) == 0)
                FOREACH_ARRAY(b, u->blocks, u->n_blocks)
                        if (b->dm_name && streq(b->dm_name, path + 12))
                                return b;
        if (strncmp(path, "/dev/", 5) == 0 && !strchr(path + 5, '/') && host_usage_find_block(u, path + 5))
                return host_usage_find_block(u, path + 5);
        if (block_node_number(roots, path, number, sizeof(number)) > 0)
                FOREACH_ARRAY(b, u->blocks, u->n_blocks)
                        if (b->devnum && streq(b->devnum, number))
                                return b;
        return NULL;
}

static char *btrfs_use(const HostRoots *roots, const HostUsage *u, const Btrfs *fs) {
        _cleanup_(freep) char *where = strdup(""), *name = NULL;

        FOREACH_ARRAY(m, u->mounts, u->n_mounts) {
                const BlockDevice *source;
                char *next;

                if (!where)
                        return NULL;
                if (!streq(m->fstype, "btrfs") || !(source = block_by_path(roots, u, m->source)) ||
                    !strv_contains(fs->members, source->name))
                        continue;
                next = strprintf("%s%s%s", where, where[0] ? ", " : "", m->mountpoint);
                free(where);
                where = next;
        }
        name = fs->label ? strprintf("'%s' (%s)", fs->label, fs->fsid) : strdup(fs->fsid);
        if (!where || !name)
                return NULL;
        return where[0] ? strprintf("a member of btrfs filesystem %s, mounted on %s", name, where)
                        : strprintf("a member of the mounted btrfs filesystem %s (its mount point is in another "
                                    "mount namespace)",
                                    name);
}

/* The processes holding b open, under any of its names or by its number, each once. */
static int block_holders(const HostUsage *u, const BlockDevice *b, NodeHolder **ret, size_t *ret_n) {
        _cleanup_(freep) char *node = strprintf("/dev/%s", b->name), *mapper = NULL, *number = NULL;

        if (!node || (b->dm_name && !(mapper = strprintf("/dev/mapper/%s", b->dm_name))) ||
            (b->devnum && !(number = strprintf("block:%s", b->devnum))))
                return -ENOMEM;
        return host_usage_holders_merge(u, (const char *const[]){ node, mapper, number }, 3, ret, ret_n);
}

/* What uses block device b itself, as phrases ("mounted on /", "used as swap"). */
static int block_own_uses(const HostRoots *roots, const HostUsage *u, const BlockDevice *b, char ***ret) {
        _cleanup_(strv_freep) char **phrases = calloc(1, sizeof(char *));
        _cleanup_(freep) char *where = NULL;
        _cleanup_(freep) NodeHolder *holders = NULL;
        size_t n = 0, n_holders;
        int r;

        if (!phrases)
                return -ENOMEM;
        /* One phrase for all the places it is mounted: PID 1's namespace and iommud's own may name
         * the same mount differently. */
        FOREACH_ARRAY(m, u->mounts, u->n_mounts) {
                char *next;

                if (!b->devnum || !streq(m->devnum, b->devnum))
                        continue;
                next = where ? strprintf("%s, %s", where, m->mountpoint) : strdup(m->mountpoint);
                if (!next)
                        return -ENOMEM;
                free(where);
                where = next;
        }
        if (where && strv_push(&phrases, &n, strprintf("mounted on %s", where)) < 0)
                return -ENOMEM;
        FOREACH_ARRAY(s, u->swaps, u->n_swaps)
                if (!s->file && block_by_path(roots, u, s->path) == b && strv_push_dup(&phrases, &n, "used as swap") < 0)
                        return -ENOMEM;
        FOREACH_ARRAY(fs, u->btrfs, u->n_btrfs)
                if (strv_contains(fs->members, b->name) && strv_push(&phrases, &n, btrfs_use(roots, u, fs)) < 0)
                        return -ENOMEM;
        r = block_holders(u, b, &holders, &n_holders);
        if (r < 0)
                return r;
        if (n_holders > 0) {
                _cleanup_(freep) char *who = describe_holders(holders, n_holders);

                if (!who || strv_push(&phrases, &n, strprintf("held open by %s", who)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(phrases);
        return 0;
}

static int walk_block(Judge *j, const BlockDevice *b, const char *chain, unsigned depth, bool start) {
        _cleanup_(strv_freep) char **phrases = NULL;
        int r;

        r = block_own_uses(j->roots, j->u, b, &phrases);
        if (r < 0)
                return r;
        for (char **p = phrases; *p; p++) {
                r = judge_add(j, HOST_USE_STORAGE, true,
                              strprintf("%s (%s) holds %s, %s", j->d->address, device_label(j->d), chain, *p));
                if (r < 0)
                        return r;
        }
        for (char **h = b->holders; h && *h && depth < MAX_STACK_DEPTH; h++) {
                const BlockDevice *holder = host_usage_find_block(j->u, *h);
                _cleanup_(freep) char *label = holder ? block_label(holder) : strdup(*h), *next = NULL;

                next = label ? strprintf("%s → %s", chain, label) : NULL;
                if (!next)
                        return -ENOMEM;
                if (!holder)
                        r = judge_add(j, HOST_USE_STORAGE, true,
                                      strprintf("%s (%s) holds %s, a device stacked on it", j->d->address,
                                                device_label(j->d), next));
                else
                        r = walk_block(j, holder, next, depth + 1, false);
                if (r < 0)
                        return r;
        }
        /* The top of a stack with nobody on it is still a volume, array or mapping the host set up. */
        if (!start && strv_length(phrases) == 0 && strv_length(b->holders) == 0)
                return judge_add(j, HOST_USE_STORAGE, true,
                                 strprintf("%s (%s) holds %s, %s", j->d->address, device_label(j->d), chain,
                                           stacked_kind(b)));
        return 0;
}

/* When sysfs and the tables show nothing, the kernel may still know of a claim (a mount in another
 * mount namespace, a ZFS pool): ask it with an exclusive open. */
static int probe_claims(Judge *j, char *const *starts) {
        _cleanup_(strv_freep) char **claimed = calloc(1, sizeof(char *));
        size_t n = 0;
        int r;

        if (!claimed)
                return -ENOMEM;
        for (char *const *s = starts; *s; s++) {
                _cleanup_(freep) char *head = block_multipath_head(*s);

                if (head)
                        continue; /* a hidden path disk has no node; its head is probed */
                r = block_device_probe_claimed(j->roots, *s);
                if (r == -ENOMEM)
                        return r;
                if (r == -ENXIO || r == -ENODEV)
                        continue; /* the device went away meanwhile */
                if (r < 0) {
                        _cleanup_(freep) char *reason = strprintf("the exclusive-open check of dev/%s failed: %s", *s,
                                                                  strerror(-r)),
                                              *what = strprintf("holds a %s that something uses", *s);

                        if (!reason || !what)
                                return -ENOMEM;
                        r = judge_unknown(j, what, reason);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r > 0 && strv_push_dup(&claimed, &n, *s) < 0)
                        return -ENOMEM;
        }
        /* A claimed partition makes its whole disk claimed too: name only the partition. */
        for (char **c = claimed; *c; c++) {
                const BlockDevice *b = host_usage_find_block(j->u, *c);
                bool covered = false;

                for (char **other = claimed; b && *other && !covered; other++) {
                        const BlockDevice *o = host_usage_find_block(j->u, *other);

                        covered = o && o != b && o->partition && host_usage_path_on_device(b->path, o->path);
                }
                if (covered)
                        continue;
                r = judge_add(j, HOST_USE_STORAGE, true,
                              strprintf("%s (%s) holds %s, which the kernel reports claimed by another user (a mount "
                                        "in another mount namespace, a ZFS pool or another exclusive holder)",
                                        j->d->address, device_label(j->d), *c));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int judge_storage(Judge *j) {
        _cleanup_(strv_freep) char **starts = calloc(1, sizeof(char *));
        size_t n = 0;
        int r;

        if (!starts)
                return -ENOMEM;
        if (j->u->blocks_unknown && ((j->d->class_code >> 16) & 0xff) == 0x01)
                return judge_unknown(j, "holds block devices the host uses", j->u->blocks_unknown);

        j->found = 0;
        FOREACH_ARRAY(b, j->u->blocks, j->u->n_blocks) {
                _cleanup_(freep) char *head_name = NULL;
                const BlockDevice *head;

                if (!j->d->sysfs_path || !b->path || !host_usage_path_on_device(j->d->sysfs_path, b->path))
                        continue;
                if (strv_push_dup(&starts, &n, b->name) < 0)
                        return -ENOMEM;
                /* A hidden NVMe path disk serves the multipath head that the host mounts. */
                head_name = block_multipath_head(b->name);
                head = head_name ? host_usage_find_block(j->u, head_name) : NULL;
                if (head) {
                        _cleanup_(freep) char *chain = strprintf("%s → %s", b->name, head->name);

                        r = chain ? walk_block(j, head, chain, 1, false) : -ENOMEM;
                } else
                        r = walk_block(j, b, b->name, 0, true);
                if (r < 0)
                        return r;
        }
        if (n == 0 || j->found > 0)
                return 0;

        /* Nothing found: say what could not be looked at, then ask the kernel. */
        if (j->u->mounts_unknown)
                return judge_unknown(j, "holds a mounted filesystem", j->u->mounts_unknown);
        if (j->u->swaps_unknown)
                return judge_unknown(j, "holds swap", j->u->swaps_unknown);
        if (j->u->open_nodes_unknown)
                return judge_unknown(j, "holds block devices that processes have open", j->u->open_nodes_unknown);
        FOREACH_ARRAY(s, j->u->swaps, j->u->n_swaps)
                if (!s->file && !block_by_path(j->roots, j->u, s->path)) {
                        _cleanup_(freep) char *reason = strprintf("swap is on %s, which names no block device iommud "
                                                                  "knows",
                                                                  s->path);

                        return reason ? judge_unknown(j, "holds swap", reason) : -ENOMEM;
                }
        return probe_claims(j, starts);
}

/* ---- network --------------------------------------------------------------------------------- */

static bool interface_in_use(const NetInterface *i) {
        return (i->flags_known && (i->flags & IFF_UP)) || i->master || strv_length(i->addresses) > 0 || i->routes;
}

/* "vmbr0 up, 10.0.0.1/24, default route" */
static char *interface_facts(const NetInterface *i) {
        char *s = strdup(i->name);

        if (s && i->flags_known && (i->flags & IFF_UP)) {
                char *next = strprintf("%s up%s", s, i->operstate && streq(i->operstate, "down") ? " (no carrier)" : "");
                free(s);
                s = next;
        }
        for (char **a = i->addresses; s && a && *a; a++) {
                char *next = strprintf("%s, %s", s, *a);
                free(s);
                s = next;
        }
        if (s && (i->default_route || i->routes)) {
                char *next = strprintf("%s, %s", s, i->default_route ? "default route" : "routes");
                free(s);
                s = next;
        }
        if (s && i->master) {
                char *next = strprintf("%s, port of %s", s, i->master);
                free(s);
                s = next;
        }
        return s;
}

/* Follows uppers and masters to each top of the stack, then reports the chain if anything on it
 * shows use. chain holds the interfaces from the device up to i. */
static int walk_interface(Judge *j, const NetInterface **chain, size_t depth) {
        const NetInterface *i = chain[depth - 1];
        bool top = true;
        int r;

        if (depth < MAX_STACK_DEPTH) {
                _cleanup_(strv_freep) char **next = calloc(1, sizeof(char *));
                size_t n = 0;

                if (!next)
                        return -ENOMEM;
                for (char **up = i->uppers; up && *up; up++)
                        if (!strv_contains(next, *up) && strv_push_dup(&next, &n, *up) < 0)
                                return -ENOMEM;
                if (i->master && !strv_contains(next, i->master) && strv_push_dup(&next, &n, i->master) < 0)
                        return -ENOMEM;
                for (char **name = next; *name; name++) {
                        const NetInterface *upper = host_usage_find_interface(j->u, *name);

                        if (!upper)
                                continue;
                        top = false;
                        chain[depth] = upper;
                        r = walk_interface(j, chain, depth + 1);
                        if (r < 0)
                                return r;
                }
        }
        if (!top)
                return 0;

        {
                _cleanup_(freep) char *names = strdup(chain[0]->name), *facts = strdup("");
                bool used = false;

                for (size_t k = 0; k < depth && names && facts; k++) {
                        char *next;

                        if (k > 0) {
                                next = strprintf("%s → %s", names, chain[k]->name);
                                free(names);
                                names = next;
                        }
                        if (!interface_in_use(chain[k]))
                                continue;
                        used = true;
                        _cleanup_(freep) char *f = interface_facts(chain[k]);
                        next = f ? strprintf("%s%s%s", facts, facts[0] ? "; " : "", f) : NULL;
                        free(facts);
                        facts = next;
                }
                if (!names || !facts)
                        return -ENOMEM;
                if (!used)
                        return 0;
                return judge_add(j, HOST_USE_NETWORK, true,
                                 strprintf("%s (%s) carries %s (%s)", j->d->address, device_label(j->d), names, facts));
        }
}

static int judge_network(Judge *j) {
        const NetInterface *chain[MAX_STACK_DEPTH + 1];
        bool network_class = ((j->d->class_code >> 16) & 0xff) == 0x02, any = false;
        int r;

        if (j->u->interfaces_unknown && network_class)
                return judge_unknown(j, "carries network interfaces the host uses", j->u->interfaces_unknown);

        j->found = 0;
        FOREACH_ARRAY(i, j->u->interfaces, j->u->n_interfaces) {
                if (!j->d->sysfs_path || !i->path || !host_usage_path_on_device(j->d->sysfs_path, i->path))
                        continue;
                any = true;
                chain[0] = i;
                r = walk_interface(j, chain, 1);
                if (r < 0)
                        return r;
        }
        if (j->found > 0)
                return 0;
        if (any && j->u->routes_unknown)
                return judge_unknown(j, "carries routed traffic", j->u->routes_unknown);
        /* sysfs shows only the interfaces of its own network namespace. */
        if (!any && network_class && j->d->driver && !j->d->vfio_bound && !streq(j->d->driver, "pci-stub")) {
                _cleanup_(freep) char *reason = strprintf("it is bound to %s but shows no network interface in this "
                                                          "network namespace; it may serve another one",
                                                          j->d->driver);

                return reason ? judge_unknown(j, "carries network traffic", reason) : -ENOMEM;
        }
        return 0;
}

/* ---- display, compute and VFIO nodes ----------------------------------------------------------- */

static int judge_display(Judge *j) {
        const Device *d = j->d;
        int r;

        if (d->boot_vga == 1) {
                r = judge_add(j, HOST_USE_DISPLAY, true,
                              strprintf("%s (%s) is the boot VGA device: the console may be on it", d->address,
                                        device_label(d)));
                if (r < 0)
                        return r;
        }
        FOREACH_ARRAY(fb, j->u->framebuffers, j->u->n_framebuffers) {
                if (fb->path && d->sysfs_path && host_usage_path_on_device(d->sysfs_path, fb->path))
                        r = judge_add(j, HOST_USE_DISPLAY, true,
                                      strprintf("%s (%s) drives framebuffer fb%u (%s), which the console may use",
                                                d->address, device_label(d), fb->index, fb->name ?: "?"));
                else if (fb->firmware && d->boot_vga == 1)
                        r = judge_add(j, HOST_USE_DISPLAY, true,
                                      strprintf("%s (%s) holds the memory that the firmware framebuffer fb%u (%s) "
                                                "shows",
                                                d->address, device_label(d), fb->index, fb->name ?: "?"));
                else
                        continue;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int judge_nodes(Judge *j) {
        _cleanup_(strv_freep) char **nodes = NULL;
        const Device *d = j->d;
        int r;

        r = pci_device_nodes(j->roots, d->address, &nodes);
        if (r < 0)
                return r;
        for (char **node = nodes; *node; node++) {
                _cleanup_(freep) char *path = strprintf("/dev/%s", *node), *who = NULL;
                _cleanup_(freep) NodeHolder *holders = NULL;
                HostUseKind kind;
                size_t n;

                if (!path)
                        return -ENOMEM;
                r = host_usage_device_holders(j->roots, j->u, path, &holders, &n);
                if (r < 0)
                        return r;
                if (n == 0) {
                        if (j->u->open_nodes_unknown) {
                                _cleanup_(freep) char *what = strprintf("is used through %s", path);

                                r = what ? judge_unknown(j, what, j->u->open_nodes_unknown) : -ENOMEM;
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                who = describe_holders(holders, n);
                if (!who)
                        return -ENOMEM;
                kind = strncmp(*node, "vfio/", 5) == 0 ? HOST_USE_VFIO
                       : strncmp(*node, "nvidia", 6) == 0 ? HOST_USE_COMPUTE
                                                          : HOST_USE_DISPLAY;
                r = judge_add(j, kind, kind != HOST_USE_VFIO,
                              strprintf("%s (%s): %s is held open by %s", d->address, device_label(d), path, who));
                if (r < 0)
                        return r;
        }

        /* vfio-pci enables the device while a user has it open; unbinding it then blocks. */
        if (d->vfio_bound) {
                int count = pci_device_enable_count(j->roots, d->address);

                if (count == -ENOMEM)
                        return count;
                if (count < 0) {
                        _cleanup_(freep) char *reason = strprintf("its PCI enable count cannot be read: %s",
                                                                  strerror(-count));

                        return reason ? judge_unknown(j, "is open through VFIO", reason) : -ENOMEM;
                }
                if (count > 0)
                        return judge_add(j, HOST_USE_VFIO, false,
                                         strprintf("%s (%s) is open through VFIO (its PCI enable count is %d): a "
                                                   "user such as QEMU holds it",
                                                   d->address, device_label(d), count));
        }
        return 0;
}

/* ---- SR-IOV ---------------------------------------------------------------------------------- */

static char *describe_vf(Judge *j, const Device *vf, GroupDescribeFunc describe, void *userdata) {
        const Group *g = vf->group >= 0 ? inventory_find_group(j->inv, (unsigned)vf->group) : NULL;
        _cleanup_(freep) char *extra = NULL, *held = NULL, *group = NULL;

        if (g) {
                _cleanup_(freep) char *node = strprintf("/dev/vfio/%u", g->id);
                _cleanup_(freep) NodeHolder *holders = NULL;
                size_t n;

                if (!node || host_usage_device_holders(j->roots, j->u, node, &holders, &n) < 0)
                        return NULL;
                if (n > 0) {
                        _cleanup_(freep) char *who = describe_holders(holders, n);

                        if (!who || !(held = strprintf(", %s held open by %s", node, who)))
                                return NULL;
                }
                if (describe)
                        extra = describe(g, userdata);
                group = strprintf("group %u", g->id);
        } else
                group = strdup("no group");
        if (!group)
                return NULL;
        return strprintf("%s (%s, %s%s%s%s)", vf->address, group, vf->driver ?: "no driver", extra ? ", " : "",
                         extra ?: "", held ?: "");
}

/* Removing a virtual function that a VFIO user holds blocks until the user lets go, like an unbind:
 * that is never forced. */
static int check_vf_held(Judge *j, const Device *vf) {
        _cleanup_(freep) char *node = vf->group >= 0 ? strprintf("/dev/vfio/%d", vf->group) : NULL, *who = NULL;
        _cleanup_(freep) NodeHolder *holders = NULL;
        size_t n = 0;
        int count = 0;

        if (vf->group >= 0 && !node)
                return -ENOMEM;
        if (node && host_usage_device_holders(j->roots, j->u, node, &holders, &n) < 0)
                return -ENOMEM;
        if (vf->vfio_bound)
                count = pci_device_enable_count(j->roots, vf->address);
        if (count == -ENOMEM)
                return count;
        if (n == 0 && count <= 0)
                return 0;
        who = n > 0 ? describe_holders(holders, n) : strprintf("a user (its PCI enable count is %d)", count);
        if (!who)
                return -ENOMEM;
        return judge_add(j, HOST_USE_VFIO, false,
                         strprintf("%s, a virtual function of %s, is held through VFIO by %s: disabling SR-IOV would "
                                   "block until it lets go",
                                   vf->address, j->d->address, who));
}

/* Taking a physical function from its driver disables SR-IOV, which destroys every virtual
 * function, wherever it is assigned. */
static int judge_sriov(Judge *j, GroupDescribeFunc describe, void *userdata) {
        const Device *d = j->d;
        _cleanup_(freep) char *list = strdup("");
        size_t n = 0;
        int r;

        if (d->sriov_role != SRIOV_PF || d->sriov_numvfs <= 0)
                return 0;
        FOREACH_ARRAY(vf, j->inv->devices, j->inv->n_devices) {
                _cleanup_(freep) char *one = NULL;
                char *next;

                if (!list)
                        return -ENOMEM;
                if (!vf->sriov_pf || !streq(vf->sriov_pf, d->address))
                        continue;
                one = describe_vf(j, vf, describe, userdata);
                next = one ? strprintf("%s%s%s", list, n ? ", " : "", one) : NULL;
                free(list);
                list = next;
                n++;
                r = check_vf_held(j, vf);
                if (r < 0)
                        return r;
        }
        if (!list)
                return -ENOMEM;
        return judge_add(j, HOST_USE_SRIOV, true,
                         strprintf("%s (%s) has %d SR-IOV virtual functions enabled, which iommud must disable to take "
                                   "it from %s: %s",
                                   d->address, device_label(d), d->sriov_numvfs, d->driver ?: "its driver",
                                   n ? list : "(none of them is visible)"));
}

/* ---- the group ---------------------------------------------------------------------------------- */

int host_use_judge_group(const HostRoots *roots, const HostUsage *u, const Inventory *inv, const Group *g,
                         GroupDescribeFunc describe, void *userdata, HostUses *uses) {
        _cleanup_(freep) char *node = strprintf("/dev/vfio/%u", g->id);
        _cleanup_(freep) NodeHolder *holders = NULL;
        size_t n;
        int r;

        if (!node)
                return -ENOMEM;
        for (char **a = g->devices; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                Judge j = { .roots = roots, .u = u, .inv = inv, .d = d, .uses = uses };

                if (!d)
                        continue;
                if (!d->sysfs_path) {
                        r = judge_unknown(&j, "holds anything the host uses",
                                          "its directory in sysfs is unknown (see the device's errors)");
                        if (r < 0)
                                return r;
                        continue;
                }
                r = judge_storage(&j);
                if (r >= 0)
                        r = judge_network(&j);
                if (r >= 0)
                        r = judge_display(&j);
                if (r >= 0)
                        r = judge_nodes(&j);
                if (r >= 0)
                        r = judge_sriov(&j, describe, userdata);
                if (r < 0)
                        return r;
        }

        /* The legacy group node: whoever holds it owns the whole group's DMA. */
        r = host_usage_device_holders(roots, u, node, &holders, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                _cleanup_(freep) char *who = describe_holders(holders, n);

                if (!who)
                        return -ENOMEM;
                return add_use(uses, HOST_USE_VFIO, NULL, false, strprintf("%s is held open by %s", node, who));
        }
        if (g->vfio_node && u->open_nodes_unknown)
                return add_use(uses, HOST_USE_UNKNOWN, NULL, true,
                               strprintf("iommud cannot tell whether %s is held open: %s", node, u->open_nodes_unknown));
        return 0;
}
