/* Unit tests for core/operations.c on fixture hosts: the steps each operation plans (dry runs) and
 * every refusal: kernel rules by version, host use, policy, bad arguments. Real kernel writes are
 * proved in the vm suite (tests/vm/scenarios/50-operations). */
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
#include "macro.h"
#include "operations.h"
#include "string-util.h"
#include "strv.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

typedef struct Fixture {
        FakeTree *tree;
        struct event_base *base;
        Manager *manager;
        Operations *ops;
} Fixture;

typedef struct Result {
        bool done;
        int error;
        char **steps;
} Result;

static void on_done(const OperationOutcome *o, void *userdata) {
        Result *r = userdata;
        size_t n = 0;

        r->done = true;
        r->error = o->error;
        r->steps = calloc(1, sizeof(char *));
        for (char **s = o->steps; s && *s; s++)
                assert_int_equal(strv_push_dup(&r->steps, &n, *s), 0);
}

/* A host: an e1000e alone in group 1, a bridge with two e1000 in group 2, a boot VGA card in 3. */
static void start(Fixture *f, const char *release, const char *policy) {
        _cleanup_(freep) char *policy_dir = NULL, *journal = NULL, *state = NULL;
        const HostRoots *roots;
        ManagerOptions mo = {};
        OperationsOptions oo = {};

        f->tree = fake_tree_new_host(release);
        fake_tree_add_group(f->tree, 1, "DMA\n", msi);
        fake_tree_add_pci_device(f->tree, "0000:00:02.0", NULL, "e1000e", 1, 0);
        fake_tree_add_group(f->tree, 2, "DMA\n", msi);
        fake_tree_add_pci_device(f->tree, "0000:00:04.0", NULL, NULL, 2, 1);
        fake_tree_add_pci_device(f->tree, "0000:01:01.0", "0000:00:04.0", "e1000", 2, 0);
        fake_tree_add_pci_device(f->tree, "0000:01:02.0", "0000:00:04.0", "e1000", 2, 0);
        fake_tree_add_group(f->tree, 3, "DMA\n", msi);
        fake_tree_add_pci_device(f->tree, "0000:00:05.0", NULL, "bochs-drm", 3, 0);
        fake_tree_write(f->tree, "sys/devices/pci0000:00/0000:00:05.0/boot_vga", "1\n");
        /* The NICs' interfaces exist and are down: nothing of the host runs on them. */
        fake_tree_add_net_interface(f->tree, "0000:00:02.0", NULL, "eth0", 0x1002);
        fake_tree_add_net_interface(f->tree, "0000:01:01.0", "0000:00:04.0", "eth1", 0x1002);
        fake_tree_add_net_interface(f->tree, "0000:01:02.0", "0000:00:04.0", "eth2", 0x1002);
        fake_tree_mkdir(f->tree, "policy");
        if (policy)
                fake_tree_write(f->tree, "policy/10-test.conf", policy);

        roots = fake_tree_roots(f->tree);
        policy_dir = strprintf("%s/policy", f->tree->root);
        journal = strprintf("%s/run/journal", f->tree->root);
        state = strprintf("%s/state", f->tree->root);
        mo = (ManagerOptions){ .sysfs_root = roots->sysfs_path, .proc_root = roots->proc_path, .dev_root = roots->dev_path };
        oo = (OperationsOptions){ .policy_dir = policy_dir, .journal_dir = journal, .state_dir = state };

        f->base = event_base_new();
        assert_int_equal(manager_new(f->base, &mo, &f->manager), 0);
        assert_int_equal(operations_new(f->base, f->manager, &oo, &f->ops), 0);
}

static void stop(Fixture *f) {
        operations_free(f->ops);
        manager_free(f->manager);
        event_base_free(f->base);
        fake_tree_free(f->tree);
}

/* Starts an operation and returns its result; dry runs and refusals finish at once. */
static int run(Fixture *f, OperationRequest req, Result *result, char **message) {
        int r;

        *result = (Result){};
        req.dry_run = true;
        r = operations_start(f->ops, &req, on_done, result, message);
        if (r >= 0)
                assert_true(result->done);
        return r;
}

static void assert_steps(Result *result, const char *const *expected) {
        size_t n = 0;

        for (; expected[n]; n++) {
                assert_non_null(result->steps[n]);
                assert_string_equal(result->steps[n], expected[n]);
        }
        assert_null(result->steps[n]);
        strv_free(result->steps);
}

static void test_set_type_steps(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.1.0-57-amd64", NULL);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 1, .type = "identity" },
                             &result, &message),
                         0);
        assert_steps(&result, (const char *const[]){
                                      "set driver_override of 0000:00:02.0 to none",
                                      "unbind 0000:00:02.0 from e1000e",
                                      "write identity to the type of group 1 (was DMA)",
                                      "clear driver_override of 0000:00:02.0",
                                      "probe 0000:00:02.0 and check it binds to e1000e",
                                      NULL,
                              });

        /* DMA -> DMA-FQ switches the flush queue on in place, bound or not. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 1, .type = "DMA-FQ" },
                             &result, &message),
                         0);
        assert_steps(&result, (const char *const[]){ "write DMA-FQ to the type of group 1 (was DMA)", NULL });

        /* Already so: nothing to do. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 1, .type = "DMA" },
                             &result, &message),
                         0);
        assert_steps(&result, (const char *const[]){ NULL });
        stop(&f);
}

static void test_refusals(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.1.0-57-amd64", NULL);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 2, .type = "identity" },
                             &result, &message),
                         -EOPNOTSUPP);
        assert_non_null(strstr(message, "group 2 cannot be identity: Linux 6.1 cannot change the type of a group "
                                        "with more than one device"));
        free(message);

        /* Not even the in-place DMA -> DMA-FQ: before 6.4 the device count is checked first. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 2, .type = "DMA-FQ" },
                             &result, &message),
                         -EOPNOTSUPP);
        free(message);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 1, .type = "blocked" },
                             &result, &message),
                         -EINVAL);
        assert_non_null(strstr(message, "'blocked' is not a domain type iommud can set"));
        free(message);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 42 }, &result, &message),
                         -ENOENT);
        free(message);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result, &message),
                         -ENOENT);
        assert_non_null(strstr(message, "was not prepared by iommud"));
        free(message);

        /* The boot VGA device is the host's console: only force takes it. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 3 }, &result, &message),
                         -EBUSY);
        assert_non_null(strstr(message, "group 3 is in use by the host: 0000:00:05.0"));
        assert_non_null(strstr(message, "boot VGA device"));
        free(message);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 3, .force = true }, &result,
                             &message),
                         0);
        strv_free(result.steps);
        stop(&f);
}

/* Types the kernel forces are refused before any step, with the group's own reason; a group the kernel
 * refuses to VFIO (a direct region) is refused by PrepareGroup before any step, naming the region. */
static void test_kernel_refusals(void **state) {
        Fixture f = {};
        Result result = {};
        char *message = NULL;

        start(&f, "6.12.117+deb12-amd64", NULL);
        /* Group 4: an untrusted NIC below an external-facing port; group 5: a NIC with an RMRR. */
        fake_tree_add_group(f.tree, 4, "DMA\n", msi);
        fake_tree_add_pci_device(f.tree, "0000:06:00.0", "0000:00:04.0", "e1000e", 4, 0);
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:04.0/0000:06:00.0/removable", "removable\n");
        fake_tree_add_group(f.tree, 5, "DMA\n", "0x000000007b800000 0x000000007b800fff direct\n");
        fake_tree_add_pci_device(f.tree, "0000:00:06.0", NULL, "e1000e", 5, 0);
        fake_tree_add_net_interface(f.tree, "0000:06:00.0", "0000:00:04.0", "eth4", 0x1002);
        fake_tree_add_net_interface(f.tree, "0000:00:06.0", NULL, "eth5", 0x1002);
        assert_int_equal(manager_rescan(f.manager, NULL), 0);

        result.done = false;
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 4, .type = "identity" },
                             &result, &message),
                         -EOPNOTSUPP);
        assert_false(result.done); /* refused: no steps planned, none run */
        assert_non_null(strstr(message, "group 4 cannot be identity: 0000:06:00.0"));
        assert_non_null(strstr(message, "is untrusted"));
        free(message);
        /* DMA is what the kernel wants for it: planned as usual. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 4, .type = "auto" },
                             &result, &message),
                         0);
        assert_int_equal(strv_length(result.steps), 5);
        strv_free(result.steps);

        result.done = false;
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 5, .force = true }, &result,
                             &message),
                         -EOPNOTSUPP);
        assert_false(result.done);
        assert_non_null(strstr(message, "group 5 is not viable for VFIO: its reserved region "
                                        "0x000000007b800000-0x000000007b800fff is direct"));
        free(message);
        /* Blocking it takes nothing from the kernel's rules: allowed. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 5 }, &result, &message), 0);
        strv_free(result.steps);
        stop(&f);
}

static void test_multi_device_on_6_12_and_prepare(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.12.117+deb12-amd64", NULL);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 2, .type = "identity" },
                             &result, &message),
                         0);
        assert_int_equal(strv_length(result.steps), 9);
        strv_free(result.steps);

        /* Overrides on every endpoint first, bridges left alone, then unbind, probe, wait. */
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 2 }, &result, &message), 0);
        assert_steps(&result, (const char *const[]){
                                      "load module vfio_pci",
                                      "load module vfio_iommu_type1",
                                      "set driver_override of 0000:01:01.0 to vfio-pci",
                                      "set driver_override of 0000:01:02.0 to vfio-pci",
                                      "unbind 0000:01:01.0 from e1000",
                                      "unbind 0000:01:02.0 from e1000",
                                      "probe 0000:01:01.0 and check it binds to vfio-pci",
                                      "probe 0000:01:02.0 and check it binds to vfio-pci",
                                      "wait for /dev/vfio/2",
                                      NULL,
                              });
        stop(&f);
}

static void test_policy_refusals(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.12.117+deb12-amd64", "[Match]\nAddress=0000:00:02.0\n[Policy]\nCritical=yes\n");
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result, &message), -EPERM);
        assert_non_null(strstr(message, "group 1 is critical: 0000:00:02.0 matches"));
        assert_non_null(strstr(message, "10-test.conf:4"));
        free(message);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1, .force = true }, &result,
                             &message),
                         0);
        assert_steps(&result, (const char *const[]){ "set driver_override of 0000:00:02.0 to none",
                                                     "unbind 0000:00:02.0 from e1000e", NULL });
        stop(&f);
}

static void test_variant_driver(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.12.117+deb12-amd64", NULL);
        fake_tree_write(f.tree, "lib/modules/6.12.117+deb12-amd64/modules.alias",
                        "alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\n"
                        "alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci\n"
                        "alias vfio_pci:v00008086d000010D3sv*sd*bc02sc*i* example_vfio_pci\n");
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result, &message), 0);
        assert_steps(&result, (const char *const[]){
                                      "load module vfio_pci",
                                      "load module vfio_iommu_type1",
                                      "load module example_vfio_pci",
                                      "set driver_override of 0000:00:02.0 to example_vfio_pci",
                                      "unbind 0000:00:02.0 from e1000e",
                                      "probe 0000:00:02.0 and check it binds to example_vfio_pci",
                                      "wait for /dev/vfio/1",
                                      NULL,
                              });
        stop(&f);
}

/* A physical function with two VFs: taking it destroys them, so only an admin's force does, and says
 * so in a step of its own; a VF's group prepares like any other. */
static void test_sriov_pf(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.12.117+deb12-amd64", NULL);
        fake_tree_add_group(f.tree, 4, "DMA\n", msi);
        fake_tree_add_pci_device(f.tree, "0000:00:06.0", NULL, "e1000e", 4, 0);
        fake_tree_add_net_interface(f.tree, "0000:00:06.0", NULL, "eth3", 0x1002);
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:06.0/sriov_totalvfs", "8\n");
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:06.0/sriov_numvfs", "2\n");
        for (unsigned i = 1; i <= 2; i++) {
                char address[16], path[128], ifname[16];

                snprintf(address, sizeof(address), "0000:00:06.%u", i);
                snprintf(ifname, sizeof(ifname), "eth%u", 3 + i);
                fake_tree_add_group(f.tree, 4 + i, "DMA\n", msi);
                fake_tree_add_pci_device(f.tree, address, NULL, "igbvf", 4 + i, 0);
                fake_tree_add_net_interface(f.tree, address, NULL, ifname, 0x1002);
                snprintf(path, sizeof(path), "sys/devices/pci0000:00/%s/physfn", address);
                fake_tree_symlink(f.tree, path, "../0000:00:06.0");
        }
        assert_int_equal(manager_rescan(f.manager, NULL), 0);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 4 }, &result, &message), -EBUSY);
        assert_non_null(strstr(message, "group 4 is in use by the host: 0000:00:06.0"));
        assert_non_null(strstr(message, "has 2 SR-IOV virtual functions enabled, which iommud must disable to take it "
                                        "from e1000e: "
                                        "0000:00:06.1 (group 5, igbvf), 0000:00:06.2 (group 6, igbvf)"));
        assert_non_null(strstr(message, "(an admin may force it)"));
        free(message);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 4, .force = true }, &result,
                             &message),
                         0);
        assert_steps(&result, (const char *const[]){ "set driver_override of 0000:00:06.0 to none",
                                                     "disable SR-IOV on 0000:00:06.0: its 2 virtual functions are lost",
                                                     "unbind 0000:00:06.0 from e1000e", NULL });

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 5 }, &result, &message), 0);
        assert_steps(&result, (const char *const[]){ "load module vfio_pci", "load module vfio_iommu_type1",
                                                     "set driver_override of 0000:00:06.1 to vfio-pci",
                                                     "unbind 0000:00:06.1 from igbvf",
                                                     "probe 0000:00:06.1 and check it binds to vfio-pci",
                                                     "wait for /dev/vfio/5", NULL });
        stop(&f);
}

/* A group on vfio-pci whose node another user's process holds: no unbind of it ever starts, force or
 * not, because the kernel would block in it. */
static void test_vfio_user_never_forced(void **state) {
        Fixture f = {};
        Result result;
        char *message = NULL;

        start(&f, "6.1.0-57-amd64", NULL);
        fake_tree_add_group(f.tree, 7, "DMA\n", msi);
        fake_tree_add_pci_device(f.tree, "0000:00:07.0", NULL, "vfio-pci", 7, 0);
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:07.0/enable", "0\n");
        fake_tree_write(f.tree, "dev/vfio/7", "");
        fake_tree_write(f.tree, "proc/812/comm", "python3\n");
        fake_tree_write(f.tree, "proc/812/status", "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\n");
        fake_tree_symlink(f.tree, "proc/812/fd/3", "/dev/vfio/7");
        assert_int_equal(manager_rescan(f.manager, NULL), 0);

        for (int force = 0; force < 2; force++) {
                assert_int_equal(run(&f,
                                     (OperationRequest){ .kind = OPERATION_BLOCK, .group = 7, .force = force },
                                     &result, &message),
                                 -EBUSY);
                assert_non_null(strstr(message, "group 7 is in use through VFIO: /dev/vfio/7 is held open by pid 812 "
                                                "(python3, uid 65534) (this cannot be forced"));
                free(message);
                assert_int_equal(run(&f,
                                     (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 7,
                                                         .type = "identity", .force = force },
                                     &result, &message),
                                 -EBUSY);
                assert_non_null(strstr(message, "/dev/vfio/7 is held open by pid 812"));
                free(message);
        }
        stop(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_type_steps),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_kernel_refusals),
                cmocka_unit_test(test_multi_device_on_6_12_and_prepare),
                cmocka_unit_test(test_policy_refusals),
                cmocka_unit_test(test_variant_driver),
                cmocka_unit_test(test_sriov_pf),
                cmocka_unit_test(test_vfio_user_never_forced),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
