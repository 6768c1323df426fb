/* Scratch host trees for unit tests (see fake-tree.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "macro.h"

static char *join(FakeTree *t, const char *path) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", t->root, path) >= 0);
        return p;
}

static void mkdir_p(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);

        assert_non_null(copy);
        for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                assert_true(mkdir(copy, 0755) == 0 || errno == EEXIST);
                *s = '/';
        }
        assert_true(mkdir(copy, 0755) == 0 || errno == EEXIST);
}

static void mkdir_parent(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);
        char *slash;

        assert_non_null(copy);
        slash = strrchr(copy, '/');
        assert_non_null(slash);
        *slash = 0;
        mkdir_p(copy);
}

FakeTree *fake_tree_new(void) {
        FakeTree *t = calloc(1, sizeof(*t));
        const char *tmp = getenv("TMPDIR");

        assert_non_null(t);
        assert_true(asprintf(&t->root, "%s/iommud-test-XXXXXX", tmp ?: "/tmp") >= 0);
        assert_non_null(mkdtemp(t->root));
        fake_tree_mkdir(t, "sys");
        fake_tree_mkdir(t, "proc");
        fake_tree_mkdir(t, "dev");
        return t;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void fake_tree_free(FakeTree *t) {
        if (!t)
                return;
        host_roots_free(t->roots);
        if (t->root)
                assert_int_equal(nftw(t->root, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(t->root);
        free(t);
}

void fake_tree_write(FakeTree *t, const char *path, const char *content) {
        _cleanup_(freep) char *p = join(t, path);
        _cleanup_(fclosep) FILE *f = NULL;

        mkdir_parent(p);
        f = fopen(p, "we");
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
}

void fake_tree_mkdir(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        mkdir_p(p);
}

void fake_tree_symlink(FakeTree *t, const char *path, const char *target) {
        _cleanup_(freep) char *p = join(t, path);

        mkdir_parent(p);
        assert_int_equal(symlink(target, p), 0);
}

void fake_tree_unlink(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        assert_int_equal(unlink(p), 0);
}

const HostRoots *fake_tree_roots(FakeTree *t) {
        if (!t->roots)
                assert_int_equal(host_roots_open(t->root, t->root, t->root, &t->roots), 0);
        return t->roots;
}

void fake_tree_private_mounts(void) {
        if (geteuid() != 0)
                return;
        assert_int_equal(unshare(CLONE_NEWNS), 0);
        assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

void fake_tree_make_read_only(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        mkdir_p(p);
        if (geteuid() != 0) {
                assert_int_equal(chmod(p, 0555), 0);
                return;
        }
        assert_int_equal(mount(p, p, NULL, MS_BIND, NULL), 0);
        assert_int_equal(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
}

void fake_tree_make_writable(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        if (geteuid() != 0)
                assert_int_equal(chmod(p, 0755), 0);
        else
                assert_int_equal(umount(p), 0);
}

char *fake_tree_device_dir(const char *address, const char *parent) {
        char *dir;

        if (parent)
                assert_true(asprintf(&dir, "sys/devices/pci0000:00/%s/%s", parent, address) >= 0);
        else
                assert_true(asprintf(&dir, "sys/devices/pci0000:00/%s", address) >= 0);
        return dir;
}

void fake_tree_write_config(FakeTree *t, const char *address, const char *parent, const uint8_t *config, size_t size) {
        _cleanup_(freep) char *dir = fake_tree_device_dir(address, parent), *path = NULL;
        _cleanup_(fclosep) FILE *f = NULL;

        assert_true(asprintf(&path, "%s/%s/config", t->root, dir) >= 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(config, 1, size, f), size);
}

void fake_tree_chmod(FakeTree *t, const char *path, mode_t mode) {
        _cleanup_(freep) char *p = join(t, path);

        assert_int_equal(chmod(p, mode), 0);
}

void fake_tree_add_intel_unit(FakeTree *t, const char *name, const char *cap, const char *ecap) {
        char path[256], target[256];

        snprintf(path, sizeof(path), "sys/devices/virtual/iommu/%s/intel-iommu/cap", name);
        fake_tree_write(t, path, cap);
        snprintf(path, sizeof(path), "sys/devices/virtual/iommu/%s/intel-iommu/ecap", name);
        fake_tree_write(t, path, ecap);
        snprintf(path, sizeof(path), "sys/devices/virtual/iommu/%s/intel-iommu/version", name);
        fake_tree_write(t, path, "1:0\n");
        snprintf(path, sizeof(path), "sys/devices/virtual/iommu/%s/intel-iommu/address", name);
        fake_tree_write(t, path, "fed90000\n");
        snprintf(path, sizeof(path), "sys/class/iommu/%s", name);
        snprintf(target, sizeof(target), "../../devices/virtual/iommu/%s", name);
        fake_tree_symlink(t, path, target);
}

void fake_tree_add_amd_unit(FakeTree *t, const char *features) {
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/cap", "1f03000f\n");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/features", features);
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/device", "../../../0000:00:00.2");
        fake_tree_symlink(t, "sys/class/iommu/ivhd0", "../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0");
}

void fake_tree_link_unit(FakeTree *t, const char *address, const char *parent, const char *name) {
        _cleanup_(freep) char *dir = fake_tree_device_dir(address, parent), *path = NULL, *target = NULL;

        assert_true(asprintf(&path, "%s/iommu", dir) >= 0);
        if (strcmp(name, "ivhd0") == 0)
                assert_true(asprintf(&target, "%s../0000:00:00.2/iommu/ivhd0", parent ? "../" : "") >= 0);
        else
                assert_true(asprintf(&target, "%s../../virtual/iommu/%s", parent ? "../" : "", name) >= 0);
        fake_tree_symlink(t, path, target);
}

void fake_tree_add_pci_device(FakeTree *t, const char *address, const char *parent, const char *driver, unsigned group,
                       uint8_t header_type) {
        _cleanup_(freep) char *dir = fake_tree_device_dir(address, parent);
        char path[512], target[512];
        uint8_t config[64] = { 0x86, 0x80, 0xd3, 0x10 };

#define ATTR(name, value)                                                                                 \
        do {                                                                                              \
                snprintf(path, sizeof(path), "%s/" name, dir);                                            \
                fake_tree_write(t, path, value);                                                          \
        } while (0)
        ATTR("vendor", "0x8086\n");
        ATTR("device", "0x10d3\n");
        ATTR("subsystem_vendor", "0x8086\n");
        ATTR("subsystem_device", "0x0000\n");
        ATTR("class", header_type == 1 ? "0x060400\n" : "0x020000\n");
        ATTR("revision", "0x00\n");
        ATTR("driver_override", "(null)\n");
        ATTR("modalias", "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00\n");
        /* The PCI enable count: drivers that use the device enable it; vfio-pci waits for a user. */
        ATTR("enable", driver && !strstr(driver, "vfio") ? "1\n" : "0\n");
#undef ATTR

        config[0x0e] = header_type;
        fake_tree_write_config(t, address, parent, config, sizeof(config));

        if (driver) {
                snprintf(path, sizeof(path), "sys/bus/pci/drivers/%s", driver);
                fake_tree_mkdir(t, path);
                snprintf(path, sizeof(path), "%s/driver", dir);
                snprintf(target, sizeof(target), "%s../../../bus/pci/drivers/%s", parent ? "../" : "", driver);
                fake_tree_symlink(t, path, target);
        }

        snprintf(path, sizeof(path), "%s/iommu_group", dir);
        snprintf(target, sizeof(target), "%s../../../kernel/iommu_groups/%u", parent ? "../" : "", group);
        fake_tree_symlink(t, path, target);

        snprintf(path, sizeof(path), "sys/bus/pci/devices/%s", address);
        snprintf(target, sizeof(target), "../../../%s", dir + strlen("sys/"));
        fake_tree_symlink(t, path, target);

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/devices/%s", group, address);
        snprintf(target, sizeof(target), "../../../../%s", dir + strlen("sys/"));
        fake_tree_symlink(t, path, target);
}

void fake_tree_add_net_interface(FakeTree *t, const char *address, const char *parent, const char *ifname,
                                 unsigned flags) {
        _cleanup_(freep) char *dir = fake_tree_device_dir(address, parent);
        char path[512], target[512], text[32];

        snprintf(path, sizeof(path), "%s/net/%s/flags", dir, ifname);
        snprintf(text, sizeof(text), "0x%x\n", flags);
        fake_tree_write(t, path, text);
        snprintf(path, sizeof(path), "%s/net/%s/operstate", dir, ifname);
        fake_tree_write(t, path, flags & 1 ? "up\n" : "down\n");
        snprintf(path, sizeof(path), "sys/class/net/%s", ifname);
        snprintf(target, sizeof(target), "../../%s/net/%s", dir + strlen("sys/"), ifname);
        fake_tree_symlink(t, path, target);
}

void fake_tree_add_group(FakeTree *t, unsigned group, const char *type, const char *regions) {
        char path[256];

        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/type", group);
        fake_tree_write(t, path, type);
        snprintf(path, sizeof(path), "sys/kernel/iommu_groups/%u/reserved_regions", group);
        fake_tree_write(t, path, regions);
}

FakeTree *fake_tree_new_host(const char *release) {
        FakeTree *t = fake_tree_new();
        char text[64];

        snprintf(text, sizeof(text), "%s\n", release);
        fake_tree_write(t, "proc/sys/kernel/osrelease", text);
        fake_tree_write(t, "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda\n");
        fake_tree_write(t, "proc/modules", "");
        fake_tree_mkdir(t, "dev");
        fake_tree_mkdir(t, "sys/class/iommu");
        /* What the host-use checks read: a root filesystem on a device of no PCI function here,
         * no swap, no routes, and iommud's own process holding nothing of interest. */
        fake_tree_mkdir(t, "sys/class/net");
        fake_tree_mkdir(t, "sys/class/block");
        fake_tree_write(t, "proc/1/mountinfo", "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
        fake_tree_write(t, "proc/self/mountinfo", "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
        fake_tree_write(t, "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        fake_tree_write(t, "proc/1/net/route",
                        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
        fake_tree_write(t, "proc/1/net/ipv6_route", "");
        return t;
}
