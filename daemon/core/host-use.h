/* Whether the host itself uses a device: what must never be taken away without an admin's force. */
#pragma once

#include "inventory.h"
#include "roots.h"

/* Sentences like "0000:02:00.0 (NVMe SSD Controller) holds nvme0n1p2, mounted on /", one per use
 * found, as a strv (empty when the device is free). Checked: boot VGA console, network interfaces
 * that are up, block devices with mounted filesystems (partitions included), and device nodes that
 * a process holds open. */
int host_use_find(const HostRoots *roots, const Device *d, char ***ret);

/* The processes holding dev/<node> open, as "pid 1234 (qemu-system-x86)" strings. */
int host_use_node_holders(const HostRoots *roots, const char *node, char ***ret);
