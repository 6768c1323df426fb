/* The kernel's binding answers on a fixture tree (see fake-kernel.h): FIFOs and one thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-kernel.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

typedef struct Fifo {
        char *path;
        char *driver; /* NULL: drivers_probe */
        int fd, keep_open_fd;
        bool stalled;
} Fifo;

typedef struct Preference {
        char *address, *driver;
} Preference;

struct FakeKernel {
        FakeTree *tree;
        pthread_t thread;
        pthread_mutex_t lock;
        bool stop;
        Fifo *fifos;
        size_t n_fifos;
        Preference *preferences;
        size_t n_preferences;
};

static char *tree_path(FakeKernel *k, const char *path) {
        char *p = strprintf("%s/%s", k->tree->root, path);

        assert_non_null(p);
        return p;
}

static void fifo_open(Fifo *f) {
        f->fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(f->fd >= 0);
        /* A writer of our own, so that the reader never sees the hang-up of the last real writer. */
        f->keep_open_fd = open(f->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(f->keep_open_fd >= 0);
}

static void add_fifo(FakeKernel *k, const char *path, const char *driver) {
        Fifo *f = array_append(&k->fifos, &k->n_fifos, sizeof(Fifo));

        assert_non_null(f);
        f->path = tree_path(k, path);
        f->driver = driver ? strdup(driver) : NULL;
        (void)unlink(f->path);
        assert_int_equal(mkfifo(f->path, 0600), 0);
        fifo_open(f);
}

/* "../../../bus/pci/drivers/X" from the device's directory, as sysfs links it. */
static char *driver_link_target(FakeKernel *k, const char *device_dir, const char *driver) {
        _cleanup_(freep) char *sys = tree_path(k, "sys"), *sys_real = realpath(sys, NULL);
        char *target = strdup("");

        assert_non_null(sys_real);
        assert_true(strncmp(device_dir, sys_real, strlen(sys_real)) == 0);
        for (const char *p = device_dir + strlen(sys_real); *p; p++)
                if (*p == '/') {
                        char *longer = strprintf("%s../", target);

                        free(target);
                        target = longer;
                }
        {
                char *full = strprintf("%sbus/pci/drivers/%s", target, driver);

                free(target);
                target = full;
        }
        return target;
}

static void set_enable(FakeKernel *k, const char *address, const char *count);

static void bind(FakeKernel *k, const char *address, const char *driver) {
        _cleanup_(freep) char *dev = NULL, *dir = NULL, *link = NULL, *target = NULL, *group_link = NULL,
                              *group = NULL, *node = NULL, *driver_dir = NULL;
        struct stat st;

        driver_dir = tree_path(k, "sys/bus/pci/drivers");
        {
                char *d = strprintf("%s/%s", driver_dir, driver);

                free(driver_dir);
                driver_dir = d;
        }
        if (stat(driver_dir, &st) < 0)
                return; /* not registered: nothing binds */
        dev = strprintf("%s/sys/bus/pci/devices/%s", k->tree->root, address);
        dir = realpath(dev, NULL);
        if (!dir)
                return;
        link = strprintf("%s/driver", dir);
        target = driver_link_target(k, dir, driver);
        assert_int_equal(symlink(target, link), 0);
        /* A host driver enables the device when it binds; vfio-pci only when a user opens it. */
        set_enable(k, address, strstr(driver, "vfio") ? "0\n" : "1\n");

        if (strstr(driver, "vfio")) {
                group_link = strprintf("sys/bus/pci/devices/%s/iommu_group", address);
                assert_int_equal(read_link_basename_at(fake_tree_roots(k->tree)->sysfs_fd, group_link, &group), 0);
                node = strprintf("dev/vfio/%s", group);
                fake_tree_write(k->tree, node, "");
        }
}

static void set_enable(FakeKernel *k, const char *address, const char *count) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/enable", address);

        fake_tree_write(k->tree, path, count);
}

static char *read_override(FakeKernel *k, const char *address) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver_override", address);
        char *value = NULL;

        if (read_attr_at(fake_tree_roots(k->tree)->sysfs_fd, path, &value) < 0)
                return NULL;
        if (value[0] == 0 || streq(value, "(null)"))
                value = (free(value), NULL);
        return value;
}

static bool bound(FakeKernel *k, const char *address, char **ret_driver) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver", address);

        *ret_driver = NULL;
        return read_link_basename_at(fake_tree_roots(k->tree)->sysfs_fd, path, ret_driver) >= 0;
}

static void handle(FakeKernel *k, const Fifo *f, const char *address) {
        _cleanup_(freep) char *driver = NULL, *override = NULL, *link = NULL;

        if (f->driver) {
                /* unbind: only from the driver it is bound to, as the kernel checks. */
                if (bound(k, address, &driver) && streq(driver, f->driver)) {
                        link = strprintf("%s/sys/bus/pci/devices/%s/driver", k->tree->root, address);
                        assert_int_equal(unlink(link), 0);
                        set_enable(k, address, "0\n");
                }
                return;
        }
        if (bound(k, address, &driver))
                return;
        override = read_override(k, address);
        if (override) {
                if (!streq(override, "none"))
                        bind(k, address, override);
                return;
        }
        FOREACH_ARRAY(p, k->preferences, k->n_preferences)
                if (streq(p->address, address) && p->driver)
                        bind(k, address, p->driver);
}

static void drain(FakeKernel *k, Fifo *f) {
        char buf[256];
        ssize_t n;

        while ((n = read(f->fd, buf, sizeof(buf) - 1)) > 0) {
                char *saveptr = NULL;

                buf[n] = 0;
                for (char *line = strtok_r(buf, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr))
                        handle(k, f, line);
        }
}

static void *kernel_thread(void *userdata) {
        FakeKernel *k = userdata;

        for (;;) {
                struct pollfd fds[64];
                size_t n = 0;

                pthread_mutex_lock(&k->lock);
                if (k->stop) {
                        pthread_mutex_unlock(&k->lock);
                        return NULL;
                }
                for (size_t i = 0; i < k->n_fifos && n < ELEMENTSOF(fds); i++)
                        fds[n++] = (struct pollfd){ .fd = k->fifos[i].stalled ? -1 : k->fifos[i].fd, .events = POLLIN };
                pthread_mutex_unlock(&k->lock);

                (void)poll(fds, n, 5);

                pthread_mutex_lock(&k->lock);
                for (size_t i = 0; i < n; i++)
                        if (fds[i].fd >= 0 && (fds[i].revents & POLLIN) && !k->fifos[i].stalled)
                                drain(k, &k->fifos[i]);
                pthread_mutex_unlock(&k->lock);
        }
}

FakeKernel *fake_kernel_start(FakeTree *t) {
        _cleanup_(strv_freep) char **drivers = NULL;
        FakeKernel *k = calloc(1, sizeof(*k));

        assert_non_null(k);
        /* A stalled writer may write after the last reader went: EPIPE, not death. */
        signal(SIGPIPE, SIG_IGN);
        k->tree = t;
        pthread_mutex_init(&k->lock, NULL);
        add_fifo(k, "sys/bus/pci/drivers_probe", NULL);
        if (read_dir_at(fake_tree_roots(t)->sysfs_fd, "sys/bus/pci/drivers", &drivers, NULL) >= 0)
                for (char **d = drivers; *d; d++) {
                        _cleanup_(freep) char *path = strprintf("sys/bus/pci/drivers/%s/unbind", *d);

                        add_fifo(k, path, *d);
                }
        assert_int_equal(pthread_create(&k->thread, NULL, kernel_thread, k), 0);
        return k;
}

void fake_kernel_prefer(FakeKernel *k, const char *address, const char *driver) {
        Preference *p;

        pthread_mutex_lock(&k->lock);
        p = array_append(&k->preferences, &k->n_preferences, sizeof(Preference));
        assert_non_null(p);
        p->address = strdup(address);
        p->driver = driver ? strdup(driver) : NULL;
        pthread_mutex_unlock(&k->lock);
}

void fake_kernel_stall_unbind(FakeKernel *k, const char *driver) {
        pthread_mutex_lock(&k->lock);
        FOREACH_ARRAY(f, k->fifos, k->n_fifos)
                if (f->driver && streq(f->driver, driver)) {
                        /* No reader: a writer's open() waits, as the kernel's unbind would. */
                        f->stalled = true;
                        closep(&f->fd);
                        closep(&f->keep_open_fd);
                }
        pthread_mutex_unlock(&k->lock);
}

void fake_kernel_stop(FakeKernel *k) {
        pthread_mutex_lock(&k->lock);
        k->stop = true;
        pthread_mutex_unlock(&k->lock);
        assert_int_equal(pthread_join(k->thread, NULL), 0);

        FOREACH_ARRAY(f, k->fifos, k->n_fifos) {
                if (f->stalled) {
                        /* Let the writer that waited finish: a reader appears, its write lands. */
                        struct timespec pause = { .tv_nsec = 50 * 1000 * 1000 };

                        fifo_open(f);
                        nanosleep(&pause, NULL);
                }
                closep(&f->fd);
                closep(&f->keep_open_fd);
                (void)unlink(f->path);
                free(f->path);
                free(f->driver);
        }
        free(k->fifos);
        FOREACH_ARRAY(p, k->preferences, k->n_preferences) {
                free(p->address);
                free(p->driver);
        }
        free(k->preferences);
        pthread_mutex_destroy(&k->lock);
        free(k);
}
