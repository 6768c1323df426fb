/* The host-usage snapshot: storage, network, framebuffers and open nodes read in one pass, and the
 * per-device lookups that core's verdicts use. */
#include "host-usage.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "host-usage-private.h"
#include "inventory-private.h"
#include "macro.h"
#include "parse.h"
#include "string-util.h"
#include "strv.h"

int sysfs_link_path(int sysfs_fd, const char *link, char **ret) {
        _cleanup_(freep) char *target = NULL;
        const char *p;
        int r;

        r = read_link_at(sysfs_fd, link, &target);
        if (r < 0)
                return r;
        p = strstr(target, "devices/");
        if (!p)
                return -EBADMSG;
        *ret = strdup(p);
        return *ret ? 0 : -ENOMEM;
}

bool host_usage_path_on_device(const char *device_path, const char *path) {
        size_t len = strlen(device_path);
        const char *rest;

        if (strncmp(path, device_path, len) != 0 || path[len] != '/')
                return false;
        /* Below a bridge lie other PCI functions: what is under them is theirs. */
        for (rest = path + len + 1; *rest;) {
                size_t n = strcspn(rest, "/");
                char component[64];

                if (n < sizeof(component)) {
                        memcpy(component, rest, n);
                        component[n] = 0;
                        if (pci_address_is_valid(component))
                                return false;
                }
                rest += n;
                rest += *rest == '/';
        }
        return true;
}

/* proc/fb: "0 EFI VGA" lines, the index then the driver's name for the framebuffer. */
static char *framebuffer_name(const char *proc_fb, unsigned index) {
        char prefix[16];
        const char *line;
        size_t n;

        if (!proc_fb)
                return NULL;
        n = (size_t)snprintf(prefix, sizeof(prefix), "%u ", index);
        for (line = proc_fb; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, prefix, n) == 0)
                        return strndup(line + n, strcspn(line + n, "\n"));
        return NULL;
}

static int read_framebuffers(const HostRoots *roots, HostUsage *u) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(freep) char *proc_fb = NULL;
        int r;

        r = read_dir_at(roots->sysfs_fd, "sys/class/graphics", &names, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : 0; /* no framebuffer support at all */
        (void)read_attr_at(roots->proc_fd, "proc/fb", &proc_fb);
        for (char **n = names; *n; n++) {
                _cleanup_(freep) char *link = strprintf("sys/class/graphics/%s", *n);
                unsigned index;
                Framebuffer *fb;

                if (!link)
                        return -ENOMEM;
                if (strncmp(*n, "fb", 2) != 0 || sscanf(*n + 2, "%u", &index) != 1)
                        continue; /* fbcon */
                fb = array_append(&u->framebuffers, &u->n_framebuffers, sizeof(Framebuffer));
                if (!fb)
                        return -ENOMEM;
                fb->index = index;
                fb->name = framebuffer_name(proc_fb, index);
                r = sysfs_link_path(roots->sysfs_fd, link, &fb->path);
                if (r == -ENOMEM)
                        return r;
                /* Firmware framebuffers sit on platform devices that the boot loader's mode made. */
                fb->firmware = fb->path && (strstr(fb->path, "efi-framebuffer") || strstr(fb->path, "vesa-framebuffer") ||
                                            strstr(fb->path, "simple-framebuffer") || strstr(fb->path, "vesafb"));
        }
        return 0;
}

int host_usage_read(const HostRoots *roots, HostUsage **ret) {
        _cleanup_(host_usage_freep) HostUsage *u = calloc(1, sizeof(HostUsage));
        int r;

        if (!u)
                return -ENOMEM;
        r = host_usage_read_storage(roots, u);
        if (r >= 0)
                r = host_usage_read_network(roots, u);
        if (r >= 0)
                r = read_framebuffers(roots, u);
        if (r >= 0)
                r = host_usage_read_open_nodes(roots, u);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}

HostUsage *host_usage_free(HostUsage *u) {
        if (!u)
                return NULL;
        host_usage_storage_done(u);
        host_usage_network_done(u);
        FOREACH_ARRAY(fb, u->framebuffers, u->n_framebuffers) {
                free(fb->name);
                free(fb->path);
        }
        free(u->framebuffers);
        host_usage_open_nodes_done(u);
        free(u);
        return NULL;
}

/* proc/driver/nvidia/gpus/<BDF>/information holds "Device Minor: N": the GPU's /dev/nvidiaN. */
static int nvidia_node(const HostRoots *roots, const char *address, char **ret) {
        _cleanup_(freep) char *path = strprintf("proc/driver/nvidia/gpus/%s/information", address), *text = NULL;
        const char *minor;
        unsigned n;

        if (!path)
                return -ENOMEM;
        if (read_attr_at(roots->proc_fd, path, &text) < 0 || !(minor = strstr(text, "Device Minor:")) ||
            sscanf(minor + strlen("Device Minor:"), "%u", &n) != 1)
                return 0;
        *ret = strprintf("nvidia%u", n);
        return *ret ? 1 : -ENOMEM;
}

/* Adds "<dir>/<name>" when dev/<dir>/<name> exists. */
static int add_node(const HostRoots *roots, char ***nodes, size_t *n, const char *dir, const char *name) {
        _cleanup_(freep) char *node = strprintf("%s/%s", dir, name), *path = NULL;

        if (!node || !(path = strprintf("dev/%s", node)))
                return -ENOMEM;
        if (exists_at(roots->dev_fd, path) <= 0)
                return 0;
        if (strv_push(nodes, n, node) < 0)
                return -ENOMEM;
        node = NULL;
        return 0;
}

int pci_device_nodes(const HostRoots *roots, const char *address, char ***ret) {
        _cleanup_(strv_freep) char **nodes = calloc(1, sizeof(char *)), **drm = NULL, **vfio = NULL;
        _cleanup_(freep) char *drm_dir = strprintf("sys/bus/pci/devices/%s/drm", address),
                             *vfio_dir = strprintf("sys/bus/pci/devices/%s/vfio-dev", address), *nvidia = NULL;
        size_t n = 0;
        int r;

        if (!nodes || !drm_dir || !vfio_dir)
                return -ENOMEM;
        if (read_dir_at(roots->sysfs_fd, drm_dir, &drm, NULL) >= 0)
                for (char **e = drm; *e; e++)
                        /* card0 and renderD128; connectors (card0-HDMI-A-1) are not nodes. */
                        if ((strncmp(*e, "card", 4) == 0 || strncmp(*e, "renderD", 7) == 0) && !strchr(*e, '-') &&
                            add_node(roots, &nodes, &n, "dri", *e) < 0)
                                return -ENOMEM;
        /* sysfs shows vfio-dev/vfioN even on kernels without the cdev (no IOMMUFD): only a node in
         * /dev is something a process can hold. */
        if (read_dir_at(roots->sysfs_fd, vfio_dir, &vfio, NULL) >= 0)
                for (char **e = vfio; *e; e++)
                        if (add_node(roots, &nodes, &n, "vfio/devices", *e) < 0)
                                return -ENOMEM;
        r = nvidia_node(roots, address, &nvidia);
        if (r < 0)
                return r;
        if (r > 0) {
                if (strv_push(&nodes, &n, nvidia) < 0)
                        return -ENOMEM;
                nvidia = NULL;
        }
        *ret = TAKE_PTR(nodes);
        return 0;
}

int pci_device_enable_count(const HostRoots *roots, const char *address) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/enable", address), *value = NULL;
        int count, r;

        if (!path)
                return -ENOMEM;
        r = read_attr_at(roots->sysfs_fd, path, &value);
        if (r < 0)
                return r;
        if (parse_int(value, &count) < 0 || count < 0)
                return -EBADMSG;
        return count;
}
