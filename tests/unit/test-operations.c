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
        assert_non_null(strstr(message, "Linux 6.1 cannot change the type of group 2: it has 3 devices"));
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
                        /* Every kernel's own line for vfio-pci, which matches every device. */
                        "alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n"
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_type_steps),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_multi_device_on_6_12_and_prepare),
                cmocka_unit_test(test_policy_refusals),
                cmocka_unit_test(test_variant_driver),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
