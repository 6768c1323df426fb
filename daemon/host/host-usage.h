/* What the host runs on its devices, as facts: block devices and what is stacked on them up to
 * mounts and swap, network interfaces and what is stacked on them up to addresses and routes,
 * framebuffers, and which processes hold which device nodes open. Read in one pass through the
 * roots; core/host-use.c turns them into verdicts per device ("holds nvme0n1p3 → dm-0 (pve-root),
 * mounted on /"). Where a fact cannot be read the snapshot says so (an "unknown" with its reason),
 * so that no verdict can mistake "could not look" for "nothing there". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "roots.h"

/* ---- storage --------------------------------------------------------------------------------- */

typedef struct BlockDevice {
        char *name;      /* kernel name: "nvme0n1p3", "dm-0", "md0", "sda" */
        char *path;      /* below sys/: "devices/pci0000:00/…/nvme/nvme0/nvme0n1/nvme0n1p3" */
        char *devnum;    /* "259:3"; NULL when unreadable */
        bool partition;  /* the directory holds a "partition" file */
        char **holders;  /* strv: names of the block devices stacked on this one (holders/) */
        char *dm_name;   /* device-mapper: "vg0-root" (dm/name), NULL otherwise */
        char *dm_uuid;   /* "LVM-…", "CRYPT-…", "mpath-…", "part1-…" */
        char *md_level;  /* md: "raid1", NULL otherwise */
} BlockDevice;

typedef struct Mount {
        char *devnum;     /* "259:3"; btrfs shows an anonymous "0:NN" */
        char *mountpoint; /* unescaped */
        char *fstype;
        char *source; /* "/dev/nvme0n1p2", "pool/dataset", "none" */
} Mount;

typedef struct Swap {
        char *path; /* as /proc/swaps prints it, unescaped: "/dev/dm-1", "/swapfile" */
        bool file;  /* Type "file": it lives on a mounted filesystem, which is a use of its own */
} Swap;

/* A mounted btrfs filesystem (sys/fs/btrfs/<fsid> exists only while it is mounted). */
typedef struct Btrfs {
        char *fsid;
        char *label;    /* NULL when none */
        char **members; /* strv of block device names (sys/fs/btrfs/<fsid>/devices/) */
} Btrfs;

/* ---- network --------------------------------------------------------------------------------- */

typedef struct NetInterface {
        char *name;
        char *path;   /* below sys/: "devices/…/0000:03:00.0/net/eth0", "devices/virtual/net/bond0" */
        bool flags_known;
        unsigned flags;  /* IFF_* */
        char *operstate; /* "up", "down", "lowerlayerdown", …; NULL when unreadable */
        char *master;    /* the bond/bridge/team it is enslaved to, NULL when none */
        char **uppers;   /* strv: interfaces stacked on it (upper_* links: VLAN, macvlan, bond, bridge) */
        char **addresses; /* strv: "10.0.0.1/24", "2001:db8::1/64" (no link-local) */
        bool routes;      /* some route goes through it */
        bool default_route; /* the IPv4 or IPv6 default route goes through it */
} NetInterface;

/* ---- display --------------------------------------------------------------------------------- */

typedef struct Framebuffer {
        unsigned index; /* fbN */
        char *name;     /* from proc/fb: "EFI VGA", "bochs-drmdrmfb", "simpledrmdrmfb"; NULL if unknown */
        char *path;     /* below sys/: where the fb's device lives ("devices/platform/efi-framebuffer.0/…") */
        bool firmware;  /* set up by firmware (efifb, vesafb, simplefb/simpledrm), not by the card's driver */
} Framebuffer;

/* ---- open device nodes ----------------------------------------------------------------------- */

typedef struct NodeHolder {
        int pid;
        int uid; /* -1 when unreadable */
        char *comm;
} NodeHolder;

typedef struct OpenNode {
        char *node; /* the fd link's target: "/dev/vfio/12", "/dev/dm-3" */
        NodeHolder *holders;
        size_t n_holders;
} OpenNode;

/* ---- the snapshot ---------------------------------------------------------------------------- */

typedef struct HostUsage {
        BlockDevice *blocks;
        size_t n_blocks;
        char *blocks_unknown; /* why the block devices could not be listed, NULL when they could */

        Mount *mounts; /* the host's (PID 1's) mount table and iommud's own, without duplicates */
        size_t n_mounts;
        char *mounts_unknown;

        Swap *swaps;
        size_t n_swaps;
        char *swaps_unknown;

        Btrfs *btrfs;
        size_t n_btrfs;

        NetInterface *interfaces;
        size_t n_interfaces;
        char *interfaces_unknown;
        char *routes_unknown; /* proc/1/net/{route,ipv6_route} could not be read */

        Framebuffer *framebuffers;
        size_t n_framebuffers;

        OpenNode *open_nodes; /* sorted by node */
        size_t n_open_nodes;
        /* Why some holders may be missing: processes whose fds could not be read (and how many), or
         * the lack of CAP_SYS_PTRACE on the live host. NULL when every process was inspected. */
        char *open_nodes_unknown;
} HostUsage;

/* Reads every fact. Fails only on OOM; what cannot be read is an "unknown" with its reason. */
int host_usage_read(const HostRoots *roots, HostUsage **ret);
HostUsage *host_usage_free(HostUsage *u);
static inline void host_usage_freep(HostUsage **u) {
        host_usage_free(*u);
}

/* Whether sysfs path 'path' lies below the device directory 'device_path' without passing through
 * another PCI function's directory (which is a device of its own). Both are below sys/. */
bool host_usage_path_on_device(const char *device_path, const char *path);

const BlockDevice *host_usage_find_block(const HostUsage *u, const char *name);
const NetInterface *host_usage_find_interface(const HostUsage *u, const char *name);
/* The processes holding node open under exactly that key ("/dev/vfio/12", or a device number as
 * "char:245:12", "block:254:1"), NULL (and *ret_n 0) when none was seen. */
const NodeHolder *host_usage_node_holders(const HostUsage *u, const char *node, size_t *ret_n);
/* The processes holding any of the keys (NULL keys are skipped), each process once. *ret is an
 * array to free(); its strings are borrowed from u. */
int host_usage_holders_merge(const HostUsage *u, const char *const *keys, size_t n_keys, NodeHolder **ret,
                             size_t *ret_n);
/* The processes holding the device node at path ("/dev/vfio/12") open: by its name, and by its
 * device number when the node below the dev root is one (the live host). */
int host_usage_device_holders(const HostRoots *roots, const HostUsage *u, const char *path, NodeHolder **ret,
                              size_t *ret_n);

/* The NVMe multipath head ("nvme0n1") that a hidden path disk ("nvme0c1n1") serves, NULL for
 * other names. */
char *block_multipath_head(const char *name);

/* "major:minor" of the block device node at path ("/dev/md/data", below the dev root): 1 when it
 * is a block device node, 0 when it is something else, -errno when it cannot be looked at. */
int block_node_number(const HostRoots *roots, const char *path, char *buf, size_t size);

/* Opens dev/<name> read-only with O_EXCL for a moment: the kernel refuses (EBUSY) while anything
 * has claimed the block device (a mount in any namespace, swap, dm, md, btrfs, a ZFS pool). 1 when
 * claimed, 0 when free, -errno when the probe itself failed (no node, not allowed). */
int block_device_probe_claimed(const HostRoots *roots, const char *name);

/* The device nodes under a PCI device that processes may hold: DRM cards and render nodes
 * ("dri/card0", "dri/renderD128"), VFIO cdevs ("vfio/devices/vfio0") and NVIDIA's per-GPU node
 * ("nvidia0"); names below dev/. */
int pci_device_nodes(const HostRoots *roots, const char *address, char ***ret);
/* The PCI "enable" count (how many users have enabled the device; vfio-pci enables it while a
 * user has it open), -errno when unreadable. */
int pci_device_enable_count(const HostRoots *roots, const char *address);
