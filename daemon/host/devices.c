/* Reading PCI devices: sysfs attributes, driver links, host interfaces, and config space via libpci. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pci/pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "intern.h"
#include "inventory-private.h"
#include "macro.h"
#include "parse.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"

#define PCI_CONFIG_MAX 4096
#define PCI_CONFIG_CONVENTIONAL 256

/* PCI Express capability: Device/Port Type field (bits 7:4 of the capabilities register). */
#define PCIE_FLAGS_TYPE(flags) (((flags) >> 4) & 0xf)

bool pci_address_is_valid(const char *s) {
        /* domain (4 or more hex digits) ':' bus (2) ':' slot (2) '.' function (1, 0-7) */
        size_t n = strspn(s, "0123456789abcdef");

        if (n < 4 || s[n] != ':')
                return false;
        s += n + 1;
        if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) || s[2] != ':')
                return false;
        if (!isxdigit((unsigned char)s[3]) || !isxdigit((unsigned char)s[4]) || s[5] != '.')
                return false;
        if (s[6] < '0' || s[6] > '7' || s[7] != 0)
                return false;
        /* sysfs prints lowercase hex; reject uppercase so that addresses compare as strings. */
        for (const char *p = s; *p; p++)
                if (isupper((unsigned char)*p))
                        return false;
        return true;
}

/* VFIO variant drivers are named <vendor>_vfio_pci or <vendor>-vfio-pci (mlx5_vfio_pci,
 * hisi_acc_vfio_pci, pds_vfio_pci, virtio_vfio_pci, nvgrace_gpu_vfio_pci). */
bool driver_is_vfio(const char *driver) {
        return driver && (strcmp(driver, "vfio-pci") == 0 || strstr(driver, "vfio_pci") ||
                          strstr(driver, "vfio-pci"));
}

bool driver_is_dma_managed(const char *driver) {
        if (!driver)
                return true;
        return driver_is_vfio(driver) || strcmp(driver, "pci-stub") == 0 || strcmp(driver, "pcieport") == 0;
}


typedef struct DeviceReader {
        const HostRoots *roots;
        struct pci_access *pacc;
        const HostListing *listing; /* NULL: ask the file system */
        Device *device;
        int dir_fd;
        char *prefix; /* "sys/bus/pci/devices/<addr>/" for error messages */
        /* The device directory's entries, listed once: what is not there is never opened. NULL
         * when the listing failed (then every file is tried). */
        char **entries;
        size_t n_entries;
} DeviceReader;

bool sorted_strv_contains(char *const *l, size_t n, const char *name) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(name, l[mid]);

                if (c == 0)
                        return true;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return false;
}

void host_listing_done(HostListing *l) {
        strv_free(l->groups);
        strv_free(l->vfio);
        *l = (HostListing){};
}

/* Whether the device directory has the entry; the first component of a path counts. */
static bool reader_has(DeviceReader *r, const char *name) {
        char first[NAME_MAX + 1];
        size_t len = strcspn(name, "/");

        if (!r->entries)
                return true;
        if (len > NAME_MAX)
                return false;
        memcpy(first, name, len);
        first[len] = 0;
        return sorted_strv_contains(r->entries, r->n_entries, first);
}

static char *reader_path(DeviceReader *r, const char *attr, char *buf, size_t size) {
        snprintf(buf, size, "%s%s", r->prefix, attr);
        return buf;
}

/* Reads an attribute; a missing file is an error unless optional is set, in which case it yields
 * -ENOENT quietly. */
static int reader_attr(DeviceReader *r, const char *attr, bool optional, char **ret) {
        char path[PATH_MAX];
        int k;

        k = reader_has(r, attr) ? read_sysfs_attr_at(r->dir_fd, attr, ret) : -ENOENT;
        if (k == -ENOENT && optional)
                return k;
        if (k < 0)
                item_errors_add(&r->device->errors, reader_path(r, attr, path, sizeof(path)), k, "cannot read");
        return k;
}

/* Reads "0x8086"-style attributes into *ret, leaving -1 when unreadable or out of range. */
static void reader_hex(DeviceReader *r, const char *attr, uint32_t max, int32_t *ret) {
        _cleanup_(freep) char *s = NULL;
        char path[PATH_MAX];
        uint32_t v;

        *ret = -1;
        if (reader_attr(r, attr, false, &s) < 0)
                return;
        if (strncmp(s, "0x", 2) != 0 || parse_u32(s, 16, &v) < 0 || v > max) {
                item_errors_add(&r->device->errors, reader_path(r, attr, path, sizeof(path)), 0,
                                "invalid value '%s' (expected a hex number up to 0x%x)", s, max);
                return;
        }
        *ret = (int32_t)v;
}

static void reader_link_basename(DeviceReader *r, const char *link, char **ret) {
        char path[PATH_MAX];
        int k;

        *ret = NULL;
        k = reader_has(r, link) ? read_link_basename_at(r->dir_fd, link, ret) : -ENOENT;
        if (k < 0 && k != -ENOENT)
                item_errors_add(&r->device->errors, reader_path(r, link, path, sizeof(path)), k,
                                "cannot read link");
}

static void read_identity(DeviceReader *r) {
        Device *d = r->device;

        reader_hex(r, "vendor", 0xffff, &d->vendor_id);
        reader_hex(r, "device", 0xffff, &d->device_id);
        reader_hex(r, "subsystem_vendor", 0xffff, &d->subsystem_vendor_id);
        reader_hex(r, "subsystem_device", 0xffff, &d->subsystem_device_id);
        reader_hex(r, "class", 0xffffff, &d->class_code);
        reader_hex(r, "revision", 0xff, &d->revision);
}

/* pci.ids names, interned; NULL when the database does not know the ID (never a made-up "Device 1234"). */
static char *lookup_name(struct pci_access *pacc, int flags, int a, int b, int c, int d) {
        char buf[256], *name;

        name = pci_lookup_name(pacc, buf, sizeof(buf), flags | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB, a, b,
                               c, d);
        return (char *)intern(name);
}

/* Replaces a freshly read string by its interned copy. */
static void intern_field(char **field) {
        char *s = *field;

        *field = (char *)intern(s);
        free(s);
}

/* The empty list every device without interfaces shares (device_done() leaves it alone). */
static char *empty_strv[] = { NULL };

static void finish_list(char ***l) {
        if (!*l)
                *l = empty_strv;
}

static void free_list(char **l) {
        if (l != empty_strv)
                strv_free(l);
}

static void read_names(DeviceReader *r) {
        Device *d = r->device;

        if (d->vendor_id >= 0)
                d->vendor_name = lookup_name(r->pacc, PCI_LOOKUP_VENDOR, d->vendor_id, 0, 0, 0);
        if (d->vendor_id >= 0 && d->device_id >= 0)
                d->device_name = lookup_name(r->pacc, PCI_LOOKUP_DEVICE, d->vendor_id, d->device_id, 0, 0);
        if (d->subsystem_vendor_id > 0)
                d->subsystem_vendor_name = lookup_name(r->pacc, PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_VENDOR,
                                                       d->subsystem_vendor_id, 0, 0, 0);
        if (d->vendor_id >= 0 && d->device_id >= 0 && d->subsystem_vendor_id > 0 && d->subsystem_device_id >= 0)
                d->subsystem_name = lookup_name(r->pacc, PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_DEVICE, d->vendor_id,
                                                d->device_id, d->subsystem_vendor_id, d->subsystem_device_id);
        if (d->class_code >= 0)
                d->class_name = lookup_name(r->pacc, PCI_LOOKUP_CLASS, d->class_code >> 8, 0, 0, 0);
}

/* The driver link must lead to bus/pci/drivers/<name>; anything else is not a PCI driver binding. */
static void read_driver(DeviceReader *r) {
        _cleanup_(freep) char *target = NULL;
        Device *d = r->device;
        char path[PATH_MAX];
        const char *name;
        int k;

        k = reader_has(r, "driver") ? read_link_at(r->dir_fd, "driver", &target) : -ENOENT;
        if (k == -ENOENT)
                return;
        if (k < 0) {
                item_errors_add(&d->errors, reader_path(r, "driver", path, sizeof(path)), k, "cannot read link");
                return;
        }
        name = strstr(target, "bus/pci/drivers/");
        if (!name || !*(name += strlen("bus/pci/drivers/")) || strchr(name, '/')) {
                item_errors_add(&d->errors, reader_path(r, "driver", path, sizeof(path)), 0,
                                "link target '%s' is not a PCI driver (bus/pci/drivers/NAME)", target);
                return;
        }
        d->driver = (char *)intern(name);
}

static void read_binding(DeviceReader *r) {
        _cleanup_(freep) char *override = NULL, *group = NULL, *numa = NULL, *group_dir = NULL;
        Device *d = r->device;
        char path[PATH_MAX];
        uint32_t id;
        int k;

        read_driver(r);
        d->vfio_bound = driver_is_vfio(d->driver);

        if (reader_attr(r, "driver_override", false, &override) >= 0 && strcmp(override, "(null)") != 0 &&
            override[0] != 0)
                d->driver_override = TAKE_PTR(override);

        d->group = -1;
        reader_link_basename(r, "iommu_group", &group);
        if (group) {
                if (parse_u32(group, 10, &id) < 0 || id > INT32_MAX)
                        item_errors_add(&d->errors, reader_path(r, "iommu_group", path, sizeof(path)), 0,
                                        "link target '%s' is not a group number", group);
                else if (r->listing && r->listing->groups ? !sorted_strv_contains(r->listing->groups,
                                                                                 r->listing->n_groups, group)
                                                          : asprintf(&group_dir, "sys/kernel/iommu_groups/%u", id) >= 0 &&
                                                                    exists_at(r->roots->sysfs_fd, group_dir) <= 0)
                        item_errors_add(&d->errors, reader_path(r, "iommu_group", path, sizeof(path)), 0,
                                        "links to group %u, which does not exist", id);
                else
                        d->group = (int)id;
        }

        /* The IOMMU's own PCI function (AMD-Vi, virtio-iommu) has an iommu/ directory holding its
         * class device instead of a link: it is translated by no unit. */
        k = reader_has(r, "iommu") ? read_link_basename_at(r->dir_fd, "iommu", &d->iommu_unit) : -ENOENT;
        intern_field(&d->iommu_unit);
        if (k < 0 && k != -ENOENT && !(k == -EINVAL && exists_at(r->dir_fd, "iommu/.") > 0))
                item_errors_add(&d->errors, reader_path(r, "iommu", path, sizeof(path)), k, "cannot read link");

        /* Kernels without CONFIG_NUMA have no numa_node file: that is "no node", not an error. */
        d->numa_node = -1;
        if (reader_attr(r, "numa_node", true, &numa) >= 0 && parse_int(numa, &d->numa_node) < 0) {
                item_errors_add(&d->errors, reader_path(r, "numa_node", path, sizeof(path)), 0,
                                "invalid value '%s'", numa);
                d->numa_node = -1;
        }
}

static int read_optional_count(DeviceReader *r, const char *attr) {
        _cleanup_(freep) char *s = NULL;
        char path[PATH_MAX];
        uint32_t v;

        if (reader_attr(r, attr, false, &s) < 0)
                return -1;
        if (parse_u32(s, 10, &v) < 0 || v > 0xffff) {
                item_errors_add(&r->device->errors, reader_path(r, attr, path, sizeof(path)), 0,
                                "invalid value '%s'", s);
                return -1;
        }
        return (int)v;
}

static void read_sriov(DeviceReader *r) {
        Device *d = r->device;

        d->sriov_totalvfs = d->sriov_numvfs = -1;
        if (r->entries ? reader_has(r, "sriov_totalvfs") : exists_at(r->dir_fd, "sriov_totalvfs") > 0) {
                d->sriov_role = SRIOV_PF;
                d->sriov_totalvfs = read_optional_count(r, "sriov_totalvfs");
                d->sriov_numvfs = read_optional_count(r, "sriov_numvfs");
        }

        reader_link_basename(r, "physfn", &d->sriov_pf);
        if (d->sriov_pf)
                d->sriov_role = SRIOV_VF;
}

/* The words of s, each interned: free only the array. */
static int split_words(const char *s, char ***ret) {
        _cleanup_(freep) char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        while (*s) {
                size_t len;
                char *w;

                s += strspn(s, " \t");
                len = strcspn(s, " \t");
                if (len == 0)
                        break;
                w = (char *)intern_n(s, (unsigned)len);
                if (!w || strv_push(&l, &n, w) < 0) {
                        free(l);
                        l = NULL;
                        return -ENOMEM;
                }
                s += len;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static void read_misc(DeviceReader *r) {
        _cleanup_(freep) char *reset = NULL, *vga = NULL;
        Device *d = r->device;
        char path[PATH_MAX];

        /* reset_method exists from 5.15; its absence is a fact about the kernel, not an error. */
        if (reader_attr(r, "reset_method", true, &reset) >= 0)
                (void)split_words(reset, &d->reset_methods);

        d->boot_vga = -1;
        if (reader_attr(r, "boot_vga", true, &vga) >= 0) {
                if (strcmp(vga, "0") == 0 || strcmp(vga, "1") == 0)
                        d->boot_vga = vga[0] == '1';
                else
                        item_errors_add(&d->errors, reader_path(r, "boot_vga", path, sizeof(path)), 0,
                                        "invalid value '%s'", vga);
        }

        if (reader_attr(r, "modalias", false, &d->modalias) >= 0)
                intern_field(&d->modalias);

        /* Only devices the PCI core marked removable have the file (5.14 on); see inventory.h. */
        if (reader_attr(r, "removable", true, &d->removable) >= 0)
                intern_field(&d->removable);
}

static void append_dir_entries(DeviceReader *r, const char *dir, const char *required_prefix, char ***list,
                               size_t *n) {
        _cleanup_(strv_freep) char **names = NULL;

        if (read_dir_at(r->dir_fd, dir, &names, NULL) < 0)
                return;
        for (char **i = names; *i; i++) {
                if (required_prefix && strncmp(*i, required_prefix, strlen(required_prefix)) != 0)
                        continue;
                /* DRM connectors (card0-HDMI-A-1) live next to the cards. */
                if (required_prefix && strcmp(required_prefix, "card") == 0 && strchr(*i, '-'))
                        continue;
                if (!strv_contains(*list, *i))
                        (void)strv_push_dup(list, n, *i);
        }
}

/* Child directories that may lead to block or network devices: virtio transports, ATA ports, SCSI
 * hosts and targets. PCI child functions are never entered (they are devices of their own). */
static bool is_interface_container(const char *name) {
        static const char *const prefixes[] = { "virtio", "ata", "host", "target", "port" };

        if (isdigit((unsigned char)name[0]) && strchr(name, ':') && !strchr(name, '.'))
                return true; /* SCSI device "0:0:0:0" */
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0 && !pci_address_is_valid(name))
                        return true;
        return false;
}

/* dir's entries are listed once (the device directory's by the caller): net/ and block/ are read
 * only when they are there, containers are entered with their own listing. */
static void collect_interfaces(DeviceReader *r, const char *dir, char *const *entries, size_t n_entries,
                               unsigned depth, size_t *n_net, size_t *n_block) {
        Device *d = r->device;
        char sub[PATH_MAX];

        if (sorted_strv_contains(entries, n_entries, "net")) {
                snprintf(sub, sizeof(sub), "%s%snet", dir, *dir ? "/" : "");
                append_dir_entries(r, sub, NULL, &d->net_interfaces, n_net);
        }
        if (sorted_strv_contains(entries, n_entries, "block")) {
                snprintf(sub, sizeof(sub), "%s%sblock", dir, *dir ? "/" : "");
                append_dir_entries(r, sub, NULL, &d->block_devices, n_block);
        }
        if (depth >= 5)
                return;
        for (size_t i = 0; i < n_entries; i++) {
                _cleanup_(strv_freep) char **children = NULL;
                size_t n_children = 0;

                if (!is_interface_container(entries[i]))
                        continue;
                snprintf(sub, sizeof(sub), "%s%s%s", dir, *dir ? "/" : "", entries[i]);
                if (read_dir_at(r->dir_fd, sub, &children, &n_children) >= 0)
                        collect_interfaces(r, sub, children, n_children, depth + 1, n_net, n_block);
        }
}

static void read_nvme_namespaces(DeviceReader *r, size_t *n_block) {
        _cleanup_(strv_freep) char **controllers = NULL;
        Device *d = r->device;

        if (!reader_has(r, "nvme") || read_dir_at(r->dir_fd, "nvme", &controllers, NULL) < 0)
                return;
        for (char **c = controllers; *c; c++) {
                _cleanup_(strv_freep) char **entries = NULL;
                char dir[PATH_MAX];
                size_t len = strlen(*c);

                snprintf(dir, sizeof(dir), "nvme/%s", *c);
                if (read_dir_at(r->dir_fd, dir, &entries, NULL) < 0)
                        continue;
                /* Namespaces are <ctrl>n<N>; hidden multipath paths <ctrl>c<M>n<N> are skipped. */
                for (char **e = entries; *e; e++)
                        if (strncmp(*e, *c, len) == 0 && (*e)[len] == 'n' && isdigit((unsigned char)(*e)[len + 1]) &&
                            !strv_contains(d->block_devices, *e))
                                (void)strv_push_dup(&d->block_devices, n_block, *e);
        }
}

static void read_host_interfaces(DeviceReader *r) {
        Device *d = r->device;
        size_t n_net = 0, n_block = 0, n_drm = 0;

        if (r->entries)
                collect_interfaces(r, "", r->entries, r->n_entries, 0, &n_net, &n_block);
        read_nvme_namespaces(r, &n_block);
        if (reader_has(r, "drm"))
                append_dir_entries(r, "drm", "card", &d->drm_cards, &n_drm);
        finish_list(&d->net_interfaces);
        finish_list(&d->block_devices);
        finish_list(&d->drm_cards);
}

static void read_config_space(DeviceReader *r) {
        _cleanup_(freep) uint8_t *config = NULL;
        Device *d = r->device;
        struct pci_dev *pdev;
        struct pci_cap *cap;
        char path[PATH_MAX];
        unsigned domain, bus, slot, func;
        size_t size;
        int k;

        d->header_type = -1;
        k = reader_has(r, "config") ? read_binary_at(r->dir_fd, "config", PCI_CONFIG_MAX, &config, &size) : -ENOENT;
        if (k < 0) {
                item_errors_add(&d->errors, reader_path(r, "config", path, sizeof(path)), k, "cannot read");
                return;
        }
        if (size < 64) {
                item_errors_add(&d->errors, reader_path(r, "config", path, sizeof(path)), 0,
                                "config space is truncated (%zu bytes, at least 64 expected)", size);
                return;
        }

        d->config_read = true;
        d->header_type = config[PCI_HEADER_TYPE] & 0x7f;
        d->multifunction = config[PCI_HEADER_TYPE] & 0x80;
        /* Unprivileged readers see only the first 64 bytes: no capabilities then. */
        if (size < PCI_CONFIG_CONVENTIONAL)
                return;
        d->config_extended = size > PCI_CONFIG_CONVENTIONAL;

        if (sscanf(d->address, "%x:%x:%x.%x", &domain, &bus, &slot, &func) != 4)
                return;
        pdev = pci_get_dev(r->pacc, (int)domain, (int)bus, (int)slot, (int)func);
        if (!pdev)
                return;
        /* Serve every read from our copy, so libpci never opens files on its own. */
        pci_setup_cache(pdev, config, (int)size);
        pci_fill_info(pdev, PCI_FILL_CAPS | (d->config_extended ? PCI_FILL_EXT_CAPS : 0));

        d->is_pcie = pci_find_cap(pdev, PCI_CAP_ID_EXP, PCI_CAP_NORMAL) != NULL;
        if (d->config_extended) {
                cap = pci_find_cap(pdev, PCI_EXT_CAP_ID_ACS, PCI_CAP_EXTENDED);
                if (cap && cap->addr + 8 <= size) {
                        d->acs_present = true;
                        d->acs_cap = pci_read_word(pdev, cap->addr + PCI_ACS_CAP);
                        d->acs_ctrl = pci_read_word(pdev, cap->addr + PCI_ACS_CTRL);
                }
                d->ats = pci_find_cap(pdev, PCI_EXT_CAP_ID_ATS, PCI_CAP_EXTENDED) != NULL;
                d->pri = pci_find_cap(pdev, PCI_EXT_CAP_ID_PRI, PCI_CAP_EXTENDED) != NULL;
                d->pasid = pci_find_cap(pdev, PCI_EXT_CAP_ID_PASID, PCI_CAP_EXTENDED) != NULL;
                cap = pci_find_cap(pdev, PCI_EXT_CAP_ID_DSN, PCI_CAP_EXTENDED);
                if (cap && cap->addr + 12 <= size) {
                        d->serial_present = true;
                        d->serial = (uint64_t)pci_read_long(pdev, cap->addr + 4) |
                                    (uint64_t)pci_read_long(pdev, cap->addr + 8) << 32;
                }
        }
        pci_free_dev(pdev);
}

/* "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0" -> "devices/pci0000:00/...", and the
 * parent bridge's address when the component before the device is a PCI address. */
static void read_topology(DeviceReader *r, const char *link_target) {
        Device *d = r->device;
        const char *p = strstr(link_target, "devices/");
        const char *last, *before;

        if (!p) {
                item_errors_add(&d->errors, r->prefix, 0, "link target '%s' is not below devices/", link_target);
                return;
        }
        d->sysfs_path = strdup(p);

        last = strrchr(p, '/');
        if (!last || strcmp(last + 1, d->address) != 0) {
                item_errors_add(&d->errors, r->prefix, 0, "link target '%s' does not end in the device name",
                                link_target);
                return;
        }
        for (before = last - 1; before > p && *before != '/'; before--)
                ;
        if (*before == '/') {
                _cleanup_(freep) char *parent = strndup(before + 1, (size_t)(last - before - 1));

                if (parent && pci_address_is_valid(parent))
                        d->parent = TAKE_PTR(parent);
        }
}

/* devices_fd: sys/bus/pci/devices when the caller has it open, else -1. */
static int device_load_at(const HostRoots *roots, struct pci_access *pacc, const HostListing *listing,
                          int devices_fd, const char *address, Device *d) {
        _cleanup_(freep) char *link = NULL, *prefix = NULL, *entry = NULL;
        _cleanup_(freep) char **entries = NULL; /* packed: one allocation */
        _cleanup_(closep) int dir_fd = -1;
        DeviceReader r;
        int k;

        d->address = strdup(address);
        if (!d->address || asprintf(&entry, "sys/bus/pci/devices/%s", address) < 0 ||
            asprintf(&prefix, "%s/", entry) < 0)
                return -ENOMEM;
        d->vendor_id = d->device_id = d->subsystem_vendor_id = d->subsystem_device_id = -1;
        d->class_code = d->revision = -1;
        d->group = d->numa_node = d->boot_vga = d->header_type = -1;
        d->sriov_totalvfs = d->sriov_numvfs = -1;

        r = (DeviceReader){ .roots = roots, .pacc = pacc, .listing = listing, .device = d, .prefix = prefix };

        k = devices_fd >= 0 ? read_link_at(devices_fd, address, &link) : read_link_at(roots->sysfs_fd, entry, &link);
        if (k < 0)
                item_errors_add(&d->errors, entry, k, "not a link to the device directory");
        else
                read_topology(&r, link);

        /* Opened for reading: the one listing of its entries comes from this fd. */
        dir_fd = open_in_root(roots->sysfs_fd, entry, O_RDONLY | O_DIRECTORY);
        if (dir_fd < 0) {
                item_errors_add(&d->errors, entry, dir_fd, "cannot open device directory");
                finish_list(&d->net_interfaces);
                finish_list(&d->block_devices);
                finish_list(&d->drm_cards);
                return 0;
        }
        r.dir_fd = dir_fd;
        if (read_dir_fd_packed(dir_fd, &entries, &r.n_entries) >= 0)
                r.entries = entries;

        read_identity(&r);
        read_names(&r);
        read_binding(&r);
        read_sriov(&r);
        read_misc(&r);
        read_host_interfaces(&r);
        read_config_space(&r);
        return 0;
}

int device_load(const HostRoots *roots, struct pci_access *pacc, const HostListing *listing, const char *address,
                Device *d) {
        return device_load_at(roots, pacc, listing, -1, address, d);
}

/* Names, driver, IOMMU unit, modalias, removable and reset methods are interned: not freed here. */
void device_done(Device *d) {
        free(d->address);
        free(d->driver_override);
        free(d->parent);
        free(d->sysfs_path);
        free(d->sriov_pf);
        free(d->reset_methods);
        free_list(d->net_interfaces);
        free_list(d->block_devices);
        free_list(d->drm_cards);
        item_errors_done(&d->errors);
}

void devices_free(Device *devices, size_t n) {
        FOREACH_ARRAY(d, devices, n)
                device_done(d);
        free(devices);
}

int devices_load(const HostRoots *roots, struct pci_access *pacc, const HostListing *listing,
                 ItemErrors *tree_errors, Device **ret, size_t *ret_n) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int devices_fd = -1;
        Device *devices = NULL;
        size_t n = 0, n_names = 0;
        int k;

        devices_fd = open_in_root(roots->sysfs_fd, "sys/bus/pci/devices", O_RDONLY | O_DIRECTORY);
        k = devices_fd < 0 ? devices_fd : read_dir_fd(devices_fd, &names, &n_names);
        if (k < 0) {
                /* A machine without PCI (or a tree without it) is reported, and has no devices. */
                item_errors_add(tree_errors, "sys/bus/pci/devices", k, "cannot list PCI devices");
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }

        /* One allocation for all of them: the model is sized to the host. */
        devices = calloc(n_names ?: 1, sizeof(Device));
        if (!devices)
                return -ENOMEM;
        for (char **name = names; *name; name++) {
                Device *d;

                if (!pci_address_is_valid(*name)) {
                        item_errors_add(tree_errors, "sys/bus/pci/devices", 0,
                                        "ignoring entry '%s': not a PCI address", *name);
                        continue;
                }
                d = &devices[n++];
                k = device_load_at(roots, pacc, listing, devices_fd, *name, d);
                if (k < 0) {
                        devices_free(devices, n);
                        return k;
                }
        }

        *ret = devices;
        *ret_n = n;
        return 0;
}

/* ---- equality ------------------------------------------------------------------------------ */

/* Two values of a field where any negative value means unknown. */
static bool known_equal(int a, int b) {
        return a < 0 ? b < 0 : a == b;
}

/* The header type is shown by its name (0 endpoint, 1 bridge, 2 cardbus); any other value as unknown. */
static bool header_type_equal(int a, int b) {
        bool a_named = a >= 0 && a <= 2, b_named = b >= 0 && b <= 2;

        return a_named || b_named ? a == b : true;
}

/* Fields that depend on config space count only when it could be read (they are unknown otherwise). */
static bool config_equal(const Device *a, const Device *b) {
        bool a_pcie_known = a->config_read && a->header_type >= 0,
             b_pcie_known = b->config_read && b->header_type >= 0;

        if (a->config_read != b->config_read || (a->config_read && a->multifunction != b->multifunction) ||
            a_pcie_known != b_pcie_known || (a_pcie_known && a->is_pcie != b->is_pcie))
                return false;
        if (a->config_extended != b->config_extended)
                return false;
        if (a->config_extended &&
            (a->acs_present != b->acs_present ||
             (a->acs_present && (a->acs_cap != b->acs_cap || a->acs_ctrl != b->acs_ctrl)) ||
             a->ats != b->ats || a->pri != b->pri || a->pasid != b->pasid))
                return false;
        return a->serial_present == b->serial_present && (!a->serial_present || a->serial == b->serial);
}

static bool sriov_equal(const Device *a, const Device *b) {
        if (a->sriov_role != b->sriov_role)
                return false;
        switch (a->sriov_role) {
        case SRIOV_PF:
                return known_equal(a->sriov_totalvfs, b->sriov_totalvfs) &&
                       known_equal(a->sriov_numvfs, b->sriov_numvfs);
        case SRIOV_VF:
                return streq_ptr(a->sriov_pf, b->sriov_pf);
        default:
                return true;
        }
}

bool device_equal(const Device *a, const Device *b) {
        return streq_ptr(a->address, b->address) && known_equal(a->vendor_id, b->vendor_id) &&
               known_equal(a->device_id, b->device_id) &&
               known_equal(a->subsystem_vendor_id, b->subsystem_vendor_id) &&
               known_equal(a->subsystem_device_id, b->subsystem_device_id) &&
               known_equal(a->class_code, b->class_code) && known_equal(a->revision, b->revision) &&
               streq_ptr(a->vendor_name, b->vendor_name) && streq_ptr(a->device_name, b->device_name) &&
               streq_ptr(a->subsystem_vendor_name, b->subsystem_vendor_name) &&
               streq_ptr(a->subsystem_name, b->subsystem_name) && streq_ptr(a->class_name, b->class_name) &&
               header_type_equal(a->header_type, b->header_type) && config_equal(a, b) &&
               streq_ptr(a->driver, b->driver) && streq_ptr(a->driver_override, b->driver_override) &&
               known_equal(a->group, b->group) && streq_ptr(a->iommu_unit, b->iommu_unit) &&
               known_equal(a->numa_node, b->numa_node) && streq_ptr(a->parent, b->parent) &&
               streq_ptr(a->sysfs_path, b->sysfs_path) && sriov_equal(a, b) &&
               /* reset_methods is NULL when the kernel has no reset_method file: not the same as none. */
               !a->reset_methods == !b->reset_methods && strv_equal(a->reset_methods, b->reset_methods) &&
               known_equal(a->boot_vga, b->boot_vga) && streq_ptr(a->removable, b->removable) &&
               strv_equal(a->net_interfaces, b->net_interfaces) &&
               strv_equal(a->block_devices, b->block_devices) && strv_equal(a->drm_cards, b->drm_cards) &&
               streq_ptr(a->modalias, b->modalias) && item_errors_equal(&a->errors, &b->errors);
}
