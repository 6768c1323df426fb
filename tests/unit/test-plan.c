/* Unit tests for policy/plan.c: merged settings, conflicts, steps and their reasons, against small
 * inventories built here and one read from a fake sysfs tree. */
#undef NDEBUG
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inventory.h"
#include "macro.h"
#include "plan.h"
#include "policy-test.h"

static char *all_types[] = { "identity", "DMA", "DMA-FQ", "auto", NULL };

/* Group 1: an NVIDIA GPU and its audio function. Group 2: an Intel NIC. Sorted, as the inventory is. */
static Device devices[] = {
        { .address = "0000:00:1f.6", .vendor_id = 0x8086, .class_code = 0x020000, .driver = "e1000e",
          .group = 2 },
        { .address = "0000:01:00.0", .vendor_id = 0x10de, .class_code = 0x030000, .driver = "nvidia",
          .group = 1 },
        { .address = "0000:01:00.1", .vendor_id = 0x10de, .class_code = 0x040300, .driver = "snd_hda_intel",
          .group = 1 },
};

typedef struct TestHost {
        Group groups[2];
        Inventory inv;
} TestHost;

static void test_host_init(TestHost *h, DomainType type) {
        static char *gpu_members[] = { "0000:01:00.0", "0000:01:00.1", NULL };
        static char *nic_members[] = { "0000:00:1f.6", NULL };

        *h = (TestHost){
                .groups = {
                        { .id = 1, .type = type, .devices = gpu_members, .n_devices = 2,
                          .type_change = { .writable = true, .allowed = all_types } },
                        { .id = 2, .type = type, .devices = nic_members, .n_devices = 1,
                          .type_change = { .writable = true, .allowed = all_types } },
                },
        };
        for (size_t i = 0; i < ELEMENTSOF(h->groups); i++)
                h->groups[i].type_raw = (char *)domain_type_to_string(type);
        h->inv.groups = h->groups;
        h->inv.n_groups = ELEMENTSOF(h->groups);
        h->inv.devices = devices;
        h->inv.n_devices = ELEMENTSOF(devices);
}

static Plan *compute(const Policy *p, const TestHost *h) {
        Plan *plan = NULL;

        assert_int_equal(plan_compute(p, &h->inv, &plan), 0);
        assert_non_null(plan);
        return plan;
}

static const PlanGroup *group(const Plan *plan, unsigned id) {
        const PlanGroup *g = plan_find_group(plan, id);

        assert_non_null(g);
        return g;
}

static void test_set_type(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nVendor=10de\n\n[Policy]\nDomainType=identity\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_(freep) char *expected = NULL;
        const PlanGroup *g;
        TestHost h;

        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        assert_int_equal(plan->n_groups, 2);
        assert_int_equal(plan->n_conflicts, 0);

        g = group(plan, 1);
        assert_string_equal(g->domain_type, "identity");
        assert_false(g->conflict);
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_SET_TYPE);
        assert_string_equal(g->steps[0].argument, "identity");
        assert_false(g->steps[0].blocked);
        assert_true(asprintf(&expected,
                             "0000:01:00.0 matches %s:1 (Vendor=10de) -> DomainType=identity (line 5); "
                             "group 1 has DMA",
                             p->rules[0].file) >= 0);
        assert_string_equal(g->steps[0].reason, expected);
        assert_string_equal(g->origins[POLICY_DOMAIN_TYPE].device, "0000:01:00.0");
        assert_int_equal(g->origins[POLICY_DOMAIN_TYPE].line, 5);
        assert_null(g->passthrough_refusal);

        /* No rule for the NIC: one "none" step saying so. */
        g = group(plan, 2);
        assert_null(g->domain_type);
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_NONE);
        assert_null(g->steps[0].argument);
        assert_string_equal(g->steps[0].reason, "no rule matches a member of group 2");

        /* Already there: nothing to do, and the reason says so. */
        plan = plan_free(plan);
        test_host_init(&h, DOMAIN_TYPE_IDENTITY);
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_NONE);
        assert_contains(g->steps[0].reason, "-> DomainType=identity (line 5); group 1 already has identity");

        fake_tree_free(t);
}

static void test_kernel_refuses(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nVendor=10de\n[Policy]\nDomainType=identity\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        const PlanGroup *g;
        TestHost h;

        /* What the inventory says on 6.12 with a DMA-API driver bound: SetDomainType unbinds it around
         * the write, so the step is not blocked, and its reason says so. */
        test_host_init(&h, DOMAIN_TYPE_DMA);
        h.groups[0].type_change.allowed = (char *[]){ "DMA-FQ", NULL };
        h.groups[0].type_change.reason =
                "0000:01:00.0 is bound to nvidia, which uses the DMA API; unbind it first";
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_SET_TYPE);
        assert_false(g->steps[0].blocked);
        assert_non_null(strstr(g->steps[0].reason, "iommud unbinds the members' drivers around the write"));
        assert_non_null(strstr(g->steps[0].reason, h.groups[0].type_change.reason));

        /* A type the kernel refuses whatever is bound blocks the step, with the refusal's reason. */
        plan = plan_free(plan);
        h.groups[0].type_change.refused = (TypeRefusal[]){ { .type = "identity", .reason = "a direct region" } };
        h.groups[0].type_change.n_refused = 1;
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_true(g->steps[0].blocked);
        assert_string_equal(g->steps[0].blocked_reason, "a direct region");

        /* A type attribute the kernel cannot write at all: blocked, and said so. */
        plan = plan_free(plan);
        h.groups[0].type_change.refused = NULL;
        h.groups[0].type_change.n_refused = 0;
        h.groups[0].type_change.writable = false;
        h.groups[0].type_change.reason = NULL;
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_true(g->steps[0].blocked);
        assert_string_equal(g->steps[0].blocked_reason, "the kernel does not allow writing identity to group 1");

        fake_tree_free(t);
}

static void test_conflicting_domain_types(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nAddress=0000:01:00.0\n[Policy]\nDomainType=identity\n",
                                 "[Match]\nAddress=0000:01:00.1\n[Policy]\nDomainType=DMA-FQ\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_(freep) char *expected = NULL;
        const PlanConflict *c;
        const PlanGroup *g;
        TestHost h;

        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_true(g->conflict);
        assert_int_equal(g->n_steps, 0);
        assert_null(g->domain_type);

        assert_int_equal(plan->n_conflicts, 1);
        c = &plan->conflicts[0];
        assert_int_equal(c->group, 1);
        assert_true(
                asprintf(&expected,
                         "group 1: rules disagree on DomainType=: 0000:01:00.0 DomainType=identity (%s:4), "
                         "0000:01:00.1 DomainType=DMA-FQ (%s:4)",
                         p->rules[0].file, p->rules[1].file) >= 0);
        assert_string_equal(c->message, expected);
        assert_int_equal(c->n_origins, 2);
        assert_string_equal(c->origins[1].device, "0000:01:00.1");
        assert_string_equal(c->origins[1].file, p->rules[1].file);
        assert_string_equal(c->origins[1].setting, "DomainType=DMA-FQ");

        /* The other group is planned as usual. */
        assert_false(group(plan, 2)->conflict);

        fake_tree_free(t);
}

static void test_two_rules_one_device(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = NULL, *agreeing = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        TestHost h;

        /* Later files cannot override earlier ones: different values for one device conflict. */
        p = policy_test_load(t, "[Match]\nVendor=8086\n[Policy]\nDomainType=identity\n",
                             "[Match]\nClass=02\n[Policy]\nDomainType=DMA\n", NULL);
        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        assert_true(group(plan, 2)->conflict);
        assert_int_equal(plan->n_conflicts, 1);
        assert_int_equal(plan->conflicts[0].n_origins, 2);
        assert_string_equal(plan->conflicts[0].origins[0].device, "0000:00:1f.6");
        assert_string_equal(plan->conflicts[0].origins[1].device, "0000:00:1f.6");
        fake_tree_free(t);

        /* The same value twice is agreement, not a conflict; the first rule is the origin. */
        plan = plan_free(plan);
        t = fake_tree_new();
        agreeing = policy_test_load(t, "[Match]\nVendor=8086\n[Policy]\nDomainType=identity\n",
                                    "[Match]\nClass=02\n[Policy]\nDomainType=identity\n", NULL);
        plan = compute(agreeing, &h);
        assert_int_equal(plan->n_conflicts, 0);
        assert_string_equal(group(plan, 2)->origins[POLICY_DOMAIN_TYPE].file, agreeing->rules[0].file);
        assert_int_equal(group(plan, 2)->steps[0].kind, PLAN_STEP_SET_TYPE);
        fake_tree_free(t);
}

static void test_critical_vs_bind_at_boot(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nAddress=0000:01:00.1\n[Policy]\nCritical=yes\n",
                                 "[Match]\nAddress=0000:01:00.0\n[Policy]\nBindAtBoot=vfio-pci\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_(freep) char *expected = NULL;
        const PlanGroup *g;
        TestHost h;

        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_true(g->conflict);
        assert_true(g->critical);
        assert_int_equal(g->n_steps, 0);
        assert_non_null(g->passthrough_refusal);

        assert_int_equal(plan->n_conflicts, 1);
        assert_true(asprintf(&expected,
                             "group 1: Critical=yes conflicts with BindAtBoot=: 0000:01:00.1 Critical=yes "
                             "(%s:4), "
                             "0000:01:00.0 BindAtBoot=vfio-pci (%s:4)",
                             p->rules[0].file, p->rules[1].file) >= 0);
        assert_string_equal(plan->conflicts[0].message, expected);
        fake_tree_free(t);
}

static void test_critical(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nDriver=e1000e\n[Policy]\nCritical=yes\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        const PlanGroup *g;
        TestHost h;

        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        g = group(plan, 2);
        assert_true(g->critical);
        assert_false(g->conflict);
        assert_int_equal(g->n_steps, 0);
        assert_contains(g->passthrough_refusal, "0000:00:1f.6 matches ");
        assert_contains(g->passthrough_refusal, "(Driver=e1000e) -> Critical=yes (line 4)");
        fake_tree_free(t);
}

static void test_passthrough_deny(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = NULL, *both = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        const PlanGroup *g;
        TestHost h;

        p = policy_test_load(t, "[Match]\nVendor=8086\n[Policy]\nPassthrough=deny\n", NULL);
        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        g = group(plan, 2);
        assert_int_equal(g->passthrough, PASSTHROUGH_DENY);
        assert_contains(g->passthrough_refusal, "-> Passthrough=deny (line 4)");
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_NONE);
        assert_contains(g->steps[0].reason, "-> Passthrough=deny");
        assert_null(group(plan, 1)->passthrough_refusal);
        fake_tree_free(t);

        /* Deny for one member, bind at boot for another: a conflict, and refusing is the safe side. */
        plan = plan_free(plan);
        t = fake_tree_new();
        both = policy_test_load(t, "[Match]\nAddress=0000:01:00.1\n[Policy]\nPassthrough=deny\n",
                                "[Match]\nAddress=0000:01:00.0\n[Policy]\nBindAtBoot=vfio-pci\n", NULL);
        plan = compute(both, &h);
        g = group(plan, 1);
        assert_true(g->conflict);
        assert_int_equal(g->n_steps, 0);
        assert_contains(plan->conflicts[0].message, "Passthrough=deny conflicts with BindAtBoot=");
        assert_non_null(g->passthrough_refusal);
        fake_tree_free(t);

        /* Allow against deny: the same. */
        plan = plan_free(plan);
        t = fake_tree_new();
        both = policy_free(both);
        both = policy_test_load(t, "[Match]\nAddress=0000:01:00.1\n[Policy]\nPassthrough=deny\n",
                                "[Match]\nAddress=0000:01:00.0\n[Policy]\nPassthrough=allow\n", NULL);
        plan = compute(both, &h);
        g = group(plan, 1);
        assert_true(g->conflict);
        assert_string_equal(g->passthrough_refusal, plan->conflicts[0].message);
        fake_tree_free(t);
}

static void test_prepare(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = policy_test_load(
                t, "[Match]\nVendor=10de\n[Policy]\nDomainType=identity\nBindAtBoot=vfio-pci\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        Device saved[ELEMENTSOF(devices)];
        const PlanGroup *g;
        TestHost h;

        /* Type first, then the binding: before 6.4 the type can change only while nothing is bound. */
        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_string_equal(g->bind_at_boot, "vfio-pci");
        assert_int_equal(g->n_steps, 2);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_SET_TYPE);
        assert_int_equal(g->steps[1].kind, PLAN_STEP_PREPARE);
        assert_string_equal(g->steps[1].argument, "vfio-pci");
        assert_contains(g->steps[1].reason,
                        "-> BindAtBoot=vfio-pci (line 5); 0000:01:00.0 is bound to nvidia");

        /* Everything on VFIO already, in the wanted type: nothing to do. */
        memcpy(saved, devices, sizeof(devices));
        devices[1].driver = devices[2].driver = "vfio-pci";
        devices[1].vfio_bound = devices[2].vfio_bound = true;
        plan = plan_free(plan);
        test_host_init(&h, DOMAIN_TYPE_IDENTITY);
        plan = compute(p, &h);
        g = group(plan, 1);
        assert_int_equal(g->n_steps, 1);
        assert_int_equal(g->steps[0].kind, PLAN_STEP_NONE);
        assert_contains(g->steps[0].reason, "group 1 already has identity");
        assert_contains(g->steps[0].reason, "every member of group 1 is bound to a VFIO driver");

        /* One unbound member is enough to need the step. */
        devices[2].driver = NULL;
        devices[2].vfio_bound = false;
        plan = plan_free(plan);
        plan = compute(p, &h);
        assert_contains(group(plan, 1)->steps[0].reason, "0000:01:00.1 has no driver");

        memcpy(devices, saved, sizeof(devices));
        fake_tree_free(t);
}

static void test_auto(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nVendor=8086\n[Policy]\nDomainType=auto\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        TestHost h;

        /* The default is not known from the command line: no guess, no step. */
        test_host_init(&h, DOMAIN_TYPE_IDENTITY);
        plan = compute(p, &h);
        assert_int_equal(group(plan, 2)->steps[0].kind, PLAN_STEP_NONE);
        assert_contains(group(plan, 2)->steps[0].reason, "the kernel's default type is not known");

        /* iommu.strict=1: the default is DMA. */
        plan = plan_free(plan);
        h.inv.host.cmdline_default_type = DOMAIN_TYPE_DMA;
        plan = compute(p, &h);
        assert_int_equal(group(plan, 2)->steps[0].kind, PLAN_STEP_SET_TYPE);
        assert_string_equal(group(plan, 2)->steps[0].argument, "auto");

        plan = plan_free(plan);
        test_host_init(&h, DOMAIN_TYPE_DMA);
        h.inv.host.cmdline_default_type = DOMAIN_TYPE_DMA;
        plan = compute(p, &h);
        assert_int_equal(group(plan, 2)->steps[0].kind, PLAN_STEP_NONE);
        fake_tree_free(t);
}

/* The inventory's own verdicts, read from a fake host: Linux 6.1 cannot retype a group of two. */
static void test_from_fake_tree(void **state) {
        FakeTree *t = fake_tree_new_host("6.1.0-13-amd64");
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        const PlanGroup *g;

        fake_tree_add_pci_device(t, "0000:00:03.0", NULL, NULL, 5, 0);
        fake_tree_add_pci_device(t, "0000:00:03.1", NULL, NULL, 5, 0);
        fake_tree_add_group(t, 5, "DMA\n", "");
        fake_tree_add_pci_device(t, "0000:00:04.0", NULL, "e1000e", 6, 0);
        fake_tree_add_group(t, 6, "DMA\n", "");
        assert_int_equal(inventory_load(fake_tree_roots(t), NULL, &inv), 0);

        p = policy_test_load(t, "[Match]\nVendor=8086\n[Policy]\nDomainType=identity\n", NULL);
        assert_int_equal(plan_compute(p, inv, &plan), 0);

        g = group(plan, 5);
        assert_int_equal(g->n_steps, 1);
        assert_true(g->steps[0].blocked);
        assert_contains(g->steps[0].blocked_reason, "more than one device");
        /* e1000e is in the way, but the operation unbinds it itself: not blocked. */
        g = group(plan, 6);
        assert_false(g->steps[0].blocked);
        assert_contains(g->steps[0].reason, "0000:00:04.0 is bound to e1000e");
        fake_tree_free(t);
}

static void test_to_json(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = policy_test_load(
                t, "[Match]\nAddress=0000:01:00.0\n[Policy]\nDomainType=identity\n",
                "[Match]\nAddress=0000:01:00.1\n[Policy]\nDomainType=DMA\n",
                "[Match]\nVendor=8086\n[Policy]\nDomainType=identity\nPassthrough=deny\n", NULL);
        _cleanup_(plan_freep) Plan *plan = NULL;
        json_object *j, *groups, *conflicts, *nic, *steps, *step;
        TestHost h;

        test_host_init(&h, DOMAIN_TYPE_DMA);
        plan = compute(p, &h);
        j = plan_to_json(plan);
        assert_true(json_object_object_get_ex(j, "groups", &groups));
        assert_int_equal(json_object_array_length(groups), 2);
        assert_true(json_object_object_get_ex(j, "conflicts", &conflicts));
        assert_int_equal(json_object_array_length(conflicts), 1);
        assert_int_equal(json_object_get_int(
                                 json_object_object_get(json_object_array_get_idx(conflicts, 0), "group")),
                         1);

        nic = json_object_array_get_idx(groups, 1);
        assert_int_equal(json_object_get_int(json_object_object_get(nic, "group")), 2);
        assert_string_equal(json_object_get_string(json_object_object_get(nic, "domain_type")), "identity");
        assert_string_equal(json_object_get_string(json_object_object_get(nic, "passthrough")), "deny");
        assert_non_null(json_object_get_string(json_object_object_get(nic, "passthrough_refusal")));
        assert_int_equal(json_object_array_length(json_object_object_get(nic, "origins")), 2);
        steps = json_object_object_get(nic, "steps");
        assert_int_equal(json_object_array_length(steps), 1);
        step = json_object_array_get_idx(steps, 0);
        assert_string_equal(json_object_get_string(json_object_object_get(step, "step")), "set-type");
        assert_string_equal(json_object_get_string(json_object_object_get(step, "argument")), "identity");
        assert_false(json_object_get_boolean(json_object_object_get(step, "blocked")));

        json_object_put(j);
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_type),
                cmocka_unit_test(test_kernel_refuses),
                cmocka_unit_test(test_conflicting_domain_types),
                cmocka_unit_test(test_two_rules_one_device),
                cmocka_unit_test(test_critical_vs_bind_at_boot),
                cmocka_unit_test(test_critical),
                cmocka_unit_test(test_passthrough_deny),
                cmocka_unit_test(test_prepare),
                cmocka_unit_test(test_auto),
                cmocka_unit_test(test_from_fake_tree),
                cmocka_unit_test(test_to_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
