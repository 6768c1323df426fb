/* Which processes hold which device nodes open: one pass over proc/<pid>/fd. Reading another
 * user's fd table needs ptrace access (CAP_SYS_PTRACE for root), so every process that cannot be
 * read is counted, and a live host scanned without that capability is "unknown", never "free". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "host-usage-private.h"
#include "macro.h"
#include "parse.h"
#include "string-util.h"
#include "strv.h"

typedef struct Held {
        char *node;
        int pid;
} Held;

void host_usage_open_nodes_done(HostUsage *u) {
        FOREACH_ARRAY(o, u->open_nodes, u->n_open_nodes) {
                free(o->node);
                FOREACH_ARRAY(h, o->holders, o->n_holders)
                        free(h->comm);
                free(o->holders);
        }
        free(u->open_nodes);
        free(u->open_nodes_unknown);
}

/* Terminals, pseudo-terminals and the memory and random devices are open everywhere and never
 * belong to a PCI device; leaving them out keeps the table small. */
static bool node_is_interesting(const char *dev) {
        static const char *const common[] = { "/dev/pts/", "/dev/tty", "/dev/null", "/dev/zero", "/dev/random",
                                              "/dev/urandom", "/dev/ptmx", "/dev/kmsg", "/dev/shm/", "/dev/log",
                                              "/dev/console", "/dev/full", "/dev/mqueue/", "/dev/hugepages/" };

        for (size_t i = 0; i < ELEMENTSOF(common); i++)
                if (strncmp(dev, common[i], strlen(common[i])) == 0)
                        return false;
        return true;
}

static int held_add(Held **held, size_t *n_held, const char *node, int pid) {
        Held *h = array_append(held, n_held, sizeof(Held));

        if (!h || !(h->node = strdup(node)))
                return -ENOMEM;
        h->pid = pid;
        return 0;
}

/* Returns 0 when read, -errno when the fd table could not be (ENOENT: the process is gone). A link
 * names the node as seen from the reader's root: a process of another mount namespace (iommud's
 * own unit has one) or of a chroot may show "/srv/chroot/dev/vfio/12", so the part from "/dev/" on
 * is what is kept. On the live host every device node held is also recorded by its number
 * ("block:254:1", "char:245:12"), which no naming can hide: /dev/mapper/vg0-lv is a node of its
 * own without udev, and a node may be a copy made with mknod. */
static int scan_process(int proc_fd, const char *pid, bool live, Held **held, size_t *n_held) {
        _cleanup_(freep) char *path = strprintf("proc/%s/fd", pid);
        _cleanup_(closedirp) DIR *d = NULL;
        int fd, parsed;

        if (!path)
                return -ENOMEM;
        if (parse_int(pid, &parsed) < 0)
                return 0;
        fd = open_in_root(proc_fd, path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                char target[4096], number[64];
                const char *dev;
                struct stat st;
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (k < 0) {
                        if (errno == ENOENT)
                                continue; /* closed meanwhile */
                        return -errno; /* listed but not readable: this process is not inspected */
                }
                target[k] = 0;
                dev = strstr(target, "/dev/");
                if (!dev || !node_is_interesting(dev))
                        continue;
                if (live) {
                        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !(S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)))
                                continue; /* closed meanwhile, or a file that merely has /dev/ in its path */
                        snprintf(number, sizeof(number), "%s:%u:%u", S_ISBLK(st.st_mode) ? "block" : "char",
                                 major(st.st_rdev), minor(st.st_rdev));
                        if (held_add(held, n_held, number, parsed) < 0)
                                return -ENOMEM;
                }
                if (held_add(held, n_held, dev, parsed) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int compare_held(const void *a, const void *b) {
        const Held *x = a, *y = b;
        int c = strcmp(x->node, y->node);

        return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}

static void describe_process(int proc_fd, int pid, NodeHolder *h) {
        _cleanup_(freep) char *comm_path = strprintf("proc/%d/comm", pid), *status_path = strprintf("proc/%d/status", pid),
                             *status = NULL;
        char *uid;

        h->pid = pid;
        h->uid = -1;
        if (comm_path)
                (void)read_attr_at(proc_fd, comm_path, &h->comm);
        if (status_path && read_attr_at(proc_fd, status_path, &status) >= 0 && (uid = strstr(status, "\nUid:")))
                (void)sscanf(uid + 5, "%d", &h->uid);
}

/* Whether this process may read every fd table: CAP_SYS_PTRACE in its effective set. */
static bool have_ptrace_capability(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &header, data) < 0)
                return false;
        return data[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective & CAP_TO_MASK(CAP_SYS_PTRACE);
}

int host_usage_read_open_nodes(const HostRoots *roots, HostUsage *u) {
        _cleanup_(strv_freep) char **pids = NULL;
        _cleanup_(freep) char *first_failure = NULL;
        Held *held = NULL;
        size_t n_held = 0, failed = 0;
        bool blind, live = host_roots_proc_is_live(roots);
        int r;

        r = read_dir_at(roots->proc_fd, "proc", &pids, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                u->open_nodes_unknown = strprintf("proc: %s", strerror(-r));
                return u->open_nodes_unknown ? 0 : -ENOMEM;
        }
        for (char **pid = pids; *pid; pid++) {
                if (!isdigit((unsigned char)**pid))
                        continue;
                r = scan_process(roots->proc_fd, *pid, live, &held, &n_held);
                if (r == -ENOMEM)
                        goto finish;
                if (r < 0 && r != -ENOENT) {
                        failed++;
                        if (!first_failure && !(first_failure = strprintf("proc/%s/fd: %s", *pid, strerror(-r)))) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }

        /* Without CAP_SYS_PTRACE another user's processes are hidden or unreadable: unseen either way. */
        blind = live && !have_ptrace_capability();
        if (failed > 0)
                u->open_nodes_unknown = strprintf("%zu process%s could not be inspected (%s%s)", failed,
                                                  failed == 1 ? "" : "es", first_failure,
                                                  failed > 1 ? ", and others" : "");
        else if (blind)
                u->open_nodes_unknown = strdup("iommud lacks CAP_SYS_PTRACE, so the open files of other users' "
                                               "processes cannot be read");
        if ((failed > 0 || blind) && !u->open_nodes_unknown) {
                r = -ENOMEM;
                goto finish;
        }

        if (n_held > 0)
                qsort(held, n_held, sizeof(Held), compare_held);
        for (size_t i = 0; i < n_held; i++) {
                OpenNode *o = u->n_open_nodes > 0 ? &u->open_nodes[u->n_open_nodes - 1] : NULL;
                NodeHolder *h;

                if (!o || !streq(o->node, held[i].node)) {
                        o = array_append(&u->open_nodes, &u->n_open_nodes, sizeof(OpenNode));
                        if (!o) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        o->node = TAKE_PTR(held[i].node);
                } else if (o->holders[o->n_holders - 1].pid == held[i].pid)
                        continue; /* the same process holds it twice */
                h = array_append(&o->holders, &o->n_holders, sizeof(NodeHolder));
                if (!h) {
                        r = -ENOMEM;
                        goto finish;
                }
                describe_process(roots->proc_fd, held[i].pid, h);
        }
        r = 0;
finish:
        FOREACH_ARRAY(h, held, n_held)
                free(h->node);
        free(held);
        return r;
}

const NodeHolder *host_usage_node_holders(const HostUsage *u, const char *node, size_t *ret_n) {
        size_t lo = 0, hi = u->n_open_nodes;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(u->open_nodes[mid].node, node);

                if (c == 0) {
                        *ret_n = u->open_nodes[mid].n_holders;
                        return u->open_nodes[mid].holders;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_n = 0;
        return NULL;
}

int host_usage_holders_merge(const HostUsage *u, const char *const *keys, size_t n_keys, NodeHolder **ret,
                             size_t *ret_n) {
        NodeHolder *all = NULL;
        size_t n_all = 0;

        for (size_t k = 0; k < n_keys; k++) {
                const NodeHolder *holders;
                size_t n;

                if (!keys[k])
                        continue;
                holders = host_usage_node_holders(u, keys[k], &n);
                for (size_t i = 0; i < n; i++) {
                        bool seen = false;

                        for (size_t j = 0; j < n_all && !seen; j++)
                                seen = all[j].pid == holders[i].pid;
                        if (seen)
                                continue;
                        if (!array_append(&all, &n_all, sizeof(NodeHolder))) {
                                free(all);
                                return -ENOMEM;
                        }
                        all[n_all - 1] = holders[i];
                }
        }
        *ret = all;
        *ret_n = n_all;
        return 0;
}

int host_usage_device_holders(const HostRoots *roots, const HostUsage *u, const char *path, NodeHolder **ret,
                              size_t *ret_n) {
        _cleanup_(closep) int fd = -1;
        const char *keys[2] = { path, NULL };
        char number[64];
        struct stat st;

        fd = open_in_root(roots->dev_fd, path, O_PATH);
        if (fd >= 0 && fstat(fd, &st) >= 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
                snprintf(number, sizeof(number), "%s:%u:%u", S_ISBLK(st.st_mode) ? "block" : "char",
                         major(st.st_rdev), minor(st.st_rdev));
                keys[1] = number;
        }
        return host_usage_holders_merge(u, keys, ELEMENTSOF(keys), ret, ret_n);
}
