/* Opening the sysfs, procfs and devfs roots that every host read is confined to. */
#include "roots.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"

static int open_root(const char *what, const char *path, const char *required_subdir, char **ret_path,
                     int *ret_fd) {
        _cleanup_(closep) int fd = -1;
        struct stat st;
        int r;

        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot use %s root '%s': %m", what, path);

        r = fstatat(fd, required_subdir, &st, 0);
        if (r < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(r < 0 ? errno : ENOTDIR,
                                       "Cannot use %s root '%s': it holds no %s/ directory (give the directory "
                                       "that contains %s/, e.g. '/')",
                                       what, path, required_subdir, required_subdir);

        *ret_path = strdup(path);
        if (!*ret_path)
                return log_oom();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int host_roots_open(const char *sysfs_path, const char *proc_path, const char *dev_path, HostRoots **ret) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        int r;

        roots = calloc(1, sizeof(*roots));
        if (!roots)
                return log_oom();
        roots->sysfs_fd = roots->proc_fd = roots->dev_fd = -1;

        r = open_root("sysfs", sysfs_path ?: "/", "sys", &roots->sysfs_path, &roots->sysfs_fd);
        if (r < 0)
                return r;
        r = open_root("proc", proc_path ?: "/", "proc", &roots->proc_path, &roots->proc_fd);
        if (r < 0)
                return r;
        r = open_root("dev", dev_path ?: "/", "dev", &roots->dev_path, &roots->dev_fd);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(roots);
        return 0;
}

HostRoots *host_roots_free(HostRoots *roots) {
        if (!roots)
                return NULL;
        closep(&roots->sysfs_fd);
        closep(&roots->proc_fd);
        closep(&roots->dev_fd);
        free(roots->sysfs_path);
        free(roots->proc_path);
        free(roots->dev_path);
        free(roots);
        return NULL;
}

bool host_roots_proc_is_live(const HostRoots *roots) {
        struct stat root, proc;

        return stat("/", &root) >= 0 && fstat(roots->proc_fd, &proc) >= 0 && root.st_dev == proc.st_dev &&
               root.st_ino == proc.st_ino;
}
