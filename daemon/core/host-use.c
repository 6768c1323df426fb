/* Host-use checks: boot console, active network links, mounted filesystems, open device nodes. */
#include "host-use.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

static const char *device_label(const Device *d) {
        return d->device_name ?: d->class_name ?: "PCI device";
}

/* "major:minor" of every block device on the device: the disks and their partitions. */
static int block_numbers(const HostRoots *roots, const Device *d, char ***ret_numbers, char ***ret_names) {
        _cleanup_(strv_freep) char **numbers = calloc(1, sizeof(char *)), **names = calloc(1, sizeof(char *));
        size_t n_numbers = 0, n_names = 0;

        if (!numbers || !names)
                return -ENOMEM;
        for (char **disk = d->block_devices; disk && *disk; disk++) {
                _cleanup_(strv_freep) char **entries = NULL;
                _cleanup_(freep) char *dir = strprintf("sys/class/block/%s", *disk);

                if (!dir)
                        return -ENOMEM;
                if (read_dir_at(roots->sysfs_fd, dir, &entries, NULL) < 0)
                        continue;
                /* The disk itself ("dev"), then each partition directory holding a "partition" file. */
                for (char **e = entries; *e; e++) {
                        _cleanup_(freep) char *partition = strprintf("%s/%s/partition", dir, *e);
                        _cleanup_(freep) char *dev_path = NULL, *number = NULL;
                        const char *name;

                        if (!partition)
                                return -ENOMEM;
                        if (streq(*e, "dev")) {
                                dev_path = strprintf("%s/dev", dir);
                                name = *disk;
                        } else if (exists_at(roots->sysfs_fd, partition) > 0) {
                                dev_path = strprintf("%s/%s/dev", dir, *e);
                                name = *e;
                        } else
                                continue;
                        if (!dev_path)
                                return -ENOMEM;
                        if (read_attr_at(roots->sysfs_fd, dev_path, &number) < 0)
                                continue;
                        if (strv_push(&numbers, &n_numbers, TAKE_PTR(number)) < 0 ||
                            strv_push_dup(&names, &n_names, name) < 0)
                                return -ENOMEM;
                }
        }
        *ret_numbers = TAKE_PTR(numbers);
        *ret_names = TAKE_PTR(names);
        return 0;
}

/* mountinfo: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw" — field 3 is
 * major:minor, field 5 the mount point. */
static int find_mounts(const HostRoots *roots, const Device *d, char ***uses, size_t *n_uses) {
        _cleanup_(strv_freep) char **numbers = NULL, **names = NULL;
        _cleanup_(freep) char *mountinfo = NULL;
        char *saveptr = NULL;
        int r;

        if (strv_length(d->block_devices) == 0)
                return 0;
        r = block_numbers(roots, d, &numbers, &names);
        if (r < 0)
                return r;
        if (read_attr_at(roots->proc_fd, "proc/self/mountinfo", &mountinfo) < 0)
                return 0;

        for (char *line = strtok_r(mountinfo, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char number[32], mountpoint[512];

                if (sscanf(line, "%*s %*s %31s %*s %511s", number, mountpoint) != 2)
                        continue;
                for (size_t i = 0; numbers[i]; i++)
                        if (streq(numbers[i], number)) {
                                char *use = strprintf("%s (%s) holds %s, mounted on %s", d->address, device_label(d),
                                                      names[i], mountpoint);

                                if (!use || strv_push(uses, n_uses, use) < 0) {
                                        free(use);
                                        return -ENOMEM;
                                }
                        }
        }
        return 0;
}

static int find_active_links(const HostRoots *roots, const Device *d, char ***uses, size_t *n_uses) {
        for (char **ifname = d->net_interfaces; ifname && *ifname; ifname++) {
                _cleanup_(freep) char *path = strprintf("sys/class/net/%s/operstate", *ifname), *state = NULL;
                char *use;

                if (!path)
                        return -ENOMEM;
                if (read_attr_at(roots->sysfs_fd, path, &state) < 0 || !streq(state, "up"))
                        continue;
                use = strprintf("%s (%s) carries network interface %s, which is up", d->address, device_label(d),
                                *ifname);
                if (!use || strv_push(uses, n_uses, use) < 0) {
                        free(use);
                        return -ENOMEM;
                }
        }
        return 0;
}

int host_use_node_holders(const HostRoots *roots, const char *node, char ***ret) {
        _cleanup_(strv_freep) char **pids = NULL, **holders = calloc(1, sizeof(char *));
        _cleanup_(freep) char *wanted = strprintf("/dev/%s", node);
        size_t n = 0;
        int r;

        if (!holders || !wanted)
                return -ENOMEM;
        r = read_dir_at(roots->proc_fd, "proc", &pids, NULL);
        if (r < 0)
                return r;
        for (char **pid = pids; *pid; pid++) {
                _cleanup_(strv_freep) char **fds = NULL;
                _cleanup_(freep) char *fd_dir = NULL;
                bool holds = false;

                if (!isdigit((unsigned char)**pid))
                        continue;
                fd_dir = strprintf("proc/%s/fd", *pid);
                if (!fd_dir)
                        return -ENOMEM;
                if (read_dir_at(roots->proc_fd, fd_dir, &fds, NULL) < 0)
                        continue; /* the process is gone, or not ours to look at */
                for (char **fd = fds; *fd && !holds; fd++) {
                        _cleanup_(freep) char *link = strprintf("%s/%s", fd_dir, *fd), *target = NULL;

                        if (!link)
                                return -ENOMEM;
                        /* Read the link itself: its target names a path in the real root. */
                        if (read_link_at(roots->proc_fd, link, &target) >= 0 && streq(target, wanted))
                                holds = true;
                }
                if (holds) {
                        _cleanup_(freep) char *comm_path = strprintf("proc/%s/comm", *pid), *comm = NULL;
                        char *holder;

                        if (!comm_path)
                                return -ENOMEM;
                        (void)read_attr_at(roots->proc_fd, comm_path, &comm);
                        holder = strprintf("pid %s (%s)", *pid, comm ?: "?");
                        if (!holder || strv_push(&holders, &n, holder) < 0) {
                                free(holder);
                                return -ENOMEM;
                        }
                }
        }
        *ret = TAKE_PTR(holders);
        return 0;
}

int host_use_find(const HostRoots *roots, const Device *d, char ***ret) {
        _cleanup_(strv_freep) char **uses = calloc(1, sizeof(char *));
        size_t n = 0;
        int r;

        if (!uses)
                return -ENOMEM;
        if (d->boot_vga == 1) {
                char *use = strprintf("%s (%s) is the boot VGA device: the console may be on it", d->address,
                                      device_label(d));

                if (!use || strv_push(&uses, &n, use) < 0) {
                        free(use);
                        return -ENOMEM;
                }
        }
        r = find_active_links(roots, d, &uses, &n);
        if (r >= 0)
                r = find_mounts(roots, d, &uses, &n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(uses);
        return 0;
}
