/* Kernel writes for operations: driver_override, unbind, drivers_probe, group type. */
#include "sysfs-write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

int sysfs_write_attr(const HostRoots *roots, const char *path, const char *value) {
        _cleanup_(closep) int fd = -1;
        _cleanup_(freep) char *line = NULL;
        size_t len = strlen(value);
        ssize_t n;

        /* sysfs takes one write() per value: send value and newline together. */
        line = strprintf("%s%s", value, len > 0 && value[len - 1] == '\n' ? "" : "\n");
        if (!line)
                return -ENOMEM;
        /* O_TRUNC as the shell's ">" does: sysfs ignores it, a fixture's plain file needs it. */
        fd = open_in_root(roots->sysfs_fd, path, O_WRONLY | O_TRUNC | O_NOCTTY);
        if (fd < 0)
                return fd;
        n = write(fd, line, strlen(line));
        if (n < 0)
                return -errno;
        if ((size_t)n != strlen(line))
                return -EIO;
        return 0;
}

int pci_write_driver_override(const HostRoots *roots, const char *address, const char *driver) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver_override", address);

        if (!path)
                return -ENOMEM;
        return sysfs_write_attr(roots, path, driver ?: "\n");
}

int pci_unbind(const HostRoots *roots, const char *address, const char *driver) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/drivers/%s/unbind", driver);

        if (!path)
                return -ENOMEM;
        return sysfs_write_attr(roots, path, address);
}

int pci_drivers_probe(const HostRoots *roots, const char *address) {
        return sysfs_write_attr(roots, "sys/bus/pci/drivers_probe", address);
}

int pci_read_driver(const HostRoots *roots, const char *address, char **ret) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver", address);
        int r;

        if (!path)
                return -ENOMEM;
        r = read_link_basename_at(roots->sysfs_fd, path, ret);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}

int pci_read_driver_override(const HostRoots *roots, const char *address, char **ret) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver_override", address);
        char *value = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_attr_at(roots->sysfs_fd, path, &value);
        if (r < 0)
                return r;
        if (strcmp(value, "(null)") == 0 || value[0] == 0) {
                free(value);
                value = NULL;
        }
        *ret = value;
        return 0;
}

int iommu_group_write_type(const HostRoots *roots, unsigned group, const char *type) {
        char path[64];

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/type", group);
        return sysfs_write_attr(roots, path, type);
}

int iommu_group_read_type(const HostRoots *roots, unsigned group, char **ret) {
        char path[64];

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/type", group);
        return read_attr_at(roots->sysfs_fd, path, ret);
}

int pci_write_sriov_numvfs(const HostRoots *roots, const char *address, const char *count) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "sys/bus/pci/devices/%s/sriov_numvfs", address);
        return sysfs_write_attr(roots, path, count);
}

int pci_read_sriov_numvfs(const HostRoots *roots, const char *address, char **ret) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "sys/bus/pci/devices/%s/sriov_numvfs", address);
        return read_attr_at(roots->sysfs_fd, path, ret);
}
