/* Kernel modules through libkmod (as modprobe would load them, blacklists applied to aliases). */
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bounded.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

static void kmod_ctx_unrefp(struct kmod_ctx **ctx) {
        if (*ctx)
                kmod_unref(*ctx);
}

static void kmod_list_unrefp(struct kmod_list **l) {
        if (*l)
                kmod_module_unref_list(*l);
}

static void kmod_module_unrefp(struct kmod_module **m) {
        if (*m)
                kmod_module_unref(*m);
}

static bool same_file(int fd, const struct stat *st) {
        struct stat fst;

        return fstat(fd, &fst) == 0 && fst.st_dev == st->st_dev && fst.st_ino == st->st_ino;
}

bool host_roots_are_this_machine(const HostRoots *roots) {
        struct stat root;

        if (stat("/", &root) < 0)
                return false;
        return same_file(roots->sysfs_fd, &root) && same_file(roots->proc_fd, &root) &&
               same_file(roots->dev_fd, &root);
}

/* sys/module/ spells every module with '_', whatever modprobe was given. */
static char *module_dir_name(const char *name) {
        char *s = strprintf("sys/module/%s", name);

        for (char *p = s ? s + strlen("sys/module/") : NULL; p && *p; p++)
                if (*p == '-')
                        *p = '_';
        return s;
}

static bool module_names_equal(const char *a, const char *b) {
        for (; *a && *b; a++, b++)
                if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
                        return false;
        return *a == *b;
}

static char *not_this_machine(const HostRoots *roots, const char *what) {
        return strprintf("%s, but iommud loads modules only on the machine it runs on, and its roots are not / "
                         "(sysfs root %s)",
                         what, roots->sysfs_path);
}

typedef struct Insert {
        char *name;
} Insert;

static void insert_free(void *arg) {
        Insert *i = arg;

        free(i->name);
        free(i);
}

/* On its own thread: a module's init can take long, and it runs in the caller's insert_module(). */
static int insert_run(void *arg) {
        Insert *i = arg;
        _cleanup_(kmod_ctx_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_list_unrefp) struct kmod_list *list = NULL;
        struct kmod_list *l;
        int r;

        ctx = kmod_new(NULL, NULL);
        if (!ctx)
                return -ENOMEM;
        r = kmod_module_new_from_lookup(ctx, i->name, &list);
        if (r < 0)
                return r;
        if (!list)
                return -ENOENT;
        kmod_list_foreach(l, list) {
                _cleanup_(kmod_module_unrefp) struct kmod_module *m = kmod_module_get_module(l);

                r = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY, NULL, NULL, NULL, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        return -EPERM; /* blacklisted */
        }
        return 0;
}

static int insert(const char *name, uint64_t timeout_usec) {
        _cleanup_(freep) char *what = strprintf("load module %s", name);
        Insert *i = calloc(1, sizeof(*i));

        if (!i || !what || !(i->name = strdup(name))) {
                free(i);
                return -ENOMEM;
        }
        return run_bounded(insert_run, i, insert_free, what, timeout_usec);
}

static char *describe_insert_error(const char *name, int r) {
        if (r == BOUNDED_PENDING)
                return strprintf("the kernel did not return from loading module %s in time; it is still loading",
                                 name);
        if (r == -ENOENT)
                return strprintf("no module %s exists for the running kernel", name);
        if (r == -EPERM)
                return strprintf("module %s is blacklisted", name);
        return strprintf("module %s could not be loaded: %s", name, strerror(-r));
}

int module_load(const HostRoots *roots, const char *name, uint64_t timeout_usec, char **ret_message) {
        _cleanup_(freep) char *dir = module_dir_name(name), *what = NULL;
        int r;

        if (!dir)
                return -ENOMEM;
        if (exists_at(roots->sysfs_fd, dir) > 0)
                return 0;
        if (!host_roots_are_this_machine(roots)) {
                what = strprintf("module %s would be loaded (%s does not exist below the sysfs root)", name, dir);
                *ret_message = what ? not_this_machine(roots, what) : NULL;
                return -EOPNOTSUPP;
        }
        r = insert(name, timeout_usec);
        if (r < 0)
                *ret_message = describe_insert_error(name, r);
        return r;
}

/* The modules a device's modalias resolves to, as udev would load them at boot. */
static int modules_for_alias(const char *modalias, char ***ret) {
        _cleanup_(kmod_ctx_unrefp) struct kmod_ctx *ctx = kmod_new(NULL, NULL);
        _cleanup_(kmod_list_unrefp) struct kmod_list *list = NULL;
        _cleanup_(strv_freep) char **names = calloc(1, sizeof(char *));
        struct kmod_list *l;
        size_t n = 0;
        int r;

        if (!ctx || !names)
                return -ENOMEM;
        r = kmod_module_new_from_lookup(ctx, modalias, &list);
        if (r < 0)
                return r;
        kmod_list_foreach(l, list) {
                _cleanup_(kmod_module_unrefp) struct kmod_module *m = kmod_module_get_module(l);

                r = strv_push_dup(&names, &n, kmod_module_get_name(m));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(names);
        return 0;
}

int module_load_for_driver(const HostRoots *roots, const char *address, const char *driver, uint64_t timeout_usec,
                           char **ret_message) {
        _cleanup_(freep) char *dir = strprintf("sys/bus/pci/drivers/%s", driver), *alias_path = NULL,
                              *modalias = NULL, *what = NULL;
        _cleanup_(strv_freep) char **modules = NULL;
        char *only[2] = {};
        int r;

        if (!dir)
                return -ENOMEM;
        if (exists_at(roots->sysfs_fd, dir) > 0)
                return 0;
        alias_path = strprintf("sys/bus/pci/devices/%s/modalias", address);
        if (!alias_path)
                return -ENOMEM;
        r = read_attr_at(roots->sysfs_fd, alias_path, &modalias);
        if (r < 0) {
                *ret_message = strprintf("driver %s is not registered, and the modalias of %s cannot be read: %s",
                                         driver, address, strerror(-r));
                return r;
        }
        if (!host_roots_are_this_machine(roots)) {
                what = strprintf("driver %s is not registered and the module for %s (%s) would be loaded", driver,
                                 address, modalias);
                *ret_message = what ? not_this_machine(roots, what) : NULL;
                return -EOPNOTSUPP;
        }

        r = modules_for_alias(modalias, &modules);
        if (r < 0 || !modules[0]) {
                *ret_message = strprintf("driver %s is not registered, and no module of the running kernel "
                                         "matches %s (%s)",
                                         driver, address, modalias);
                return r < 0 ? r : -ENOENT;
        }
        /* Several modules may claim the device; only the one that was its driver is wanted. */
        for (char **m = modules; *m; m++)
                if (module_names_equal(*m, driver))
                        only[0] = *m;
        for (char **m = only[0] ? only : modules; *m; m++) {
                r = insert(*m, timeout_usec);
                if (r < 0) {
                        *ret_message = describe_insert_error(*m, r);
                        return r;
                }
        }
        if (exists_at(roots->sysfs_fd, dir) <= 0) {
                *ret_message = strprintf("loading the modules for %s (%s) registered no PCI driver %s", address,
                                         modalias, driver);
                return -ENOENT;
        }
        return 0;
}
