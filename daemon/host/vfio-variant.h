/* Which VFIO driver a device should get: a vendor's variant driver when the kernel has one for it
 * (a "vfio_pci:" alias in modules.alias, as libvirt chooses), else vfio-pci. */
#pragma once

#include "roots.h"

/* Looks in lib/modules/<release>/modules.alias below the sysfs root (the live host's "/"). *ret is
 * the module name ("mlx5_vfio_pci"), or NULL when no variant matches. A missing file is no variant. */
int vfio_variant_lookup(const HostRoots *roots, const char *release, const char *modalias, char **ret);
