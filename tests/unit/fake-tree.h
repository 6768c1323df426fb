/* Scratch host trees for unit tests: a mkdtemp() directory holding sys/, proc/ and dev/ to fill with files
 * and symlinks, opened as HostRoots. Failures abort the test through cmocka asserts. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "roots.h"

typedef struct FakeTree {
        char *root;       /* the mkdtemp() directory */
        HostRoots *roots; /* opened on first use by fake_tree_roots() */
} FakeTree;

FakeTree *fake_tree_new(void);
/* Removes the directory and everything below it. */
void fake_tree_free(FakeTree *t);

/* Paths are relative to the root, e.g. "sys/class/iommu/dmar0"; missing parent directories are created. */
void fake_tree_write(FakeTree *t, const char *path, const char *content);
void fake_tree_mkdir(FakeTree *t, const char *path);
void fake_tree_symlink(FakeTree *t, const char *path, const char *target);
void fake_tree_unlink(FakeTree *t, const char *path);

const HostRoots *fake_tree_roots(FakeTree *t);

/* Call first in main(), while the process has one thread: gives it a mount namespace of its own
 * (when it runs as root) so that fake_tree_make_read_only() can mount. */
void fake_tree_private_mounts(void);
/* Makes the directory path (relative to the root) read-only: a read-only bind mount, so that writes
 * fail with EROFS as on a read-only file system (as root), or mode 0555 (EACCES, as another user). */
void fake_tree_make_read_only(FakeTree *t, const char *path);
/* Undoes it, so that the tree can be removed. */
void fake_tree_make_writable(FakeTree *t, const char *path);

/* A host running kernel 'release' with an empty command line, no modules and no IOMMU units. */
FakeTree *fake_tree_new_host(const char *release);
/* A PCI function (Intel 8086:10d3) on the root bus or behind the bridge 'parent', bound to 'driver'
 * (NULL: unbound), member of 'group', with the given config-space header type (0 endpoint, 1 bridge). */
void fake_tree_add_pci_device(FakeTree *t, const char *address, const char *parent, const char *driver,
                              unsigned group, uint8_t header_type);
/* The device's sysfs directory ("sys/devices/pci0000:00/[parent/]address"), as fake_tree_add_pci_device() lays it. */
char *fake_tree_device_dir(const char *address, const char *parent);
/* Replaces the device's config space with 'size' bytes. */
void fake_tree_write_config(FakeTree *t, const char *address, const char *parent, const uint8_t *config, size_t size);
void fake_tree_chmod(FakeTree *t, const char *path, mode_t mode);
/* A VT-d unit the way 6.x lays it out: a virtual class device, no parent. */
void fake_tree_add_intel_unit(FakeTree *t, const char *name, const char *cap, const char *ecap);
/* QEMU's amd-iommu at 00:00.2 (the PCI function that is the IOMMU), unit ivhd0. */
void fake_tree_add_amd_unit(FakeTree *t, const char *features);
/* The device's iommu link to unit 'name' (a VT-d unit, or ivhd0). */
void fake_tree_link_unit(FakeTree *t, const char *address, const char *parent, const char *name);
/* A network interface of the device (flags as the kernel prints them: 0x1003 up, 0x1002 down), with
 * its sys/class/net link. */
void fake_tree_add_net_interface(FakeTree *t, const char *address, const char *parent, const char *ifname,
                                 unsigned flags);
/* sys/kernel/iommu_groups/<group>/{type,reserved_regions} with the given contents. */
void fake_tree_add_group(FakeTree *t, unsigned group, const char *type, const char *regions);
