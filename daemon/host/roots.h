/* The directories the host layer reads: --sysfs-root, --proc-root, --dev-root (each defaults to "/"). */
#pragma once

#include <stdbool.h>

typedef struct HostRoots {
        char *sysfs_path; /* e.g. "/" or a fixture tree; we read <sysfs_path>/sys/... */
        char *proc_path;  /* we read <proc_path>/proc/... */
        char *dev_path;   /* we read <dev_path>/dev/... */
        int sysfs_fd;
        int proc_fd;
        int dev_fd;
} HostRoots;

/* Opens the three roots. Fails with a logged, explicit message when a root is not a directory or
 * holds no sys/ (proc/, dev/) below it. */
int host_roots_open(const char *sysfs_path, const char *proc_path, const char *dev_path, HostRoots **ret);
HostRoots *host_roots_free(HostRoots *roots);
static inline void host_roots_freep(HostRoots **r) {
        host_roots_free(*r);
}

/* Whether the proc root is this machine's own "/" (not a fixture or captured tree): only then may
 * the process's own credentials and namespaces be compared with what the tree shows. */
bool host_roots_proc_is_live(const HostRoots *roots);
