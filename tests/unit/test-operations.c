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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-kernel.h"
#include "fake-tree.h"
#include "fileio.h"
#include "group-status.h"
#include "macro.h"
#include "operations.h"
#include "string-util.h"
#include "strv.h"
#include "uevent-monitor.h"

static const char msi[] = "0x00000000fee00000 0x00000000feefffff msi\n";

typedef struct Fixture {
        FakeTree *tree;
        struct event_base *base;
        Manager *manager;
        Operations *ops;
        FakeKernel *kernel;
        unsigned kernel_write_timeout_sec;
} Fixture;

typedef struct Result {
        bool done;
        int error;
        uint64_t id;
        char *message;
        char **steps;
} Result;

static void on_done(const OperationOutcome *o, void *userdata) {
        Result *r = userdata;
        size_t n = 0;

        r->done = true;
        r->error = o->error;
        r->id = o->id;
        r->message = o->message ? strdup(o->message) : NULL;
        r->steps = calloc(1, sizeof(char *));
        for (char **s = o->steps; s && *s; s++)
                assert_int_equal(strv_push_dup(&r->steps, &n, *s), 0);
}

static void result_done(Result *r) {
        free(r->message);
        strv_free(r->steps);
        *r = (Result){};
}

/* A host: an e1000e alone in group 1, a bridge with two e1000 in group 2, a boot VGA card in 3. */
static void make_tree(Fixture *f, const char *release, const char *policy) {
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
}

/* The daemon's part: a manager and operations on the tree, as iommud starts them. */
static int daemon_start(Fixture *f) {
        _cleanup_(freep) char *policy_dir = NULL, *journal = NULL, *state = NULL;
        const HostRoots *roots = fake_tree_roots(f->tree);
        ManagerOptions mo;
        OperationsOptions oo;

        policy_dir = strprintf("%s/policy", f->tree->root);
        journal = strprintf("%s/run/journal", f->tree->root);
        state = strprintf("%s/state", f->tree->root);
        mo = (ManagerOptions){ .sysfs_root = roots->sysfs_path, .proc_root = roots->proc_path, .dev_root = roots->dev_path };
        oo = (OperationsOptions){ .policy_dir = policy_dir,
                                  .journal_dir = journal,
                                  .state_dir = state,
                                  .kernel_write_timeout_sec = f->kernel_write_timeout_sec };

        f->base = event_base_new();
        assert_int_equal(manager_new(f->base, &mo, &f->manager), 0);
        return operations_new(f->base, f->manager, &oo, &f->ops);
}

static void daemon_stop(Fixture *f) {
        f->ops = operations_free(f->ops);
        f->manager = manager_free(f->manager);
        event_base_free(f->base);
        f->base = NULL;
}

static void start(Fixture *f, const char *release, const char *policy) {
        make_tree(f, release, policy);
        assert_int_equal(daemon_start(f), 0);
}

static void stop(Fixture *f) {
        daemon_stop(f);
        if (f->kernel)
                fake_kernel_stop(f->kernel);
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

/* The loop turns until nothing is in flight, at most seconds. */
static void turn_loop(Fixture *f, bool (*until)(Fixture *f, void *userdata), void *userdata, unsigned seconds) {
        for (unsigned waited = 0; !until(f, userdata); waited += 5) {
                struct timespec pause = { .tv_nsec = 5 * 1000 * 1000 };

                assert_true(waited < seconds * 1000);
                event_base_loop(f->base, EVLOOP_NONBLOCK);
                nanosleep(&pause, NULL);
        }
}

static bool result_is_done(Fixture *f, void *userdata) {
        return ((Result *)userdata)->done;
}

/* Runs an operation for real (on the fake kernel) and waits for its end. The refusal's errno, or
 * the outcome's. */
static int run_real(Fixture *f, OperationRequest req, Result *result) {
        _cleanup_(freep) char *message = NULL;
        int r;

        *result = (Result){};
        req.client = "test";
        r = operations_start(f->ops, &req, on_done, result, &message);
        if (r < 0) {
                print_message("refused: %s\n", message ?: "?");
                result->message = TAKE_PTR(message);
                return r;
        }
        turn_loop(f, result_is_done, result, 30);
        return result->error;
}

static char *attr(Fixture *f, const char *path) {
        char *s = NULL;

        assert_int_equal(read_attr_at(fake_tree_roots(f->tree)->sysfs_fd, path, &s), 0);
        return s;
}

static char *driver_of(Fixture *f, const char *address) {
        _cleanup_(freep) char *path = strprintf("sys/bus/pci/devices/%s/driver", address);
        char *driver = NULL;

        return read_link_basename_at(fake_tree_roots(f->tree)->sysfs_fd, path, &driver) >= 0 ? driver : NULL;
}

static size_t count_files(Fixture *f, const char *dir) {
        _cleanup_(strv_freep) char **names = NULL;

        if (read_dir_at(fake_tree_roots(f->tree)->sysfs_fd, dir, &names, NULL) < 0)
                return 0;
        return strv_length(names);
}

static GroupStateKind state_of(Fixture *f, unsigned group) {
        return operations_group_state(f->ops, inventory_find_group(manager_get_inventory(f->manager), group), NULL);
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
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 3, .force = true, .role = ROLE_ADMIN }, &result,
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
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 5, .force = true, .role = ROLE_ADMIN }, &result,
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
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result, &message), -EBUSY);
        assert_non_null(strstr(message, "group 1 is critical: 0000:00:02.0 matches"));
        assert_non_null(strstr(message, "10-test.conf:4"));
        free(message);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1, .force = true, .role = ROLE_ADMIN }, &result,
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

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 4, .force = true, .role = ROLE_ADMIN }, &result,
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
                                     (OperationRequest){ .kind = OPERATION_BLOCK, .group = 7, .force = force, .role = ROLE_ADMIN },
                                     &result, &message),
                                 -EBUSY);
                assert_non_null(strstr(message, "group 7 is in use through VFIO: /dev/vfio/7 is held open by pid 812 "
                                                "(python3, uid 65534) (this cannot be forced"));
                free(message);
                assert_int_equal(run(&f,
                                     (OperationRequest){ .kind = OPERATION_SET_DOMAIN_TYPE, .group = 7,
                                                         .type = "identity", .force = force, .role = ROLE_ADMIN },
                                     &result, &message),
                                 -EBUSY);
                assert_non_null(strstr(message, "/dev/vfio/7 is held open by pid 812"));
                free(message);
        }
        stop(&f);
}

#define BOOT_A "11111111-2222-3333-4444-555555555555"
#define BOOT_B "99999999-8888-7777-6666-555555555555"

/* The tree of make_tree() with what real operations need: vfio-pci registered (modules count as
 * loaded when sys/module shows them: fixture roots load nothing), a boot id, and the fake kernel
 * answering binds. */
static void start_real(Fixture *f) {
        make_tree(f, "6.12.117+deb12-amd64", NULL);
        fake_tree_mkdir(f->tree, "sys/module/vfio_pci");
        fake_tree_mkdir(f->tree, "sys/module/vfio_iommu_type1");
        fake_tree_mkdir(f->tree, "sys/bus/pci/drivers/vfio-pci");
        fake_tree_mkdir(f->tree, "dev/vfio");
        fake_tree_write(f->tree, "proc/sys/kernel/random/boot_id", BOOT_A "\n");
        /* Enabled by their drivers; nothing holds them through VFIO. */
        fake_tree_write(f->tree, "sys/bus/pci/devices/0000:00:02.0/enable", "1\n");
        fake_tree_write(f->tree, "sys/bus/pci/devices/0000:01:01.0/enable", "1\n");
        fake_tree_write(f->tree, "sys/bus/pci/devices/0000:01:02.0/enable", "1\n");
        f->kernel = fake_kernel_start(f->tree);
        /* What the kernel binds by the drivers' ID tables. */
        fake_kernel_prefer(f->kernel, "0000:00:02.0", "e1000e");
        fake_kernel_prefer(f->kernel, "0000:01:01.0", "e1000");
        fake_kernel_prefer(f->kernel, "0000:01:02.0", "e1000");
        assert_int_equal(daemon_start(f), 0);
}

/* What a reboot does to the fixture: a new boot id, every override forgotten, every device on the
 * driver the kernel picks at boot, no VFIO nodes. */
static void reboot(Fixture *f, const char *const *drivers) {
        const char *const addresses[] = { "0000:00:02.0", "0000:01:01.0", "0000:01:02.0" };

        fake_tree_write(f->tree, "proc/sys/kernel/random/boot_id", BOOT_B "\n");
        for (size_t i = 0; i < ELEMENTSOF(addresses); i++) {
                _cleanup_(freep) char *override = strprintf("sys/bus/pci/devices/%s/driver_override", addresses[i]),
                                      *link = strprintf("sys/bus/pci/devices/%s/driver", addresses[i]),
                                      *current = driver_of(f, addresses[i]), *target = NULL;

                fake_tree_write(f->tree, override, "(null)\n");
                if (current)
                        fake_tree_unlink(f->tree, link);
                target = strprintf("%s../../../bus/pci/drivers/%s", i > 0 ? "../" : "", drivers[i]);
                link = (free(link), strprintf("sys/devices/pci0000:00/%s%s/driver", i > 0 ? "0000:00:04.0/" : "",
                                              addresses[i]));
                fake_tree_symlink(f->tree, link, target);
        }
        {
                _cleanup_(freep) char *node = strprintf("%s/dev/vfio/1", f->tree->root);

                (void)unlink(node);
        }
}

static char *record_of(Fixture *f, unsigned group) {
        _cleanup_(strv_freep) char **names = NULL;
        char *text = NULL, *path;
        size_t n = 0;
        FILE *file;

        assert_int_equal(read_dir_at(fake_tree_roots(f->tree)->sysfs_fd, "state/groups", &names, NULL), 0);
        for (char **name = names; *name; name++) {
                if (!strstr(*name, ".json") || strstr(*name, ".tmp"))
                        continue;
                path = strprintf("%s/state/groups/%s", f->tree->root, *name);
                file = fopen(path, "re");
                free(path);
                assert_non_null(file);
                free(text);
                text = NULL;
                assert_int_not_equal(getdelim(&text, &n, 0, file), -1);
                fclose(file);
                {
                        _cleanup_(freep) char *needle = strprintf("\"group\":%u,", group);
                        _cleanup_(freep) char *spaced = strprintf("\"group\": %u,", group);

                        if (strstr(text, needle) || strstr(text, spaced))
                                return text;
                }
        }
        free(text);
        return NULL;
}

static char **findings_of(Fixture *f, unsigned group) {
        char **l = NULL;

        assert_int_equal(operations_group_findings(f->ops, inventory_find_group(manager_get_inventory(f->manager), group),
                                                   &l),
                         0);
        return l;
}

/* The record goes to disk before the host changes: when it cannot be written, the operation fails
 * naming the file and the error, and no sysfs file changed. */
static void test_record_before_change(void **state) {
        _cleanup_(freep) char *override = NULL, *driver = NULL, *expected = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        fake_tree_make_read_only(f.tree, "state/groups");
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), -EROFS);
        expected = strprintf("cannot store the record of group 1 in %s/state/groups/0000:00:02.0-", f.tree->root);
        assert_non_null(strstr(result.message, expected));
        assert_non_null(strstr(result.message, "; nothing was changed"));
        override = attr(&f, "sys/bus/pci/devices/0000:00:02.0/driver_override");
        assert_string_equal(override, "(null)");
        driver = driver_of(&f, "0000:00:02.0");
        assert_string_equal(driver, "e1000e");
        assert_int_equal(count_files(&f, "run/journal"), 0);
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        result_done(&result);

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 2 }, &result), -EROFS);
        assert_non_null(strstr(result.message, "cannot store the record of group 2"));
        free(driver);
        driver = driver_of(&f, "0000:01:01.0");
        assert_string_equal(driver, "e1000");
        result_done(&result);
        fake_tree_make_writable(f.tree, "state/groups");
        stop(&f);
}

/* A state directory that cannot be written at start: iommud starts, serves reads, and refuses every
 * operation with the reason. */
static void test_read_only_state_directory(void **state) {
        _cleanup_(freep) char *prefix = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        const char *reason;
        char *message = NULL;
        Fixture f = {};
        Result result;

        make_tree(&f, "6.12.117+deb12-amd64", NULL);
        fake_tree_make_read_only(f.tree, "state");
        assert_int_equal(daemon_start(&f), 0);
        reason = operations_read_only_reason(f.ops);
        assert_non_null(reason);
        prefix = strprintf("state directory %s/state is not writable: %s; iommud serves reads only", f.tree->root,
                           geteuid() == 0 ? "Read-only file system" : "Permission denied");
        assert_string_equal(reason, prefix);

        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result, &message),
                         -EROFS);
        assert_string_equal(message, reason);
        free(message);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result, &message),
                         -EROFS);
        free(message);
        /* Reads go on. */
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        assert_int_equal(operations_plan(f.ops, &plan), 0);
        daemon_stop(&f);
        fake_tree_make_writable(f.tree, "state");

        /* Writable again: a fresh start allows operations. */
        assert_int_equal(daemon_start(&f), 0);
        assert_null(operations_read_only_reason(f.ops));
        stop(&f);
}

/* Prepare stores a settled record with what it set; release loads the original driver's module
 * first, gives everything back and removes the record. */
static void test_prepare_and_release(void **state) {
        _cleanup_(freep) char *record = NULL, *driver = NULL, *override = NULL, *boot = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .owner = "vm1" },
                                  &result),
                         0);
        result_done(&result);
        driver = driver_of(&f, "0000:00:02.0");
        assert_string_equal(driver, "vfio-pci");
        assert_int_equal(state_of(&f, 1), GROUP_VFIO_READY);
        record = record_of(&f, 1);
        assert_non_null(record);
        assert_non_null(strstr(record, "\"pending\":null"));
        assert_non_null(strstr(record, "\"target\":\"vfio-pci\""));
        assert_non_null(strstr(record, "\"driver\":\"e1000e\""));
        boot = strprintf("\"boot_id\":\"%s\"", BOOT_A);
        assert_non_null(strstr(record, boot));
        assert_non_null(strstr(record, "\"subsystem_vendor_id\":32902"));

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), 0);
        assert_string_equal(result.steps[0], "load the module of driver e1000e for 0000:00:02.0");
        result_done(&result);
        free(driver);
        driver = driver_of(&f, "0000:00:02.0");
        assert_string_equal(driver, "e1000e");
        override = attr(&f, "sys/bus/pci/devices/0000:00:02.0/driver_override");
        assert_string_equal(override, "");
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        assert_null(record_of(&f, 1));
        assert_int_equal(count_files(&f, "run/journal"), 0);
        stop(&f);
}

/* Operation ids only grow, across restarts too, and never reach a record kept in the journal. */
static void test_ids_across_restarts(void **state) {
        _cleanup_(freep) char *kept = NULL;
        char *message = NULL;
        Fixture f = {};
        Result result;
        uint64_t first, second;

        start(&f, "6.12.117+deb12-amd64", NULL);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result, &message), 0);
        first = result.id;
        result_done(&result);
        daemon_stop(&f);

        assert_int_equal(daemon_start(&f), 0);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result, &message), 0);
        second = result.id;
        result_done(&result);
        assert_true(second > first);
        daemon_stop(&f);

        /* A record an earlier run could not roll back: kept, and its id is never used again. */
        fake_tree_write(f.tree, "run/journal/500.json", "{not json");
        assert_int_equal(daemon_start(&f), 0);
        assert_int_equal(run(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result, &message), 0);
        assert_true(result.id > 500);
        result_done(&result);
        kept = attr(&f, "run/journal/500.json");
        assert_string_equal(kept, "{not json");
        stop(&f);
}

/* The reboot scenario of the vm suite on a fixture: a prepared group and a blocked group, then a
 * reboot. The prepared group's record is reported as forgotten and retired; its release unbinds
 * nothing; the blocked group is blocked again. */
static bool group_2_reblocked(Fixture *f, void *userdata) {
        _cleanup_(freep) char *a = driver_of(f, "0000:01:01.0"), *b = driver_of(f, "0000:01:02.0");

        return !a && !b && state_of(f, 2) == GROUP_BLOCKED;
}

static void test_reboot(void **state) {
        _cleanup_(strv_freep) char **findings = NULL;
        _cleanup_(freep) char *driver = NULL, *override = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), 0);
        result_done(&result);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 2 }, &result), 0);
        result_done(&result);
        daemon_stop(&f);

        reboot(&f, (const char *const[]){ "e1000e", "e1000", "e1000" });
        assert_int_equal(daemon_start(&f), 0);
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        assert_null(record_of(&f, 1));
        findings = findings_of(&f, 1);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "the record of group 1 (vfio-ready) was retired: it was made in an "
                                            "earlier boot"));

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), -ENOENT);
        assert_non_null(strstr(result.message, "group 1 was not prepared by iommud: nothing is recorded to give "
                                               "back; the record of group 1 (vfio-ready) was retired"));
        result_done(&result);
        driver = driver_of(&f, "0000:00:02.0");
        assert_string_equal(driver, "e1000e");

        turn_loop(&f, group_2_reblocked, NULL, 30);
        override = attr(&f, "sys/bus/pci/devices/0000:01:01.0/driver_override");
        assert_string_equal(override, "none");
        stop(&f);
}


/* udev's events for a device that is unplugged and plugged back, maybe into another group: the
 * device is published before the group it joins, and the groups only after. */
static void replug(Fixture *f, const char *address, const char *parent, unsigned old_group, unsigned new_group,
                   const char *driver) {
        _cleanup_(freep) char *bus_link = strprintf("sys/bus/pci/devices/%s", address),
                              *group_link = strprintf("sys/kernel/iommu_groups/%u/devices/%s", old_group, address),
                              *dir = fake_tree_device_dir(address, parent), *command = NULL;

        fake_tree_unlink(f->tree, bus_link);
        fake_tree_unlink(f->tree, group_link);
        manager_handle_uevent(f->manager, UEVENT_PCI, "remove", address);
        /* The device's directory goes with it: the kernel makes a new one. */
        command = strprintf("rm -rf '%s/%s'", f->tree->root, dir);
        assert_int_equal(system(command), 0);
        if (new_group != old_group)
                fake_tree_add_group(f->tree, new_group, "DMA\n", msi);
        fake_tree_add_pci_device(f->tree, address, parent, driver, new_group, 0);
        manager_handle_uevent(f->manager, UEVENT_PCI, "add", address);
}

/* 0000:00:02.0, in group 9 now, blocked again and the re-application done. */
static bool replugged_blocked(Fixture *f, void *userdata) {
        _cleanup_(freep) char *driver = driver_of(f, "0000:00:02.0"), *override = NULL;

        override = attr(f, "sys/bus/pci/devices/0000:00:02.0/driver_override");
        return !driver && streq(override, "none") && state_of(f, 9) == GROUP_BLOCKED;
}

/* A prepared group of two endpoints: the records follow each device as it is read again after the
 * operation, one at a time, and must hold both; release gives both back. A member unplugged and
 * plugged back is let go of alone; the other stays held and is given back. */
static void test_two_members(void **state) {
        _cleanup_(freep) char *a = NULL, *b = NULL, *record = NULL;
        _cleanup_(strv_freep) char **findings = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 2 }, &result), 0);
        result_done(&result);
        assert_int_equal(state_of(&f, 2), GROUP_VFIO_READY);
        record = record_of(&f, 2);
        assert_non_null(strstr(record, "0000:01:01.0"));
        assert_non_null(strstr(record, "0000:01:02.0"));
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 2 }, &result), 0);
        result_done(&result);
        a = driver_of(&f, "0000:01:01.0");
        b = driver_of(&f, "0000:01:02.0");
        assert_string_equal(a, "e1000");
        assert_string_equal(b, "e1000");

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 2 }, &result), 0);
        result_done(&result);
        replug(&f, "0000:01:02.0", "0000:00:04.0", 2, 2, "e1000");
        findings = findings_of(&f, 2);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "the kernel forgot the driver_override vfio-pci iommud set on "
                                            "0000:01:02.0 of group 2"));
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 2 }, &result), 0);
        assert_int_equal(strv_length(result.steps), 4); /* load e1000, override, unbind, probe: one member */
        result_done(&result);
        free(a);
        a = driver_of(&f, "0000:01:01.0");
        assert_string_equal(a, "e1000");
        stop(&f);
}

/* A blocked device unplugged and plugged back into a group of another number is blocked again: the
 * group's events catch it when the device's own came too early. */
static void test_block_replug(void **state) {
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 1 }, &result), 0);
        result_done(&result);
        replug(&f, "0000:00:02.0", NULL, 1, 9, "e1000e");
        turn_loop(&f, replugged_blocked, NULL, 30);
        stop(&f);
}

/* Unplugged and plugged back in the same boot: the kernel forgot the override; the next look at
 * the device (udev, a rescan) retires the record. */
static void test_replug(void **state) {
        _cleanup_(strv_freep) char **findings = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), 0);
        result_done(&result);
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:02.0/driver_override", "(null)\n");
        fake_tree_unlink(f.tree, "sys/devices/pci0000:00/0000:00:02.0/driver");
        fake_tree_symlink(f.tree, "sys/devices/pci0000:00/0000:00:02.0/driver", "../../../bus/pci/drivers/e1000e");
        assert_int_equal(manager_rescan(f.manager, NULL), 0);
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        assert_null(record_of(&f, 1));
        findings = findings_of(&f, 1);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "the kernel forgot the driver_override iommud set on every member"));
        assert_non_null(strstr(findings[0], "now: 0000:00:02.0 on e1000e (no driver_override)"));
        stop(&f);
}

/* Other hardware at the recorded address after a reboot: reported, left alone, matched to nothing. */
static void test_hardware_changed(void **state) {
        _cleanup_(strv_freep) char **findings = NULL;
        _cleanup_(freep) char *record = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), 0);
        result_done(&result);
        daemon_stop(&f);
        reboot(&f, (const char *const[]){ "e1000e", "e1000", "e1000" });
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:02.0/device", "0x10d4\n");
        assert_int_equal(daemon_start(&f), 0);

        record = record_of(&f, 1);
        assert_non_null(record); /* left alone */
        assert_int_equal(state_of(&f, 1), GROUP_HOST);
        findings = findings_of(&f, 1);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "was made for other hardware at 0000:00:02.0"));
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), -ENOENT);
        result_done(&result);
        stop(&f);
}

/* An unbind the kernel does not return from fails its operation after the bound, leaves the group
 * FAILED with its records kept, and does not stop operations on other groups. */
static void test_unbind_that_hangs(void **state) {
        _cleanup_(freep) char *record = NULL;
        _cleanup_(strv_freep) char **findings = NULL;
        Fixture f = { .kernel_write_timeout_sec = 1 };
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), 0);
        result_done(&result);
        fake_kernel_stall_unbind(f.kernel, "vfio-pci");

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result),
                         -ETIMEDOUT);
        assert_non_null(strstr(result.message, "the kernel did not return from 'unbind 0000:00:02.0 from vfio-pci' "
                                               "within 1 s; the write is still pending; group 1 is left in state "
                                               "FAILED"));
        result_done(&result);
        assert_int_equal(state_of(&f, 1), GROUP_FAILED);
        findings = findings_of(&f, 1);
        assert_non_null(findings[0]);
        assert_non_null(strstr(findings[0], "did not return"));
        record = record_of(&f, 1);
        assert_non_null(strstr(record, "\"action\":\"release\""));
        assert_int_equal(count_files(&f, "run/journal"), 1);

        /* Other groups go on; this one is refused until an admin has seen to it. */
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_BLOCK, .group = 2 }, &result), 0);
        result_done(&result);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), -EBUSY);
        assert_non_null(strstr(result.message, "group 1 is FAILED: the kernel did not return"));
        result_done(&result);
        stop(&f);
}

/* A forced prepare of a physical function disables its VFs in a journaled step and records how many;
 * the release enables them again once the PF's own driver is back. */
static void test_sriov_prepare_and_release(void **state) {
        _cleanup_(freep) char *record = NULL, *numvfs = NULL;
        Fixture f = {};
        Result result;

        start_real(&f);
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:02.0/sriov_totalvfs", "8\n");
        fake_tree_write(f.tree, "sys/devices/pci0000:00/0000:00:02.0/sriov_numvfs", "2\n");
        assert_int_equal(manager_rescan(f.manager, NULL), 0);

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1 }, &result), -EBUSY);
        assert_non_null(strstr(result.message, "has 2 SR-IOV virtual functions enabled"));
        result_done(&result);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .force = true, .role = ROLE_ADMIN },
                                  &result),
                         0);
        assert_true(strv_contains(result.steps, "disable SR-IOV on 0000:00:02.0: its 2 virtual functions are lost"));
        result_done(&result);
        numvfs = attr(&f, "sys/bus/pci/devices/0000:00:02.0/sriov_numvfs");
        assert_string_equal(numvfs, "0");
        record = record_of(&f, 1);
        assert_non_null(strstr(record, "\"sriov_numvfs\":2"));

        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), 0);
        assert_string_equal(result.steps[strv_length(result.steps) - 1], "enable 2 SR-IOV virtual functions on 0000:00:02.0");
        result_done(&result);
        free(numvfs);
        numvfs = attr(&f, "sys/bus/pci/devices/0000:00:02.0/sriov_numvfs");
        assert_string_equal(numvfs, "2");
        stop(&f);
}

/* A group iommud prepared for one owner: another owner is refused; while a process holds its node,
 * every operation names that process, whoever asks. */
static void test_prepared_group_held(void **state) {
        Fixture f = {};
        Result result;

        start_real(&f);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .owner = "vm1" },
                                  &result),
                         0);
        result_done(&result);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .owner = "vm1" },
                                  &result),
                         0);
        assert_null(result.steps[0]);
        result_done(&result);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .owner = "vm2" },
                                  &result),
                         -EBUSY);
        assert_non_null(strstr(result.message, "group 1 is prepared for vm1 already"));
        result_done(&result);

        fake_tree_write(f.tree, "proc/812/comm", "qemu-system-x86\n");
        fake_tree_write(f.tree, "proc/812/status", "Name:\tqemu\nUid:\t64055\t64055\t64055\t64055\n");
        fake_tree_symlink(f.tree, "proc/812/fd/3", "/dev/vfio/1");
        for (int kind = 0; kind < 3; kind++) {
                OperationRequest req = { .group = 1, .owner = "vm2", .dry_run = true };

                req.kind = kind == 0 ? OPERATION_PREPARE : kind == 1 ? OPERATION_BLOCK : OPERATION_SET_DOMAIN_TYPE;
                req.type = "identity";
                assert_int_equal(run_real(&f, req, &result), -EBUSY);
                assert_non_null(strstr(result.message, "/dev/vfio/1 is held open by pid 812 (qemu-system-x86, uid 64055)"));
                result_done(&result);
        }
        fake_tree_unlink(f.tree, "proc/812/fd/3");
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_RELEASE, .group = 1 }, &result), 0);
        result_done(&result);
        stop(&f);
}

/* Every change of a group's status is published on the bus after the change that caused it, with
 * the operation and who asked as its cause. */
typedef struct StatusSeen {
        unsigned n;
        int state[8];
        unsigned changed[8];
        uint64_t operation[8];
        char peer[8][32];
} StatusSeen;

static void on_status_event(Manager *m, const ManagerEvent *event, void *userdata) {
        StatusSeen *seen = userdata;

        if (!event->status || event->status->group != 1 || seen->n >= ELEMENTSOF(seen->state))
                return;
        assert_int_equal(event->cause->kind, EVENT_CAUSE_OPERATION);
        seen->state[seen->n] = event->status->new_state;
        seen->changed[seen->n] = event->status->changed;
        seen->operation[seen->n] = event->cause->operation_id;
        snprintf(seen->peer[seen->n], sizeof(seen->peer[0]), "%s", event->cause->peer ?: "");
        seen->n++;
}

static void test_status_events(void **state) {
        Fixture f = {};
        Result result;
        StatusSeen seen = {};
        ManagerSubscription *sub = NULL;

        start_real(&f);
        assert_int_equal(manager_subscribe_internal(f.manager, on_status_event, &seen, &sub), 0);
        assert_int_equal(run_real(&f, (OperationRequest){ .kind = OPERATION_PREPARE, .group = 1, .owner = "vm1" },
                                  &result),
                         0);
        /* Transitioning when it starts; prepared for vm1 (state and owner) when it is done; then, as the
         * members' drivers are read again, viability and the type-change verdicts follow. */
        assert_true(seen.n >= 2);
        assert_int_equal(seen.state[0], GROUP_TRANSITIONING);
        assert_true(seen.changed[0] & (1u << GROUP_STATUS_STATE));
        {
                unsigned ready = 1;

                while (ready < seen.n && seen.state[ready] != GROUP_VFIO_READY)
                        ready++;
                assert_true(ready < seen.n);
                assert_true(seen.changed[ready] & (1u << GROUP_STATUS_STATE));
                assert_true(seen.changed[ready] & (1u << GROUP_STATUS_OWNER));
                assert_int_equal(seen.state[seen.n - 1], GROUP_VFIO_READY);
        }
        for (unsigned i = 0; i < seen.n; i++) {
                assert_int_equal(seen.operation[i], result.id);
                assert_string_equal(seen.peer[i], "test");
        }
        result_done(&result);
        manager_subscription_free(sub);
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
                cmocka_unit_test(test_sriov_prepare_and_release),
                cmocka_unit_test(test_prepared_group_held),
                cmocka_unit_test(test_vfio_user_never_forced),
                cmocka_unit_test(test_record_before_change),
                cmocka_unit_test(test_read_only_state_directory),
                cmocka_unit_test(test_prepare_and_release),
                cmocka_unit_test(test_status_events),
                cmocka_unit_test(test_ids_across_restarts),
                cmocka_unit_test(test_reboot),
                cmocka_unit_test(test_replug),
                cmocka_unit_test(test_two_members),
                cmocka_unit_test(test_block_replug),
                cmocka_unit_test(test_hardware_changed),
                /* Last: the write it leaves pending is a thread that outlives the test. */
                cmocka_unit_test(test_unbind_that_hangs),
        };

        fake_tree_private_mounts();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
