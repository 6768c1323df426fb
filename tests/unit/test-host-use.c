/* Unit tests for host/host-usage*.c and core/host-use.c on fixture trees laid out as the kernel lays
 * them out: every verdict (stacked storage, stacked network, display, SR-IOV, VFIO users) and every
 * "unknown", each with the whole chain in its sentence. */
#undef NDEBUG
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "host-use.h"
#include "host-usage.h"
#include "inventory.h"
#include "macro.h"
#include "string-util.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

#define NVME "0000:00:03.0"
#define NVME_DIR "devices/pci0000:00/0000:00:03.0"

static void writef(FakeTree *t, const char *content, const char *format, ...) _printf_(3, 4);
static void writef(FakeTree *t, const char *content, const char *format, ...) {
        _cleanup_(freep) char *path = NULL;
        va_list ap;

        va_start(ap, format);
        assert_true(vasprintf(&path, format, ap) >= 0);
        va_end(ap);
        fake_tree_write(t, path, content);
}

static void linkf(FakeTree *t, const char *target, const char *format, ...) _printf_(3, 4);
static void linkf(FakeTree *t, const char *target, const char *format, ...) {
        _cleanup_(freep) char *path = NULL;
        va_list ap;

        va_start(ap, format);
        assert_true(vasprintf(&path, format, ap) >= 0);
        va_end(ap);
        fake_tree_symlink(t, path, target);
}

/* A block device sys/<dir>/<name> with its class link, an empty holders/ and a node in dev/. */
static void add_block(FakeTree *t, const char *dir, const char *name, const char *devnum, bool partition) {
        _cleanup_(freep) char *number = strprintf("%s\n", devnum), *target = strprintf("../../%s/%s", dir, name),
                             *holders = strprintf("sys/%s/%s/holders", dir, name);

        writef(t, number, "sys/%s/%s/dev", dir, name);
        if (partition)
                writef(t, "1\n", "sys/%s/%s/partition", dir, name);
        fake_tree_mkdir(t, holders);
        linkf(t, target, "sys/class/block/%s", name);
        writef(t, "", "dev/%s", name);
}

static void add_holder(FakeTree *t, const char *lower_path, const char *holder) {
        _cleanup_(freep) char *target = strprintf("../../../../../../virtual/block/%s", holder);

        linkf(t, target, "sys/%s/holders/%s", lower_path, holder);
}

static void add_dm(FakeTree *t, const char *name, const char *devnum, const char *dm_name, const char *uuid) {
        _cleanup_(freep) char *n = strprintf("%s\n", dm_name), *u = strprintf("%s\n", uuid);

        add_block(t, "devices/virtual/block", name, devnum, false);
        writef(t, n, "sys/devices/virtual/block/%s/dm/name", name);
        writef(t, u, "sys/devices/virtual/block/%s/dm/uuid", name);
}

static void set_mounts(FakeTree *t, const char *lines) {
        fake_tree_write(t, "proc/1/mountinfo", lines);
        fake_tree_write(t, "proc/self/mountinfo", lines);
}

/* A process holding node open as fd 7. */
static void add_process(FakeTree *t, int pid, const char *comm, int uid, const char *node) {
        _cleanup_(freep) char *c = strprintf("%s\n", comm), *status = strprintf("Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n", comm, uid,
                                                                              uid, uid, uid);

        writef(t, c, "proc/%d/comm", pid);
        writef(t, status, "proc/%d/status", pid);
        linkf(t, node, "proc/%d/fd/7", pid);
}

/* An NVMe controller alone in group 1, on the root bus. */
static FakeTree *nvme_host(void) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, NVME, NULL, "nvme", 1, 0);
        fake_tree_write(t, "sys/devices/pci0000:00/" NVME "/class", "0x010802\n");
        add_block(t, NVME_DIR "/nvme/nvme0", "nvme0n1", "259:0", false);
        add_block(t, NVME_DIR "/nvme/nvme0/nvme0n1", "nvme0n1p1", "259:1", true);
        add_block(t, NVME_DIR "/nvme/nvme0/nvme0n1", "nvme0n1p2", "259:2", true);
        add_block(t, NVME_DIR "/nvme/nvme0/nvme0n1", "nvme0n1p3", "259:3", true);
        return t;
}

typedef struct Verdict {
        Inventory *inv;
        HostUsage *usage;
        HostUses uses;
} Verdict;

static void judge(FakeTree *t, unsigned group, Verdict *v) {
        const HostRoots *roots = fake_tree_roots(t);

        *v = (Verdict){};
        assert_int_equal(inventory_load(roots, NULL, &v->inv), 0);
        assert_int_equal(host_usage_read(roots, &v->usage), 0);
        assert_non_null(inventory_find_group(v->inv, group));
        assert_int_equal(host_use_judge_group(roots, v->usage, v->inv, inventory_find_group(v->inv, group), NULL, NULL,
                                              &v->uses),
                         0);
}

static void verdict_done(Verdict *v) {
        host_uses_done(&v->uses);
        host_usage_free(v->usage);
        inventory_free(v->inv);
}

/* The use of that kind whose sentence holds every fragment; fails the test when there is none. */
static const HostUse *expect_use(const Verdict *v, HostUseKind kind, const char *const *fragments) {
        FOREACH_ARRAY(u, v->uses.items, v->uses.n) {
                bool all = u->kind == kind;

                for (const char *const *f = fragments; all && *f; f++)
                        all = strstr(u->text, *f) != NULL;
                if (all)
                        return u;
        }
        FOREACH_ARRAY(u, v->uses.items, v->uses.n)
                print_message("use %s: %s\n", host_use_kind_to_string(u->kind), u->text);
        fail_msg("no %s use with '%s'", host_use_kind_to_string(kind), fragments[0]);
        return NULL;
}

#define EXPECT(v, kind, ...) expect_use(v, kind, (const char *const[]){ __VA_ARGS__, NULL })

static void test_free_nvme(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;

        judge(t, 1, &v);
        for (size_t i = 0; i < v.uses.n; i++)
                print_message("unexpected: %s\n", v.uses.items[i].text);
        assert_int_equal(v.uses.n, 0);
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_lvm_root(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;
        const HostUse *u;

        add_dm(t, "dm-0", "253:0", "pve-root", "LVM-abc");
        add_dm(t, "dm-1", "253:1", "pve-data", "LVM-def");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p3", "dm-0");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p3", "dm-1");
        set_mounts(t, "21 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/pve-root rw,errors=remount-ro\n"
                      "25 21 259:2 / /boot/efi rw shared:5 - vfat /dev/nvme0n1p2 rw\n");

        judge(t, 1, &v);
        u = EXPECT(&v, HOST_USE_STORAGE, NVME, "holds nvme0n1p3 → dm-0 (pve-root), mounted on /");
        assert_true(u->forcible);
        assert_string_equal(u->device, NVME);
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p2, mounted on /boot/efi");
        /* An LV nobody mounted is still a volume the host set up. */
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p3 → dm-1 (pve-data), an active LVM logical volume");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_md_raid_and_swap(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;

        add_block(t, "devices/virtual/block", "md0", "9:0", false);
        fake_tree_write(t, "sys/devices/virtual/block/md0/md/level", "raid1\n");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p1", "md0");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p3", "md0");
        set_mounts(t, "21 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
                      "30 21 9:0 / /srv/vm\\040images rw - xfs /dev/md0 rw\n");
        fake_tree_write(t, "proc/swaps",
                        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                        /* switched on in a chroot: the kernel prints the path from the reader's root */
                        "/srv/chroot/dev/nvme0n1p2               partition\t1048572\t\t0\t\t-2\n"
                        "/swapfile                               file\t\t65532\t\t0\t\t-3\n");

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p1 → md0 (raid1), mounted on /srv/vm images");
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p3 → md0 (raid1), mounted on /srv/vm images");
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p2, used as swap");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_swap_on_lv_and_crypt(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;

        add_dm(t, "dm-0", "253:0", "nvme0n1p3_crypt", "CRYPT-LUKS2-abc");
        add_dm(t, "dm-1", "253:1", "vg0-swap", "LVM-xyz");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p3", "dm-0");
        add_holder(t, "devices/virtual/block/dm-0", "dm-1");
        fake_tree_write(t, "proc/swaps",
                        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                        "/dev/dm-1                               partition\t1048572\t\t0\t\t-2\n");

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p3 → dm-0 (nvme0n1p3_crypt) → dm-1 (vg0-swap), used as swap");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_btrfs_and_open_lv(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;

        /* btrfs mounts show an anonymous device number: only its member list ties it to disks. */
        fake_tree_write(t, "sys/fs/btrfs/0f2c8a52-1c1a-4d1b-9b4e-7a9a2a1f1c11/label", "data\n");
        fake_tree_symlink(t, "sys/fs/btrfs/0f2c8a52-1c1a-4d1b-9b4e-7a9a2a1f1c11/devices/nvme0n1p1",
                          "../../../../devices/pci0000:00/0000:00:03.0/nvme/nvme0/nvme0n1/nvme0n1p1");
        fake_tree_mkdir(t, "sys/fs/btrfs/features");
        set_mounts(t, "21 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
                      "40 21 0:45 /@data /data rw - btrfs /dev/nvme0n1p1 rw,space_cache=v2\n");
        /* An LV on p3 that a VM uses as its disk: opened, not mounted. */
        add_dm(t, "dm-3", "253:3", "vg1-vm--101--disk--0", "LVM-ghi");
        add_holder(t, NVME_DIR "/nvme/nvme0/nvme0n1/nvme0n1p3", "dm-3");
        add_process(t, 4242, "qemu-system-x86", 64055, "/dev/dm-3");
        /* Without udev /dev/mapper/<name> is a node of its own: the link names it, not dm-3. */
        add_process(t, 4300, "dd", 0, "/dev/mapper/vg1-vm--101--disk--0");

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p1, a member of btrfs filesystem 'data'", "mounted on /data");
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0n1p3 → dm-3 (vg1-vm--101--disk--0), held open by pid 4242 "
                                     "(qemu-system-x86, uid 64055), pid 4300 (dd, uid 0)");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_nvme_multipath_and_sata(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        Verdict v;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, NVME, NULL, "nvme", 1, 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:1f.2", NULL, "ahci", 2, 0);
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:1f.2/class", "0x010601\n");
        /* Native NVMe multipath: the controller holds the hidden path disk, the head lives apart. */
        add_block(t, NVME_DIR "/nvme/nvme0", "nvme0c0n1", "0:0", false);
        add_block(t, "devices/virtual/nvme-subsystem/nvme-subsys0", "nvme0n1", "259:0", false);
        /* SATA behind the AHCI function: port, SCSI host, target, device, disk. */
        add_block(t, "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block", "sda", "8:0", false);
        add_block(t, "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sda1", "8:1", true);
        set_mounts(t, "21 1 259:0 / / rw - xfs /dev/nvme0n1 rw\n"
                      "22 21 8:1 / /var/lib/vz rw - ext4 /dev/sda1 rw\n");

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_STORAGE, "holds nvme0c0n1 → nvme0n1, mounted on /");
        verdict_done(&v);
        judge(t, 2, &v);
        EXPECT(&v, HOST_USE_STORAGE, "0000:00:1f.2", "holds sda1, mounted on /var/lib/vz");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_storage_unknowns(void **state) {
        FakeTree *t = nvme_host();
        Verdict v;

        /* The host's mount table is unreadable: never "free". */
        fake_tree_unlink(t, "proc/1/mountinfo");
        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_UNKNOWN, "iommud cannot tell whether " NVME, "holds a mounted filesystem",
               "proc/1/mountinfo: No such file or directory");
        assert_true(v.uses.items[0].forcible);
        verdict_done(&v);
        fake_tree_write(t, "proc/1/mountinfo", "21 1 254:1 / / rw - ext4 /dev/vda1 rw\n");

        /* A process whose open files cannot be read. */
        fake_tree_write(t, "proc/77/fd", "");
        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_UNKNOWN, "holds block devices that processes have open",
               "1 process could not be inspected (proc/77/fd: Not a directory)");
        verdict_done(&v);
        fake_tree_unlink(t, "proc/77/fd");

        /* No node to ask the kernel about claims with. */
        fake_tree_unlink(t, "dev/nvme0n1p2");
        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_UNKNOWN, "the exclusive-open check of dev/nvme0n1p2 failed: No such file or directory");
        verdict_done(&v);
        fake_tree_free(t);
}

/* eno1 → bond0 → vmbr0, the bridge holding the address and the default route. */
static FakeTree *bridged_host(unsigned eno1_flags) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:19.0", NULL, "e1000e", 1, 0);
        fake_tree_add_net_interface(t, "0000:00:19.0", NULL, "eno1", eno1_flags);
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:19.0/net/eno1/master", "../../../virtual/net/bond0");
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:19.0/net/eno1/upper_bond0", "../../../virtual/net/bond0");
        fake_tree_write(t, "sys/devices/virtual/net/bond0/flags", "0x1503\n");
        fake_tree_write(t, "sys/devices/virtual/net/bond0/operstate", "up\n");
        fake_tree_symlink(t, "sys/devices/virtual/net/bond0/master", "../vmbr0");
        fake_tree_symlink(t, "sys/devices/virtual/net/bond0/upper_vmbr0", "../vmbr0");
        fake_tree_symlink(t, "sys/class/net/bond0", "../../devices/virtual/net/bond0");
        fake_tree_write(t, "sys/devices/virtual/net/vmbr0/flags", "0x1003\n");
        fake_tree_write(t, "sys/devices/virtual/net/vmbr0/operstate", "up\n");
        fake_tree_symlink(t, "sys/class/net/vmbr0", "../../devices/virtual/net/vmbr0");
        fake_tree_write(t, "proc/1/net/route",
                        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                        "vmbr0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                        "vmbr0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        fake_tree_write(t, "proc/1/net/if_inet6",
                        "fe800000000000000000000000000001 05 40 20 80    vmbr0\n"
                        "20010db8000000000000000000000005 05 40 00 80    vmbr0\n");
        return t;
}

static void test_bond_bridge_default_route(void **state) {
        FakeTree *t = bridged_host(0x1003);
        Verdict v;

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_NETWORK, "0000:00:19.0", "carries eno1 → bond0 → vmbr0", "default route",
               "2001:db8::5/64", "eno1 up, port of bond0");
        assert_int_equal(v.uses.n, 1);
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_bond_member_link_down(void **state) {
        /* Administratively down, no carrier: a bond member is in use all the same. */
        FakeTree *t = bridged_host(0x1002);
        Verdict v;

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_NETWORK, "carries eno1 → bond0 → vmbr0", "eno1, port of bond0");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_vlan_and_free_nic(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        Verdict v;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:19.0", NULL, "e1000e", 1, 0);
        fake_tree_add_net_interface(t, "0000:00:19.0", NULL, "eth0", 0x1002);
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:19.0/net/eth0/upper_eth0.100",
                          "../../../virtual/net/eth0.100");
        fake_tree_write(t, "sys/devices/virtual/net/eth0.100/flags", "0x1003\n");
        fake_tree_symlink(t, "sys/class/net/eth0.100", "../../devices/virtual/net/eth0.100");
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:1a.0", NULL, "e1000e", 2, 0);
        fake_tree_add_net_interface(t, "0000:00:1a.0", NULL, "eth1", 0x1002);

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_NETWORK, "carries eth0 → eth0.100 (eth0.100 up)");
        verdict_done(&v);
        judge(t, 2, &v);
        assert_int_equal(v.uses.n, 0);
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_nic_without_interface(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        Verdict v;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:19.0", NULL, "ixgbe", 1, 0);
        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_UNKNOWN, "carries network traffic", "bound to ixgbe but shows no network interface");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_display(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        Verdict v;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "i915", 1, 0);
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/class", "0x030000\n");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:02.0/boot_vga", "1\n");
        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:02.0/drm/card0");
        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:02.0/drm/card0-HDMI-A-1");
        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:02.0/drm/renderD128");
        fake_tree_mkdir(t, "sys/devices/platform/efi-framebuffer.0/graphics/fb0");
        fake_tree_symlink(t, "sys/class/graphics/fb0", "../../devices/platform/efi-framebuffer.0/graphics/fb0");
        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:02.0/graphics/fb1");
        fake_tree_symlink(t, "sys/class/graphics/fb1", "../../devices/pci0000:00/0000:00:02.0/graphics/fb1");
        fake_tree_write(t, "proc/fb", "0 EFI VGA\n1 i915drmfb\n");
        fake_tree_write(t, "dev/dri/card0", "");
        fake_tree_write(t, "dev/dri/renderD128", "");
        add_process(t, 1200, "Xorg", 0, "/dev/dri/card0");

        judge(t, 1, &v);
        EXPECT(&v, HOST_USE_DISPLAY, "0000:00:02.0", "is the boot VGA device");
        EXPECT(&v, HOST_USE_DISPLAY, "the firmware framebuffer fb0 (EFI VGA)");
        EXPECT(&v, HOST_USE_DISPLAY, "drives framebuffer fb1 (i915drmfb)");
        EXPECT(&v, HOST_USE_DISPLAY, "/dev/dri/card0 is held open by pid 1200 (Xorg, uid 0)");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_vfio_users(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        Verdict v;
        const HostUse *u;

        fake_tree_add_group(t, 5, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:04.0", NULL, "vfio-pci", 5, 0);
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:04.0/enable", "0\n");
        fake_tree_write(t, "dev/vfio/5", "");
        judge(t, 5, &v);
        assert_int_equal(v.uses.n, 0);
        verdict_done(&v);

        /* QEMU has the device open (vfio-pci enabled it) and another user holds the group node;
         * that process lives in another mount namespace, so its link shows a longer path. */
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:04.0/enable", "1\n");
        add_process(t, 812, "python3", 65534, "/var/lib/machines/c1/dev/vfio/5");
        judge(t, 5, &v);
        u = EXPECT(&v, HOST_USE_VFIO, "/dev/vfio/5 is held open by pid 812 (python3, uid 65534)");
        assert_false(u->forcible);
        u = EXPECT(&v, HOST_USE_VFIO, "0000:00:04.0", "is open through VFIO (its PCI enable count is 1)");
        assert_false(u->forcible);
        verdict_done(&v);

        /* A VFIO cdev (6.6+, IOMMUFD kernels) held by a process. */
        fake_tree_write(t, "sys/devices/pci0000:00/0000:00:04.0/enable", "0\n");
        fake_tree_unlink(t, "proc/812/fd/7");
        /* A process whose fds are listed but cannot be read is not inspected: never "free". */
        fake_tree_write(t, "proc/813/fd/4", "not a link");
        judge(t, 5, &v);
        EXPECT(&v, HOST_USE_UNKNOWN, "cannot tell whether /dev/vfio/5 is held open",
               "1 process could not be inspected (proc/813/fd: Invalid argument)");
        verdict_done(&v);
        fake_tree_unlink(t, "proc/813/fd/4");
        fake_tree_mkdir(t, "sys/devices/pci0000:00/0000:00:04.0/vfio-dev/vfio0");
        fake_tree_write(t, "proc/66/fd", ""); /* an uninspectable process */
        /* Kernels without IOMMUFD show vfio-dev/vfio0 in sysfs but have no cdev to hold. */
        judge(t, 5, &v);
        assert_int_equal(v.uses.n, 1);
        EXPECT(&v, HOST_USE_UNKNOWN, "cannot tell whether /dev/vfio/5 is held open", "proc/66/fd");
        verdict_done(&v);
        fake_tree_unlink(t, "proc/66/fd");
        fake_tree_write(t, "dev/vfio/devices/vfio0", "");
        add_process(t, 900, "qemu-system-x86", 64055, "/dev/vfio/devices/vfio0");
        judge(t, 5, &v);
        EXPECT(&v, HOST_USE_VFIO, "/dev/vfio/devices/vfio0 is held open by pid 900");
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_sriov(void **state) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");
        Verdict v;
        const HostUse *u;

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:05:00.0", NULL, "nvme", 1, 0);
        fake_tree_write(t, "sys/devices/pci0000:00/0000:05:00.0/class", "0x010802\n");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:05:00.0/sriov_totalvfs", "4\n");
        fake_tree_write(t, "sys/devices/pci0000:00/0000:05:00.0/sriov_numvfs", "2\n");
        for (unsigned i = 1; i <= 2; i++) {
                char address[16], path[128], target[32];

                snprintf(address, sizeof(address), "0000:05:00.%u", i);
                fake_tree_add_group(t, 10 + i, "DMA\n", msi);
                fake_tree_add_pci_device(t, address, NULL, i == 1 ? "vfio-pci" : "nvme", 10 + i, 0);
                snprintf(path, sizeof(path), "sys/devices/pci0000:00/%s/class", address);
                fake_tree_write(t, path, "0x010802\n");
                snprintf(path, sizeof(path), "sys/devices/pci0000:00/%s/physfn", address);
                fake_tree_symlink(t, path, "../0000:05:00.0");
                snprintf(path, sizeof(path), "sys/devices/pci0000:00/0000:05:00.0/virtfn%u", i - 1);
                snprintf(target, sizeof(target), "../%s", address);
                fake_tree_symlink(t, path, target);
        }
        fake_tree_write(t, "sys/devices/pci0000:00/0000:05:00.1/enable", "1\n");
        fake_tree_write(t, "dev/vfio/11", "");
        add_process(t, 812, "qemu-system-x86", 64055, "/dev/vfio/11");

        judge(t, 1, &v);
        u = EXPECT(&v, HOST_USE_SRIOV, "0000:05:00.0", "has 2 SR-IOV virtual functions enabled",
                   "which iommud must disable to take it from nvme",
                   "0000:05:00.1 (group 11, vfio-pci, /dev/vfio/11 held open by pid 812 (qemu-system-x86, uid 64055))",
                   "0000:05:00.2 (group 12, nvme)");
        assert_true(u->forcible);
        /* Removing a VF that QEMU holds would block: never forced. */
        u = EXPECT(&v, HOST_USE_VFIO, "0000:05:00.1, a virtual function of 0000:05:00.0, is held through VFIO");
        assert_false(u->forcible);
        verdict_done(&v);

        /* The VF's own group prepares like any other: its PF is not its business. */
        judge(t, 12, &v);
        assert_int_equal(v.uses.n, 0);
        verdict_done(&v);
        fake_tree_free(t);
}

static void test_helpers(void **state) {
        _cleanup_(freep) char *head = block_multipath_head("nvme1c3n2");

        assert_string_equal(head, "nvme1n2");
        assert_null(block_multipath_head("nvme1n2"));
        assert_null(block_multipath_head("sda"));
        assert_true(host_usage_path_on_device("devices/pci0000:00/0000:00:03.0",
                                              "devices/pci0000:00/0000:00:03.0/nvme/nvme0/nvme0n1"));
        assert_false(host_usage_path_on_device("devices/pci0000:00/0000:00:1c.0",
                                               "devices/pci0000:00/0000:00:1c.0/0000:01:00.0/nvme/nvme0/nvme0n1"));
        assert_false(host_usage_path_on_device("devices/pci0000:00/0000:00:03.0", "devices/pci0000:00/0000:00:03.00"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_free_nvme),
                cmocka_unit_test(test_lvm_root),
                cmocka_unit_test(test_md_raid_and_swap),
                cmocka_unit_test(test_swap_on_lv_and_crypt),
                cmocka_unit_test(test_btrfs_and_open_lv),
                cmocka_unit_test(test_nvme_multipath_and_sata),
                cmocka_unit_test(test_storage_unknowns),
                cmocka_unit_test(test_bond_bridge_default_route),
                cmocka_unit_test(test_bond_member_link_down),
                cmocka_unit_test(test_vlan_and_free_nic),
                cmocka_unit_test(test_nic_without_interface),
                cmocka_unit_test(test_display),
                cmocka_unit_test(test_vfio_users),
                cmocka_unit_test(test_sriov),
                cmocka_unit_test(test_helpers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
