/* Policy files for unit tests: rules written into a FakeTree's policy.d directory and loaded from it.
 * Failures abort the test through cmocka asserts. */
#pragma once

#include "fake-tree.h"
#include "policy.h"

/* Writes each of the NULL-terminated file contents as policy.d/10.conf, 11.conf, … below t's root and
 * loads that directory, which must succeed. */
Policy *policy_test_load(FakeTree *t, ...) __attribute__((sentinel));

/* noinline: inlined under -fsanitize=undefined, gcc invents a NULL haystack and warns (format-overflow). */
void assert_contains(const char *haystack, const char *needle) __attribute__((noinline));
