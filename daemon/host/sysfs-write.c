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

/* One write, on the thread run_bounded() gives it: it owns a duplicate of the root fd and the text,
 * so that a write the caller gave up on can go on after the caller has moved on. */
typedef struct AttrWrite {
        int root_fd;
        char *path;
        char *line;
} AttrWrite;

static void attr_write_free(void *arg) {
        AttrWrite *w = arg;

        closep(&w->root_fd);
        free(w->path);
        free(w->line);
        free(w);
}

static int attr_write_run(void *arg) {
        AttrWrite *w = arg;
        _cleanup_(closep) int fd = -1;
        size_t len = strlen(w->line);
        ssize_t n;

        /* O_TRUNC as the shell's ">" does: sysfs ignores it, a fixture's plain file needs it. */
        fd = open_in_root(w->root_fd, w->path, O_WRONLY | O_TRUNC | O_NOCTTY);
        if (fd < 0)
                return fd;
        /* sysfs takes one write() per value: value and newline go together. */
        n = write(fd, w->line, len);
        if (n < 0)
                return -errno;
        if ((size_t)n != len)
                return -EIO;
        return 0;
}

int sysfs_write_attr(const HostRoots *roots, const char *path, const char *value, uint64_t timeout_usec) {
        _cleanup_(freep) char *what = NULL;
        size_t len = strlen(value);
        AttrWrite *w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->root_fd = fcntl(roots->sysfs_fd, F_DUPFD_CLOEXEC, 3);
        w->path = strdup(path);
        w->line = strprintf("%s%s", value, len > 0 && value[len - 1] == '\n' ? "" : "\n");
        what = strprintf("write %.*s to %s", (int)strcspn(value, "\n"), value, path);
        if (w->root_fd < 0 || !w->path || !w->line || !what) {
                int r = w->root_fd < 0 ? -errno : -ENOMEM;

                attr_write_free(w);
                return r;
        }
        return run_bounded(attr_write_run, w, attr_write_free, what, timeout_usec);
}

int pci_write_driver_override(const HostRoots *roots, const char *address, const char *driver,
                              uint64_t timeout_usec) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver_override", address);

        if (!path)
                return -ENOMEM;
        return sysfs_write_attr(roots, path, driver ?: "\n", timeout_usec);
}

int pci_unbind(const HostRoots *roots, const char *address, const char *driver, uint64_t timeout_usec) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/drivers/%s/unbind", driver);

        if (!path)
                return -ENOMEM;
        return sysfs_write_attr(roots, path, address, timeout_usec);
}

int pci_drivers_probe(const HostRoots *roots, const char *address, uint64_t timeout_usec) {
        return sysfs_write_attr(roots, "sys/bus/pci/drivers_probe", address, timeout_usec);
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

int iommu_group_write_type(const HostRoots *roots, unsigned group, const char *type, uint64_t timeout_usec) {
        char path[64];

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/type", group);
        return sysfs_write_attr(roots, path, type, timeout_usec);
}

int iommu_group_read_type(const HostRoots *roots, unsigned group, char **ret) {
        char path[64];

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/type", group);
        return read_attr_at(roots->sysfs_fd, path, ret);
}

int pci_write_sriov_numvfs(const HostRoots *roots, const char *address, const char *count, uint64_t timeout_usec) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "sys/bus/pci/devices/%s/sriov_numvfs", address);
        return sysfs_write_attr(roots, path, count, timeout_usec);
}

int pci_read_sriov_numvfs(const HostRoots *roots, const char *address, char **ret) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "sys/bus/pci/devices/%s/sriov_numvfs", address);
        return read_attr_at(roots->sysfs_fd, path, ret);
}
