/* The single kernel writes operations are made of. Each is one write to one attribute below the
 * sysfs root; none of them decides anything.
 *
 * A write can block in the kernel for ever (unbinding vfio-pci from a device a VM holds waits for
 * the VM on Linux 6.1): every write runs bounded by timeout_usec (0: no bound) and answers
 * BOUNDED_PENDING (bounded.h) when the kernel has not returned by then; the write goes on by
 * itself and is logged when it returns. */
#pragma once

#include <stdint.h>

#include "bounded.h"
#include "roots.h"

/* Writes value (a trailing newline is added when missing) to <sysfs root>/path. */
int sysfs_write_attr(const HostRoots *roots, const char *path, const char *value, uint64_t timeout_usec);

/* driver NULL clears the override; an empty write would never reach the kernel, so "\n" is sent. */
int pci_write_driver_override(const HostRoots *roots, const char *address, const char *driver,
                              uint64_t timeout_usec);
int pci_unbind(const HostRoots *roots, const char *address, const char *driver, uint64_t timeout_usec);
/* Asks the kernel to bind the best driver (or the override) to an unbound device. The kernel
 * answers success even when nothing bound: check the driver afterwards. */
int pci_drivers_probe(const HostRoots *roots, const char *address, uint64_t timeout_usec);
/* The driver bound now, NULL when none. */
int pci_read_driver(const HostRoots *roots, const char *address, char **ret);
/* The override set now, NULL when none. */
int pci_read_driver_override(const HostRoots *roots, const char *address, char **ret);

int iommu_group_write_type(const HostRoots *roots, unsigned group, const char *type, uint64_t timeout_usec);
int iommu_group_read_type(const HostRoots *roots, unsigned group, char **ret);

/* SR-IOV: the number of virtual functions enabled on a physical function ("0" disables them; the
 * kernel accepts another non-zero count only after 0). */
int pci_write_sriov_numvfs(const HostRoots *roots, const char *address, const char *count, uint64_t timeout_usec);
int pci_read_sriov_numvfs(const HostRoots *roots, const char *address, char **ret);
