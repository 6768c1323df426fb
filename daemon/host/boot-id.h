/* The kernel's boot id: which boot the host is in, so that a record can tell whether the kernel it
 * describes has rebooted since (and forgotten every driver_override). */
#pragma once

#include "roots.h"

/* proc/sys/kernel/random/boot_id below the proc root, e.g. "9d3c2a5e-..."; -errno when it cannot
 * be read (a fixture tree without it: the boot is then unknown). */
int host_read_boot_id(const HostRoots *roots, char **ret);
