/* Policy files for unit tests (see policy-test.h). */
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

Policy *policy_test_load(FakeTree *t, ...) {
        _cleanup_(freep) char *dir = NULL;
        PolicyErrors errors = {};
        Policy *p = NULL;
        const char *content;
        unsigned n = 10;
        va_list ap;

        va_start(ap, t);
        while ((content = va_arg(ap, const char *))) {
                char name[64];

                snprintf(name, sizeof(name), "policy.d/%u.conf", n++);
                fake_tree_write(t, name, content);
        }
        va_end(ap);

        assert_true(asprintf(&dir, "%s/policy.d", t->root) >= 0);
        if (policy_load_dir(dir, &p, &errors) < 0) {
                policy_errors_print(&errors, stderr);
                fail_msg("policy did not load");
        }
        policy_errors_done(&errors);
        return p;
}

void assert_contains(const char *haystack, const char *needle) {
        if (!haystack || !strstr(haystack, needle))
                fail_msg("expected \"%s\" in:\n%s", needle, haystack ?: "(null)");
}
