/* Storage facts: every block device and its holders, the host's mounts, swap, mounted btrfs
 * filesystems, and the exclusive-open probe that catches claims sysfs does not show. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "host-usage-private.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

static void block_device_done(BlockDevice *b) {
        free(b->name);
        free(b->path);
        free(b->devnum);
        strv_free(b->holders);
        free(b->dm_name);
        free(b->dm_uuid);
        free(b->md_level);
}

void host_usage_storage_done(HostUsage *u) {
        FOREACH_ARRAY(b, u->blocks, u->n_blocks)
                block_device_done(b);
        free(u->blocks);
        free(u->blocks_unknown);
        FOREACH_ARRAY(m, u->mounts, u->n_mounts) {
                free(m->devnum);
                free(m->mountpoint);
                free(m->fstype);
                free(m->source);
        }
        free(u->mounts);
        free(u->mounts_unknown);
        FOREACH_ARRAY(s, u->swaps, u->n_swaps)
                free(s->path);
        free(u->swaps);
        free(u->swaps_unknown);
        FOREACH_ARRAY(b, u->btrfs, u->n_btrfs) {
                free(b->fsid);
                free(b->label);
                strv_free(b->members);
        }
        free(u->btrfs);
}

/* An optional attribute: NULL when the file is absent; other failures are not worth an unknown,
 * because the name, the devnum and the holders are what verdicts rest on. */
static char *optional_attr(int sysfs_fd, const char *name, const char *attr) {
        _cleanup_(freep) char *path = strprintf("sys/class/block/%s/%s", name, attr);
        char *value = NULL;

        if (path)
                (void)read_attr_at(sysfs_fd, path, &value);
        return value;
}

static int read_block_device(int sysfs_fd, const char *name, BlockDevice *b, char **ret_unknown) {
        _cleanup_(freep) char *link = strprintf("sys/class/block/%s", name), *holders_dir = NULL,
                             *partition = NULL;
        int r;

        if (!link)
                return -ENOMEM;
        b->name = strdup(name);
        if (!b->name)
                return -ENOMEM;
        r = sysfs_link_path(sysfs_fd, link, &b->path);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_unknown = strprintf("%s: %s", link, strerror(-r));
                return *ret_unknown ? 0 : -ENOMEM;
        }
        b->devnum = optional_attr(sysfs_fd, name, "dev");

        holders_dir = strprintf("%s/holders", link);
        partition = strprintf("%s/partition", link);
        if (!holders_dir || !partition)
                return -ENOMEM;
        r = read_dir_at(sysfs_fd, holders_dir, &b->holders, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && r != -ENOENT) {
                *ret_unknown = strprintf("%s: %s", holders_dir, strerror(-r));
                return *ret_unknown ? 0 : -ENOMEM;
        }
        if (!b->holders && !(b->holders = calloc(1, sizeof(char *))))
                return -ENOMEM;
        b->partition = exists_at(sysfs_fd, partition) > 0;
        b->dm_name = optional_attr(sysfs_fd, name, "dm/name");
        b->dm_uuid = optional_attr(sysfs_fd, name, "dm/uuid");
        b->md_level = optional_attr(sysfs_fd, name, "md/level");
        return 0;
}

static int read_blocks(const HostRoots *roots, HostUsage *u) {
        _cleanup_(strv_freep) char **names = NULL;
        int r;

        r = read_dir_at(roots->sysfs_fd, "sys/class/block", &names, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* A host without block devices still has the class directory. */
                u->blocks_unknown = strprintf("sys/class/block: %s", strerror(-r));
                return u->blocks_unknown ? 0 : -ENOMEM;
        }
        for (char **n = names; *n; n++) {
                BlockDevice *b = array_append(&u->blocks, &u->n_blocks, sizeof(BlockDevice));
                _cleanup_(freep) char *unknown = NULL;

                if (!b)
                        return -ENOMEM;
                r = read_block_device(roots->sysfs_fd, *n, b, &unknown);
                if (r < 0)
                        return r;
                if (unknown && !u->blocks_unknown)
                        u->blocks_unknown = TAKE_PTR(unknown);
        }
        return 0;
}

void unescape_octal(char *s) {
        char *w = s;

        for (char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                    p[3] <= '7') {
                        *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                        p += 3;
                } else
                        *w++ = *p;
        }
        *w = 0;
}

static bool mount_known(const HostUsage *u, const char *devnum, const char *mountpoint) {
        FOREACH_ARRAY(m, u->mounts, u->n_mounts)
                if (streq(m->devnum, devnum) && streq(m->mountpoint, mountpoint))
                        return true;
        return false;
}

/* mountinfo: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": field 3 is
 * major:minor, field 5 the mount point; after the lone "-" come the type and the source. */
static int parse_mountinfo(HostUsage *u, char *text) {
        char *saveptr = NULL;

        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char *tokens[64], *rest = line;
                size_t n = 0, dash = 0;
                Mount *m;

                while (n < ELEMENTSOF(tokens) && (tokens[n] = strsep(&rest, " ")))
                        n++;
                for (size_t i = 5; i < n && !dash; i++)
                        if (streq(tokens[i], "-"))
                                dash = i;
                if (!dash || dash + 2 >= n)
                        continue;
                unescape_octal(tokens[4]);
                unescape_octal(tokens[dash + 2]);
                if (mount_known(u, tokens[2], tokens[4]))
                        continue;

                m = array_append(&u->mounts, &u->n_mounts, sizeof(Mount));
                if (!m)
                        return -ENOMEM;
                m->devnum = strdup(tokens[2]);
                m->mountpoint = strdup(tokens[4]);
                m->fstype = strdup(tokens[dash + 1]);
                m->source = strdup(tokens[dash + 2]);
                if (!m->devnum || !m->mountpoint || !m->fstype || !m->source)
                        return -ENOMEM;
        }
        return 0;
}

/* The host's mount table is PID 1's: iommud's own namespace may differ (systemd sandboxing). Its
 * own is read too, so that nothing mounted only there is missed. */
static int read_mounts(const HostRoots *roots, HostUsage *u) {
        static const char *const tables[] = { "proc/1/mountinfo", "proc/self/mountinfo" };

        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                _cleanup_(freep) char *text = NULL;
                int r;

                r = read_attr_at(roots->proc_fd, tables[i], &text);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (!u->mounts_unknown &&
                            !(u->mounts_unknown = strprintf("%s: %s", tables[i], strerror(-r))))
                                return -ENOMEM;
                        continue;
                }
                r = parse_mountinfo(u, text);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* proc/swaps: a header, then "Filename Type Size Used Priority" with octal escapes in the name. */
static int read_swaps(const HostRoots *roots, HostUsage *u) {
        _cleanup_(freep) char *text = NULL;
        char *saveptr = NULL;
        bool header = true;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/swaps", &text);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                u->swaps_unknown = strprintf("proc/swaps: %s", strerror(-r));
                return u->swaps_unknown ? 0 : -ENOMEM;
        }
        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char path[4096], type[32];
                Swap *s;

                if (header) {
                        header = false;
                        continue;
                }
                if (sscanf(line, "%4095s %31s", path, type) != 2)
                        continue;
                unescape_octal(path);
                s = array_append(&u->swaps, &u->n_swaps, sizeof(Swap));
                if (!s || !(s->path = strdup(path)))
                        return -ENOMEM;
                s->file = streq(type, "file");
        }
        return 0;
}

static int read_btrfs(const HostRoots *roots, HostUsage *u) {
        _cleanup_(strv_freep) char **fsids = NULL;
        int r;

        r = read_dir_at(roots->sysfs_fd, "sys/fs/btrfs", &fsids, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : 0; /* btrfs is not loaded: nothing is mounted */
        for (char **f = fsids; *f; f++) {
                _cleanup_(freep) char *devices = strprintf("sys/fs/btrfs/%s/devices", *f),
                                      *label = strprintf("sys/fs/btrfs/%s/label", *f);
                Btrfs *b;

                if (!devices || !label)
                        return -ENOMEM;
                if (exists_at(roots->sysfs_fd, devices) <= 0)
                        continue; /* "features" and other non-filesystem entries */
                b = array_append(&u->btrfs, &u->n_btrfs, sizeof(Btrfs));
                if (!b || !(b->fsid = strdup(*f)))
                        return -ENOMEM;
                r = read_dir_at(roots->sysfs_fd, devices, &b->members, NULL);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 && !(b->members = calloc(1, sizeof(char *))))
                        return -ENOMEM;
                if (read_attr_at(roots->sysfs_fd, label, &b->label) >= 0 && b->label[0] == 0) {
                        free(b->label);
                        b->label = NULL;
                }
        }
        return 0;
}

int host_usage_read_storage(const HostRoots *roots, HostUsage *u) {
        int r;

        r = read_blocks(roots, u);
        if (r >= 0)
                r = read_mounts(roots, u);
        if (r >= 0)
                r = read_swaps(roots, u);
        if (r >= 0)
                r = read_btrfs(roots, u);
        return r;
}

const BlockDevice *host_usage_find_block(const HostUsage *u, const char *name) {
        FOREACH_ARRAY(b, u->blocks, u->n_blocks)
                if (streq(b->name, name))
                        return b;
        return NULL;
}

/* The kernel names a hidden path disk "nvme<subsystem>c<controller>n<namespace>" and the head that
 * serves it "nvme<subsystem>n<namespace>". */
char *block_multipath_head(const char *name) {
        const char *c, *n;

        if (strncmp(name, "nvme", 4) != 0)
                return NULL;
        for (c = name + 4; isdigit((unsigned char)*c); c++)
                ;
        if (c == name + 4 || *c != 'c')
                return NULL;
        for (n = c + 1; isdigit((unsigned char)*n); n++)
                ;
        if (n == c + 1 || *n != 'n' || !isdigit((unsigned char)n[1]))
                return NULL;
        return strprintf("%.*s%s", (int)(c - name), name, n);
}

int block_node_number(const HostRoots *roots, const char *path, char *buf, size_t size) {
        _cleanup_(closep) int fd = -1;
        struct stat st;

        if (strncmp(path, "/dev/", 5) != 0)
                return 0;
        fd = open_in_root(roots->dev_fd, path, O_PATH);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return 0;
        snprintf(buf, size, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
        return 1;
}

int block_device_probe_claimed(const HostRoots *roots, const char *name) {
        _cleanup_(freep) char *node = strprintf("dev/%s", name);
        int fd;

        if (!node)
                return -ENOMEM;
        /* O_EXCL without O_CREAT on a block device asks for an exclusive open; it changes nothing
         * and is let go at once (a mount racing with it in that instant would see EBUSY). */
        fd = open_in_root(roots->dev_fd, node, O_RDONLY | O_EXCL | O_NONBLOCK | O_NOCTTY);
        if (fd == -EBUSY)
                return 1;
        if (fd < 0)
                return fd;
        close(fd);
        return 0;
}
