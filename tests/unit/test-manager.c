/* Unit tests for core/manager.c: numbered events after rescans and udev events, subscription rules. */
#undef NDEBUG
#include <errno.h>
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-tree.h"
#include "manager.h"
#include "uevent-monitor.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

typedef struct Recorder {
        uint64_t sequences[16];
        InventoryChangeKind kinds[16];
        size_t n;
        ManagerSubscription *subscription;
        bool unsubscribe_on_first;
} Recorder;

static void on_event(Manager *m, const ManagerEvent *event, void *userdata) {
        Recorder *r = userdata;

        assert_true(r->n < 16);
        r->sequences[r->n] = event->sequence;
        r->kinds[r->n] = event->change->kind;
        r->n++;
        /* The inventory already shows the change when subscribers hear of it. */
        if (event->change->kind == INVENTORY_DEVICE_DRIVER_CHANGED)
                assert_null(inventory_find_device(manager_get_inventory(m), event->change->new_device->address)->driver);
        if (r->unsubscribe_on_first)
                r->subscription = manager_subscription_free(r->subscription);
}

static FakeTree *host(void) {
        FakeTree *t = fake_tree_new_host("6.12.117+deb12-amd64");

        fake_tree_add_group(t, 1, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:02.0", NULL, "e1000e", 1, 0);
        return t;
}

static Manager *start(FakeTree *t, struct event_base *base, unsigned max_subscribers) {
        const HostRoots *roots = fake_tree_roots(t);
        ManagerOptions options = {
                .sysfs_root = roots->sysfs_path,
                .proc_root = roots->proc_path,
                .dev_root = roots->dev_path,
                .max_subscribers = max_subscribers,
        };
        Manager *m = NULL;

        assert_int_equal(manager_new(base, &options, &m), 0);
        return m;
}

static void test_rescan_publishes_differences(void **state) {
        struct event_base *base = event_base_new();
        FakeTree *t = host();
        Manager *m = start(t, base, 0);
        Recorder a = {}, b = { .unsubscribe_on_first = true };
        unsigned n;

        assert_int_equal(manager_subscribe(m, on_event, &a, &a.subscription), 0);
        assert_int_equal(manager_subscribe(m, on_event, &b, &b.subscription), 0);
        assert_int_equal(manager_n_subscribers(m), 2);

        assert_int_equal(manager_rescan(m, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(manager_get_sequence(m), 0);

        fake_tree_unlink(t, "sys/devices/pci0000:00/0000:00:02.0/driver");
        assert_int_equal(manager_rescan(m, &n), 0);
        assert_int_equal(n, 2); /* driver changed; group 1 became viable */
        assert_int_equal(a.n, 2);
        assert_int_equal(a.sequences[0], 1);
        assert_int_equal(a.kinds[0], INVENTORY_DEVICE_DRIVER_CHANGED);
        assert_int_equal(a.sequences[1], 2);
        assert_int_equal(a.kinds[1], INVENTORY_GROUP_UPDATED);
        /* b left inside its first callback and heard nothing more. */
        assert_int_equal(b.n, 1);
        assert_null(b.subscription);
        assert_int_equal(manager_n_subscribers(m), 1);

        manager_subscription_free(a.subscription);
        manager_free(m);
        fake_tree_free(t);
        event_base_free(base);
}

static void test_uevent_refreshes_one_device(void **state) {
        struct event_base *base = event_base_new();
        FakeTree *t = host();
        Manager *m = start(t, base, 0);
        Recorder a = {};

        assert_int_equal(manager_subscribe(m, on_event, &a, &a.subscription), 0);
        fake_tree_add_group(t, 2, "DMA\n", msi);
        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 2, 0);
        manager_handle_uevent(m, UEVENT_PCI, "add", "0000:00:03.0");
        assert_int_equal(a.n, 2);
        assert_int_equal(a.kinds[0], INVENTORY_DEVICE_ADDED);
        assert_int_equal(a.kinds[1], INVENTORY_GROUP_ADDED);
        assert_non_null(inventory_find_group(manager_get_inventory(m), 2));

        /* An address that is not one is logged and ignored. */
        manager_handle_uevent(m, UEVENT_PCI, "add", "garbage");
        assert_int_equal(a.n, 2);

        manager_subscription_free(a.subscription);
        manager_free(m);
        fake_tree_free(t);
        event_base_free(base);
}

static void test_subscriber_limit_and_late_free(void **state) {
        struct event_base *base = event_base_new();
        FakeTree *t = host();
        Manager *m = start(t, base, 1);
        Recorder a = {}, b = {};

        assert_int_equal(manager_subscribe(m, on_event, &a, &a.subscription), 0);
        assert_int_equal(manager_subscribe(m, on_event, &b, &b.subscription), -EUSERS);
        /* A subscription that outlives its manager can still be freed. */
        manager_free(m);
        manager_subscription_free(a.subscription);
        fake_tree_free(t);
        event_base_free(base);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rescan_publishes_differences),
                cmocka_unit_test(test_uevent_refreshes_one_device),
                cmocka_unit_test(test_subscriber_limit_and_late_free),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
