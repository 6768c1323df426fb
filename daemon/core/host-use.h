/* Whether the host uses a group's devices: the verdicts, each naming the whole chain
 * ("0000:02:00.0 (NVMe SSD Controller) holds nvme0n1p3 → dm-0 (vg0-root), mounted on /"), made
 * from the facts that host/host-usage.c reads. What cannot be told is a use of its own kind,
 * HOST_USE_UNKNOWN, which refuses like any other: unknown is never "free". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "host-usage.h"
#include "inventory.h"

typedef enum HostUseKind {
        HOST_USE_STORAGE,
        HOST_USE_NETWORK,
        HOST_USE_DISPLAY,
        HOST_USE_COMPUTE, /* GPU compute nodes (/dev/nvidiaN) */
        HOST_USE_SRIOV,   /* a physical function whose virtual functions would be destroyed */
        HOST_USE_VFIO,    /* a VFIO user holds the device or its group */
        HOST_USE_UNKNOWN, /* iommud could not look */
        _HOST_USE_KIND_MAX,
} HostUseKind;

const char *host_use_kind_to_string(HostUseKind k); /* "storage", "network", ..., "unknown" */

typedef struct HostUse {
        HostUseKind kind;
        char *device; /* the member's address, NULL for the group as a whole */
        char *text;   /* the sentence, naming device and chain */
        /* An admin may take the device anyway. Not so for VFIO users: unbinding a device that a
         * VFIO user holds blocks in the kernel until the user lets go. */
        bool forcible;
} HostUse;

typedef struct HostUses {
        HostUse *items;
        size_t n;
} HostUses;

void host_uses_done(HostUses *uses);

/* Extra words about a virtual function's group for the SR-IOV verdict, e.g. "prepared by iommud for
 * libvirt:vm1" or "in use by libvirt domain 'vm1'"; NULL when there is nothing to add. The caller
 * frees the string. */
typedef char *(*GroupDescribeFunc)(const Group *g, void *userdata);

/* Everything the host does with the members of g, appended to *uses. */
int host_use_judge_group(const HostRoots *roots, const HostUsage *u, const Inventory *inv, const Group *g,
                         GroupDescribeFunc describe, void *userdata, HostUses *uses);

/* Joins the texts of the uses of the given kinds (a bitmask of 1 << HostUseKind) with "; ", or
 * NULL when there are none. */
char *host_uses_join(const HostUses *uses, unsigned kinds);
