/* Root-confined file access: every lookup goes through openat2(RESOLVE_IN_ROOT). */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "string-util.h"
#include "strv.h"

int open_in_root(int dir_fd, const char *path, int flags) {
        static bool have_openat2 = true;
        struct open_how how = {
                .flags = (uint64_t)flags | O_CLOEXEC,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd;

        if (have_openat2) {
                /* With RESOLVE_IN_ROOT the kernel answers EAGAIN when a rename or mount raced with a
                 * ".." in the path (sysfs changes under us while drivers unbind): try again. */
                for (unsigned attempt = 0; attempt < 64; attempt++) {
                        fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
                        if (fd >= 0 || errno != EAGAIN)
                                break;
                }
                if (fd >= 0)
                        return fd;
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                /* Kernels before 5.6 (or seccomp filters) lack openat2; fall back to plain openat. */
                have_openat2 = false;
        }

        fd = openat(dir_fd, path[0] == '/' ? path + 1 : path, flags | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
}

/* Reads the whole file into an allocation of exactly its size (+1 for a NUL). A page on the stack
 * takes the common case in one read. short_read_is_eof: a read that returns less than asked ends the
 * file, which is true of sysfs attributes (one show() per open) and of regular files, and saves the
 * read() that would return 0; procfs files may return short reads mid-file and must not use it. */
static int read_fd_all(int fd, size_t max_size, bool short_read_is_eof, uint8_t **ret, size_t *ret_size) {
        _cleanup_(freep) uint8_t *heap = NULL;
        uint8_t page[4096];
        size_t size = 0, allocated = sizeof(page);
        uint8_t *buf = page;

        for (;;) {
                ssize_t k;

                if (size == allocated) {
                        size_t n = allocated * 2;
                        uint8_t *p;

                        if (size > max_size)
                                return -EFBIG;
                        if (n > max_size + 1)
                                n = max_size + 1;
                        p = realloc(heap, n);
                        if (!p)
                                return -ENOMEM;
                        if (!heap)
                                memcpy(p, page, size);
                        heap = buf = p;
                        allocated = n;
                }

                k = read(fd, buf + size, allocated - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t)k;
                if (size > max_size)
                        return -EFBIG;
                if (short_read_is_eof && size < allocated)
                        break;
        }

        *ret = malloc(size + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, buf, size);
        (*ret)[size] = 0;
        *ret_size = size;
        return 0;
}

int read_binary_at(int dir_fd, const char *path, size_t max_size, uint8_t **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -1;
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t size = 0;
        int r;

        fd = open_in_root(dir_fd, path, O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd;

        /* Config space is exactly max_size at most; a longer file is read partially, not refused. */
        buf = malloc(max_size ? max_size : 1);
        if (!buf)
                return -ENOMEM;
        while (size < max_size) {
                ssize_t k = pread(fd, buf + size, max_size - size, (off_t)size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        return r;
                }
                if (k == 0)
                        break;
                size += (size_t)k;
        }

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

bool utf8_is_valid(const char *s, size_t size) {
        for (size_t i = 0; i < size;) {
                size_t n = utf8_char(s + i, size - i, NULL);

                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

static int read_text_at(int dir_fd, const char *path, bool short_read_is_eof, char **ret) {
        _cleanup_(closep) int fd = -1;
        uint8_t *buf = NULL;
        size_t size = 0;
        int r;

        fd = open_in_root(dir_fd, path, O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd;

        r = read_fd_all(fd, ATTR_MAX_SIZE, short_read_is_eof, &buf, &size);
        if (r < 0)
                return r;

        if (memchr(buf, 0, size)) {
                free(buf);
                return -EBADMSG;
        }
        /* Attributes are text; bytes that are not UTF-8 would end up in JSON and protobuf strings. */
        if (!utf8_is_valid((const char *)buf, size)) {
                free(buf);
                return -EILSEQ;
        }
        if (size > 0 && buf[size - 1] == '\n')
                buf[size - 1] = 0;

        *ret = (char *)buf;
        return 0;
}

int read_attr_at(int dir_fd, const char *path, char **ret) {
        return read_text_at(dir_fd, path, false, ret);
}

int read_sysfs_attr_at(int dir_fd, const char *path, char **ret) {
        return read_text_at(dir_fd, path, true, ret);
}

/* One name below dir_fd: no lookup that could leave the root, so the *at() call needs no openat2. */
static bool is_single_component(const char *path) {
        return *path && !strchr(path, '/') && strcmp(path, ".") != 0 && strcmp(path, "..") != 0;
}

static int open_parent_in_root(int dir_fd, const char *path, const char **ret_base) {
        _cleanup_(freep) char *parent = NULL;
        const char *slash = strrchr(path, '/');
        int fd;

        if (!slash) {
                *ret_base = path;
                fd = open_in_root(dir_fd, ".", O_PATH | O_DIRECTORY);
                return fd;
        }

        parent = strndup(path, (size_t)(slash - path));
        if (!parent)
                return -ENOMEM;
        fd = open_in_root(dir_fd, parent[0] ? parent : "/", O_PATH | O_DIRECTORY);
        if (fd < 0)
                return fd;
        *ret_base = slash + 1;
        return fd;
}

int read_link_at(int dir_fd, const char *path, char **ret) {
        _cleanup_(closep) int parent_fd = -1;
        const char *base;
        char buf[4096];
        ssize_t n;

        if (is_single_component(path))
                n = readlinkat(dir_fd, path, buf, sizeof(buf) - 1);
        else {
                parent_fd = open_parent_in_root(dir_fd, path, &base);
                if (parent_fd < 0)
                        return parent_fd;
                n = readlinkat(parent_fd, base, buf, sizeof(buf) - 1);
        }
        if (n < 0)
                return -errno;
        buf[n] = 0;

        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int read_link_basename_at(int dir_fd, const char *path, char **ret) {
        _cleanup_(freep) char *target = NULL;
        const char *base;
        int r;

        r = read_link_at(dir_fd, path, &target);
        if (r < 0)
                return r;

        /* Strip trailing slashes, then take the last component. */
        for (size_t l = strlen(target); l > 1 && target[l - 1] == '/'; l--)
                target[l - 1] = 0;
        base = strrchr(target, '/');
        base = base ? base + 1 : target;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return -EBADMSG;

        *ret = strdup(base);
        return *ret ? 0 : -ENOMEM;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Calls f for every entry of the directory but "." and "..": getdents64 straight into a stack buffer,
 * no DIR, no 32 KiB allocation per directory. */
static int list_dir(int fd, int (*f)(const char *name, void *userdata), void *userdata) {
        uint8_t buf[8192] __attribute__((aligned(8)));

        for (;;) {
                long k = syscall(SYS_getdents64, fd, buf, sizeof(buf));

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;
                for (long off = 0; off < k;) {
                        const struct dirent64 *de = (const struct dirent64 *)(buf + off);
                        int r;

                        off += de->d_reclen;
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        r = f(de->d_name, userdata);
                        if (r < 0)
                                return r;
                }
        }
}

typedef struct Strv {
        char **names;
        size_t n;
} Strv;

static int on_dir_entry_dup(const char *name, void *userdata) {
        Strv *l = userdata;

        return strv_push_dup(&l->names, &l->n, name);
}

int read_dir_fd(int fd, char ***ret, size_t *ret_n) {
        _cleanup_(strv_freep) char **names = NULL;
        Strv l = {};
        int r;

        r = list_dir(fd, on_dir_entry_dup, &l);
        names = l.names;
        if (r < 0)
                return r;

        if (l.n > 0)
                qsort(names, l.n, sizeof(char *), compare_strings);
        else {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(names);
        if (ret_n)
                *ret_n = l.n;
        return 0;
}

/* Names one after the other, and where each starts. */
typedef struct NamePool {
        char *bytes;
        size_t size, allocated;
        size_t *offsets;
        size_t n, n_allocated;
} NamePool;

static int on_dir_entry_pool(const char *name, void *userdata) {
        NamePool *p = userdata;
        size_t len = strlen(name) + 1;

        if (p->n == p->n_allocated) {
                size_t n = MAX(p->n_allocated * 2, (size_t)64);
                size_t *o = reallocarray(p->offsets, n, sizeof(*o));

                if (!o)
                        return -ENOMEM;
                p->offsets = o;
                p->n_allocated = n;
        }
        if (p->size + len > p->allocated) {
                size_t n = MAX(p->allocated * 2, p->size + len + 1024);
                char *b = realloc(p->bytes, n);

                if (!b)
                        return -ENOMEM;
                p->bytes = b;
                p->allocated = n;
        }
        memcpy(p->bytes + p->size, name, len);
        p->offsets[p->n++] = p->size;
        p->size += len;
        return 0;
}

int read_dir_fd_packed(int fd, char ***ret, size_t *ret_n) {
        NamePool p = {};
        char **names = NULL;
        int r;

        r = list_dir(fd, on_dir_entry_pool, &p);
        if (r >= 0) {
                names = malloc((p.n + 1) * sizeof(char *) + p.size);
                r = names ? 0 : -ENOMEM;
        }
        if (r >= 0) {
                char *strings = (char *)(names + p.n + 1);

                if (p.size > 0)
                        memcpy(strings, p.bytes, p.size);
                for (size_t i = 0; i < p.n; i++)
                        names[i] = strings + p.offsets[i];
                names[p.n] = NULL;
                qsort(names, p.n, sizeof(char *), compare_strings);
                *ret = names;
                if (ret_n)
                        *ret_n = p.n;
        }
        free(p.bytes);
        free(p.offsets);
        return r;
}

int read_dir_at(int dir_fd, const char *path, char ***ret, size_t *ret_n) {
        _cleanup_(closep) int fd = -1;

        fd = open_in_root(dir_fd, path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        return read_dir_fd(fd, ret, ret_n);
}

int mode_at(int dir_fd, const char *path, mode_t *ret) {
        _cleanup_(closep) int parent_fd = -1;
        const char *base;
        struct stat st;

        if (is_single_component(path)) {
                if (fstatat(dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                *ret = st.st_mode;
                return 0;
        }
        parent_fd = open_parent_in_root(dir_fd, path, &base);
        if (parent_fd < 0)
                return parent_fd;
        if (fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        *ret = st.st_mode;
        return 0;
}

int exists_at(int dir_fd, const char *path) {
        _cleanup_(closep) int parent_fd = -1;
        const char *base;
        struct stat st;

        if (is_single_component(path)) {
                if (fstatat(dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                return 1;
        }
        parent_fd = open_parent_in_root(dir_fd, path, &base);
        if (parent_fd == -ENOENT || parent_fd == -ENOTDIR)
                return 0;
        if (parent_fd < 0)
                return parent_fd;

        if (fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}

/* fsync() of the directory holding path: a rename or unlink is durable only then. */
static int fsync_parent(const char *path) {
        _cleanup_(freep) char *dir = strdup(path);
        _cleanup_(closep) int fd = -1;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

int write_file_durable(const char *path, const char *content) {
        _cleanup_(freep) char *tmp = NULL;
        _cleanup_(closep) int fd = -1;
        size_t len = strlen(content), done = 0;
        int r = 0;

        if (asprintf(&tmp, "%s.tmp", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t k = write(fd, content + done, len - done);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                done += (size_t)k;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        return fsync_parent(path);
}

int unlink_durable(const char *path) {
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : -errno;
        return fsync_parent(path);
}
