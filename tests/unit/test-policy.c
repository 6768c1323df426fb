/* Unit tests for policy/policy.c: reading rule files, and every malformed case naming file:line. */
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

#include "macro.h"
#include "policy-test.h"
#include "policy.h"

#define POLICY_TRAILER "[Policy]\nCritical=yes\n"

static const char gpu_rule[] = "# GPUs for guests\n"
                               "[Match]\n"
                               "Vendor=10de\n"
                               "Device=2204\n"
                               "Subsystem=1458:403b\n"
                               "Class=03\n"
                               "Address=0000:01:00.*\n"
                               "Driver=nvidia none\n"
                               "Serial=01-23-45-67-89-ab-cd-ef\n"
                               "Group=12\n"
                               "NumaNode=1\n"
                               "\n"
                               "[Policy]\n"
                               "DomainType=identity\n"
                               "Passthrough=allow\n"
                               "BindAtBoot=vfio-pci\n";

static void test_good_file(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = policy_test_load(
                t, gpu_rule, "[Match]\nAddress=0000:00:1f.6\n\n[Policy]\nCritical=true\n", NULL);
        const Rule *r;

        assert_int_equal(p->n_rules, 2);
        r = &p->rules[0];
        assert_non_null(strstr(r->file, "/policy.d/10.conf"));
        assert_int_equal(r->line, 2);
        assert_int_equal(r->vendor, 0x10de);
        assert_int_equal(r->device, 0x2204);
        assert_int_equal(r->subsystem_vendor, 0x1458);
        assert_int_equal(r->subsystem_device, 0x403b);
        assert_int_equal(r->class_value, 0x030000);
        assert_int_equal(r->class_mask, 0xff0000);
        assert_string_equal(r->match[MATCH_ADDRESS].value, "0000:01:00.*");
        assert_string_equal(r->drivers[0], "nvidia");
        assert_string_equal(r->drivers[1], "none");
        assert_null(r->drivers[2]);
        assert_true(r->serial == 0x0123456789abcdefULL);
        assert_int_equal(r->group, 12);
        assert_int_equal(r->numa_node, 1);
        assert_string_equal(r->domain_type, "identity");
        assert_int_equal(r->passthrough, PASSTHROUGH_ALLOW);
        assert_string_equal(r->bind_at_boot, "vfio-pci");
        assert_false(r->critical);

        /* Each key remembers its line. */
        assert_int_equal(r->match[MATCH_VENDOR].line, 3);
        assert_int_equal(r->match[MATCH_NUMA_NODE].line, 11);
        assert_int_equal(r->action[POLICY_DOMAIN_TYPE].line, 14);
        assert_int_equal(r->action[POLICY_BIND_AT_BOOT].line, 16);
        assert_int_equal(r->action[POLICY_CRITICAL].line, 0);

        /* Action values are canonical: "true" is stored as "yes". */
        r = &p->rules[1];
        assert_true(r->critical);
        assert_string_equal(r->action[POLICY_CRITICAL].value, "yes");
        assert_int_equal(r->action[POLICY_CRITICAL].line, 5);

        fake_tree_free(t);
}

static void test_class_forms(void **state) {
        static const struct {
                const char *value;
                uint32_t class_value, mask;
        } cases[] = {
                { "03", 0x030000, 0xff0000 },
                { "0302", 0x030200, 0xffff00 },
                { "010802", 0x010802, 0xffffff },
                { "0300/ff00", 0x030000, 0xff0000 },
                { "0c0300/ffff00", 0x0c0300, 0xffff00 },
        };

        FOREACH_ARRAY(c, cases, ELEMENTSOF(cases)) {
                FakeTree *t = fake_tree_new();
                _cleanup_(freep) char *text = NULL;
                _cleanup_(policy_freep) Policy *p = NULL;

                assert_true(asprintf(&text, "[Match]\nClass=%s\n" POLICY_TRAILER, c->value) >= 0);
                p = policy_test_load(t, text, NULL);
                assert_int_equal(p->rules[0].class_value, c->class_value);
                assert_int_equal(p->rules[0].class_mask, c->mask);
                fake_tree_free(t);
        }
}

static void test_dir_order_and_names(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(freep) char *dir = NULL, *missing = NULL;
        PolicyErrors errors = {};

        /* Byte order of names; only *.conf, no hidden files. */
        fake_tree_write(t, "policy.d/20-b.conf", "[Match]\nGroup=2\n" POLICY_TRAILER);
        fake_tree_write(t, "policy.d/10-a.conf", "[Match]\nGroup=1\n" POLICY_TRAILER);
        fake_tree_write(t, "policy.d/30-c.conf.disabled", "garbage");
        fake_tree_write(t, "policy.d/.40-d.conf", "garbage");
        fake_tree_write(t, "policy.d/README", "garbage");
        assert_true(asprintf(&dir, "%s/policy.d", t->root) >= 0);
        assert_int_equal(policy_load_dir(dir, &p, &errors), 0);
        assert_int_equal(errors.n, 0);
        assert_int_equal(p->n_rules, 2);
        assert_int_equal(p->rules[0].group, 1);
        assert_int_equal(p->rules[1].group, 2);
        p = policy_free(p);

        /* One bad file refuses the whole policy: the good ones alone could miss a Critical=yes. */
        fake_tree_write(t, "policy.d/15-bad.conf", "[Match]\nVendor=nvidia\n" POLICY_TRAILER);
        assert_int_equal(policy_load_dir(dir, &p, &errors), -EINVAL);
        assert_null(p);
        assert_int_equal(errors.n, 1);
        assert_int_equal(errors.items[0].line, 2);
        policy_errors_done(&errors);

        /* No directory: no rules, no error. */
        assert_true(asprintf(&missing, "%s/nonexistent", t->root) >= 0);
        assert_int_equal(policy_load_dir(missing, &p, &errors), 0);
        assert_int_equal(p->n_rules, 0);
        assert_int_equal(errors.n, 0);

        fake_tree_free(t);
}

/* Loads content as a single file; expects exactly one error, at 'line', mentioning 'what'. */
static void assert_rejected(const char *content, unsigned line, const char *what) {
        FakeTree *t = fake_tree_new();
        _cleanup_(freep) char *path = NULL;
        PolicyErrors errors = {};
        Policy *p = NULL;

        fake_tree_write(t, "bad.conf", content);
        assert_true(asprintf(&path, "%s/bad.conf", t->root) >= 0);
        assert_int_equal(policy_load_files((char *[]){ path, NULL }, &p, &errors), -EINVAL);
        assert_null(p);
        if (errors.n != 1) {
                policy_errors_print(&errors, stderr);
                fail_msg("expected one error for:\n%s", content);
        }
        assert_string_equal(errors.items[0].file, path);
        if (errors.items[0].line != line)
                fail_msg("expected line %u, got %u: %s", line, errors.items[0].line,
                         errors.items[0].message);
        assert_contains(errors.items[0].message, what);
        policy_errors_done(&errors);
        fake_tree_free(t);
}

static void test_malformed(void **state) {
        static const struct {
                const char *text;
                unsigned line;
                const char *what;
        } cases[] = {
                /* structure */
                { "[Match]\nVendor=10de\n[Frob]\nCritical=yes\n", 3, "unknown section [Frob]" },
                { "[Match]\nVendor=10de\n[policy]\nCritical=yes\n", 3, "did you mean [Policy]?" },
                { "[Policy]\nCritical=yes\n", 1, "[Policy] without a [Match] section" },
                { "[Match]\nVendor=10de\n" POLICY_TRAILER "[Match]\nVendor=8086\n", 5,
                 "a second [Match] section" },
                { "[Match]\nVendor=10de\n" POLICY_TRAILER "[Policy]\nCritical=no\n", 5,
                 "a second [Policy] section" },
                { "[Match]\n" POLICY_TRAILER, 1, "[Match] has no keys" },
                { "# only a match\n[Match]\nVendor=10de\n", 2, "[Match] without a [Policy] section" },
                { "[Match]\nVendor=10de\n[Policy]\n", 3, "[Policy] sets nothing" },
                { "Vendor=10de\n[Match]\nDevice=2204\n" POLICY_TRAILER, 1,
                 "Vendor= is outside of any section" },
                { "[Match]\nVendor 10de\n" POLICY_TRAILER, 2, "syntax error" },
                { "# nothing but a comment\n", 0, "no rule" },
                /* keys */
                { "[Match]\nVendr=10de\n" POLICY_TRAILER, 2, "unknown key Vendr= in [Match]" },
                { "[Match]\nvendor=10de\n" POLICY_TRAILER, 2, "did you mean Vendor=?" },
                { "[Match]\nVendor=10de\nCritical=yes\n[Policy]\nPassthrough=deny\n", 3,
                 "Critical= belongs in the [Policy] section" },
                { "[Match]\nVendor=10de\nVendor=8086\n" POLICY_TRAILER, 3,
                 "Vendor= is set twice, here and at line 2" },
                { "[Match]\nDriver=a\nDriver=b\n" POLICY_TRAILER, 3, "list alternatives in one line" },
                { "[Match]\nVendor=\n" POLICY_TRAILER, 2, "empty value" },
                { "[Match]\nVendor=10de # NVIDIA\n" POLICY_TRAILER, 2,
                 "comments must be on a line of their own" },
                /* values */
                { "[Match]\nVendor=10dex\n" POLICY_TRAILER, 2,
                  "[Match] Vendor=10dex: expected 4 hex digits" },
                { "[Match]\nDevice=0x2204\n" POLICY_TRAILER, 2, "expected 4 hex digits" },
                { "[Match]\nSubsystem=1458-403b\n" POLICY_TRAILER, 2, "expected VENDOR:DEVICE" },
                { "[Match]\nClass=3\n" POLICY_TRAILER, 2, "2, 4 or 6 hex digits" },
                { "[Match]\nClass=0301/ff00\n" POLICY_TRAILER, 2, "bits set outside the mask" },
                { "[Match]\nClass=0300/ff\n" POLICY_TRAILER, 2, "as many hex digits as the class" },
                { "[Match]\nClass=00/00\n" POLICY_TRAILER, 2, "a zero mask matches every device" },
                { "[Match]\nAddress=0000:0A:00.0\n" POLICY_TRAILER, 2, "unexpected 'A'" },
                { "[Match]\nAddress=01:00.0\n" POLICY_TRAILER, 2, "not a full PCI address" },
                { "[Match]\nDriver=nvidia,nouveau\n" POLICY_TRAILER, 2,
                 "'nvidia,nouveau' is not a driver name" },
                { "[Match]\nSerial=0123456789abcdef\n" POLICY_TRAILER, 2, "8 dash-separated hex bytes" },
                { "[Match]\nSerial=01-23-45-67-89-ab-cd-eg\n" POLICY_TRAILER, 2,
                 "8 dash-separated hex bytes" },
                { "[Match]\nGroup=twelve\n" POLICY_TRAILER, 2, "expected a decimal number" },
                { "[Match]\nNumaNode=-1\n" POLICY_TRAILER, 2, "expected a decimal number" },
                { "[Match]\nVendor=10de\n[Policy]\nDomainType=dma\n", 4, "did you mean DMA?" },
                { "[Match]\nVendor=10de\n[Policy]\nDomainType=blocked\n", 4,
                 "expected identity, DMA, DMA-FQ or auto" },
                { "[Match]\nVendor=10de\n[Policy]\nPassthrough=maybe\n", 4, "expected allow or deny" },
                { "[Match]\nVendor=10de\n[Policy]\nBindAtBoot=nouveau\n", 4, "vfio-pci or a VFIO variant" },
                { "[Match]\nVendor=10de\n[Policy]\nCritical=perhaps\n", 4, "expected yes or no" },
                /* contradictions within one rule */
                { "[Match]\nVendor=10de\n[Policy]\nCritical=yes\nBindAtBoot=vfio-pci\n", 5,
                 "BindAtBoot= contradicts Critical=yes at line 4" },
                { "[Match]\nVendor=10de\n[Policy]\nDomainType=DMA\nCritical=yes\n", 4,
                 "DomainType= contradicts Critical=yes at line 5" },
                { "[Match]\nVendor=10de\n[Policy]\nCritical=yes\nPassthrough=allow\n", 5,
                 "Passthrough=allow contradicts Critical=yes" },
                { "[Match]\nVendor=10de\n[Policy]\nPassthrough=deny\nBindAtBoot=vfio-pci\n", 5,
                 "BindAtBoot= contradicts Passthrough=deny at line 4" },
        };

        FOREACH_ARRAY(c, cases, ELEMENTSOF(cases))
                assert_rejected(c->text, c->line, c->what);
}

static void test_line_too_long(void **state) {
        char text[512];

        snprintf(text, sizeof(text), "[Match]\nDriver=%0300d\n" POLICY_TRAILER, 0);
        assert_rejected(text, 2, "line is longer than 197 characters");
}

/* One run reports every problem of every file, and refuses the whole policy. */
static void test_check_reports_everything(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(freep) char *good = NULL, *bad = NULL, *missing = NULL, *out_text = NULL, *expected = NULL;
        _cleanup_(fclosep) FILE *out = NULL;
        size_t size = 0;

        fake_tree_write(t, "good.conf", "[Match]\nVendor=10de\n" POLICY_TRAILER);
        fake_tree_write(t, "bad.conf", "[Match]\nVendor=zz\nDevice=12\n[Policy]\nDomainType=fast\n");
        assert_true(asprintf(&good, "%s/good.conf", t->root) >= 0);
        assert_true(asprintf(&bad, "%s/bad.conf", t->root) >= 0);
        assert_true(asprintf(&missing, "%s/missing.conf", t->root) >= 0);

        out = open_memstream(&out_text, &size);
        assert_non_null(out);
        assert_int_equal(policy_check_files((char *[]){ good, bad, missing, NULL }, out), 4);
        assert_int_equal(fflush(out), 0);

        assert_true(asprintf(&expected,
                             "%1$s:2: [Match] Vendor=zz: expected 4 hex digits as lspci -n prints them, "
                             "e.g. 10de\n"
                             "%1$s:3: [Match] Device=12: expected 4 hex digits as lspci -n prints them, "
                             "e.g. 10de\n"
                             "%1$s:5: [Policy] DomainType=fast: expected identity, DMA, DMA-FQ or auto\n"
                             "%2$s: cannot open: No such file or directory\n",
                             bad, missing) >= 0);
        assert_string_equal(out_text, expected);

        /* A directory given to the checker stands for its *.conf files. */
        fclose(TAKE_PTR(out));
        free(TAKE_PTR(out_text));
        out = open_memstream(&out_text, &size);
        assert_non_null(out);
        assert_int_equal(policy_check_files((char *[]){ t->root, NULL }, out), 3);
        fake_tree_free(t);
}

static void test_to_json(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p = policy_test_load(t, gpu_rule, NULL);
        json_object *j = policy_to_json(p), *rules, *rule, *match, *vendor, *policy, *type;

        assert_true(json_object_object_get_ex(j, "rules", &rules));
        assert_int_equal(json_object_array_length(rules), 1);
        rule = json_object_array_get_idx(rules, 0);
        assert_true(json_object_object_get_ex(rule, "match", &match));
        assert_true(json_object_object_get_ex(match, "Vendor", &vendor));
        assert_string_equal(json_object_get_string(json_object_object_get(vendor, "value")), "10de");
        assert_int_equal(json_object_get_int(json_object_object_get(vendor, "line")), 3);
        assert_false(json_object_object_get_ex(match, "Critical", NULL));
        assert_true(json_object_object_get_ex(rule, "policy", &policy));
        assert_true(json_object_object_get_ex(policy, "DomainType", &type));
        assert_int_equal(json_object_get_int(json_object_object_get(type, "line")), 14);

        json_object_put(j);
        fake_tree_free(t);
}

static void test_match_to_string(void **state) {
        FakeTree *t = fake_tree_new();
        _cleanup_(policy_freep) Policy *p =
                policy_test_load(t, "[Match]\nClass=0300/ff00\nVendor=10de\n" POLICY_TRAILER, NULL);
        _cleanup_(freep) char *s = rule_match_to_string(&p->rules[0]);

        /* Table order, values as written. */
        assert_string_equal(s, "Vendor=10de Class=0300/ff00");
        fake_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_file),
                cmocka_unit_test(test_class_forms),
                cmocka_unit_test(test_dir_order_and_names),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_check_reports_everything),
                cmocka_unit_test(test_to_json),
                cmocka_unit_test(test_match_to_string),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
