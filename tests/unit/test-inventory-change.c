/* Unit tests for inventory-change.c: full diffs and single-device refreshes report exactly what changed. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "inventory.h"
#include "macro.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

/* The changes seen, as "kind subject" lines. */
typedef struct Seen {
        char lines[16][96];
        size_t n;
} Seen;

static void on_change(const InventoryChange *c, void *userdata) {
        Seen *seen = userdata;
        const Device *d = c->new_device ?: c->old_device;
        const Group *g = c->new_group ?: c->old_group;
        char *line;

        assert_true(seen->n < ELEMENTSOF(seen->lines));
        line = seen->lines[seen->n++];
        if (c->kind == INVENTORY_DEVICE_DRIVER_CHANGED)
                snprintf(line, sizeof(seen->lines[0]), "%s %s %s->%s", inventory_change_kind_to_string(c->kind),
                         d->address, c->old_device->driver ?: "none", c->new_device->driver ?: "none");
        else if (c->kind == INVENTORY_GROUP_TYPE_CHANGED)
                snprintf(line, sizeof(seen->lines[0]), "%s %u %s->%s", inventory_change_kind_to_string(c->kind),
                         g->id, c->old_group->type_raw, c->new_group->type_raw);
        else if (d)
                snprintf(line, sizeof(seen->lines[0]), "%s %s", inventory_change_kind_to_string(c->kind), d->address);
        else if (g)
                snprintf(line, sizeof(seen->lines[0]), "%s %u", inventory_change_kind_to_string(c->kind), g->id);
        else
                snprintf(line, sizeof(seen->lines[0]), "%s", inventory_change_kind_to_string(c->kind));
}

static void assert_seen(const Seen *seen, const char *const *expected) {
        size_t n = 0;

        for (; expected[n]; n++) {
                assert_true(n < seen->n);
                assert_string_equal(seen->lines[n], expected[n]);
        }
        assert_int_equal(seen->n, n);
}

static FakeTree *two_nics(void) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "e1000e", 1, 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 2, 0);
        return t;
}

static void test_no_change(void **state) {
        FakeTree *t = two_nics();
        _cleanup_(inventory_freep) Inventory *a = NULL, *b = NULL;
        Seen seen = {};

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &a), 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &b), 0);
        inventory_diff(a, b, on_change, &seen);
        assert_seen(&seen, (const char *const[]){ NULL });
        fake_tree_free(t);
}

static void test_diff_after_rescan(void **state) {
        FakeTree *t = two_nics();
        _cleanup_(inventory_freep) Inventory *a = NULL, *b = NULL;
        Seen seen = {};

        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &a), 0);
        /* Unbind e1000e, change group 2's type, plug a device into a new group 3. */
        fake_tree_unlink(t, "sys/devices/pci0000:00/0000:00:02.0/driver");
        fake_tree_write(t, "sys/kernel/iommu_groups/2/type", "identity\n");
        fake_tree_add_group(t, 3, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:04.0", NULL, "nvme", 3, 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &b), 0);

        inventory_diff(a, b, on_change, &seen);
        assert_seen(&seen, (const char *const[]){
                                   "driver-changed 0000:00:02.0 e1000e->none",
                                   "device-added 0000:00:04.0",
                                   "group-updated 1", /* viability and permitted types moved */
                                   "type-changed 2 DMA->identity",
                                   "group-added 3",
                                   NULL,
                           });
        fake_tree_free(t);
}

static void test_reused_group_number(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-57-amd64");
        _cleanup_(inventory_freep) Inventory *a = NULL, *b = NULL;
        Seen seen = {};

        fake_tree_add_group(t, 4, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:05.0", NULL, NULL, 4, 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &a), 0);

        /* Unplug 00:05.0 and plug another device that gets group 4 again. */
        fake_tree_unlink(t, "sys/bus/pci/devices/0000:00:05.0");
        fake_tree_unlink(t, "sys/kernel/iommu_groups/4/devices/0000:00:05.0");
        fake_tree_add_pci_device(t, "0000:00:06.0", NULL, NULL, 4, 0);
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &b), 0);

        inventory_diff(a, b, on_change, &seen);
        assert_seen(&seen, (const char *const[]){
                                   "device-removed 0000:00:05.0",
                                   "device-added 0000:00:06.0",
                                   "group-removed 4",
                                   "group-added 4",
                                   NULL,
                           });
        fake_tree_free(t);
}

static void test_refresh_device(void **state) {
        FakeTree *t = two_nics();
        _cleanup_(host_reader_freep) HostReader *reader = NULL;
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        Seen seen = {};

        assert_int_equal(host_reader_new(fake_tree_roots(t), NULL, &reader), 0);
        assert_int_equal(inventory_read(reader, &inv), 0);
        assert_false(inventory_find_group(inv, 1)->viable);

        /* Bind: e1000e -> vfio-pci. */
        fake_tree_unlink(t, "sys/devices/pci0000:00/0000:00:02.0/driver");
        fake_tree_add_pci_device(t, "0000:00:07.0", NULL, NULL, 7, 0); /* not refreshed: stays unseen */
        fake_tree_mkdir(t, "sys/bus/pci/drivers/vfio-pci");
        fake_tree_symlink(t, "sys/devices/pci0000:00/0000:00:02.0/driver", "../../../bus/pci/drivers/vfio-pci");
        assert_int_equal(inventory_refresh_device(reader, inv, "0000:00:02.0", on_change, &seen), 0);
        assert_seen(&seen, (const char *const[]){
                                   "driver-changed 0000:00:02.0 e1000e->vfio-pci",
                                   "group-updated 1",
                                   NULL,
                           });
        assert_true(inventory_find_group(inv, 1)->viable);
        assert_string_equal(inventory_find_device(inv, "0000:00:02.0")->driver, "vfio-pci");
        assert_null(inventory_find_device(inv, "0000:00:07.0"));

        /* Unplug: the device and its group go. The remove event comes while the kernel still
         * holds the group's directory, empty. */
        seen.n = 0;
        fake_tree_unlink(t, "sys/bus/pci/devices/0000:00:03.0");
        fake_tree_unlink(t, "sys/kernel/iommu_groups/2/devices/0000:00:03.0");
        assert_int_equal(inventory_refresh_device(reader, inv, "0000:00:03.0", on_change, &seen), 0);
        assert_seen(&seen, (const char *const[]){ "device-removed 0000:00:03.0", "group-removed 2", NULL });
        assert_null(inventory_find_group(inv, 2));
        assert_int_equal(inv->n_devices, 1);

        /* Hot-plug: device and group appear, sorted in. */
        seen.n = 0;
        assert_int_equal(inventory_refresh_device(reader, inv, "0000:00:07.0", on_change, &seen), 0);
        assert_seen(&seen, (const char *const[]){ "device-added 0000:00:07.0", "group-added 7", NULL });
        assert_int_equal(inv->n_devices, 2);
        assert_string_equal(inv->devices[1].address, "0000:00:07.0");
        assert_int_equal(inv->groups[1].id, 7);

        assert_int_equal(inventory_refresh_device(reader, inv, "not-an-address", on_change, &seen), -EINVAL);
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_change),
                cmocka_unit_test(test_diff_after_rescan),
                cmocka_unit_test(test_reused_group_number),
                cmocka_unit_test(test_refresh_device),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
