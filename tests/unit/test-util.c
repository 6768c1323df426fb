/* Unit tests for daemon/util: strict parsing and root-confined file access. */
#undef NDEBUG
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "strv.h"

static void test_parse_u32(void **state) {
        uint32_t v;

        assert_int_equal(parse_u32("0x8086", 16, &v), 0);
        assert_int_equal(v, 0x8086);
        assert_int_equal(parse_u32("8086", 16, &v), 0);
        assert_int_equal(v, 0x8086);
        assert_int_equal(parse_u32("42", 10, &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(parse_u32("", 10, &v), -EINVAL);
        assert_int_equal(parse_u32(" 42", 10, &v), -EINVAL);
        assert_int_equal(parse_u32("-1", 10, &v), -EINVAL);
        assert_int_equal(parse_u32("+1", 10, &v), -EINVAL);
        assert_int_equal(parse_u32("0xZZZZ", 16, &v), -EINVAL);
        assert_int_equal(parse_u32("12a", 10, &v), -EINVAL);
        assert_int_equal(parse_u32("4294967296", 10, &v), -ERANGE);
        assert_int_equal(parse_u32("0x", 16, &v), -EINVAL);
}

static void test_parse_int(void **state) {
        int v;

        assert_int_equal(parse_int("-1", &v), 0);
        assert_int_equal(v, -1);
        assert_int_equal(parse_int("2147483647", &v), 0);
        assert_int_equal(v, 2147483647);
        assert_int_equal(parse_int("-2147483648", &v), 0);
        assert_int_equal(v, -2147483647 - 1);
        assert_int_equal(parse_int("2147483648", &v), -ERANGE);
        assert_int_equal(parse_int("--1", &v), -EINVAL);
        assert_int_equal(parse_int("-", &v), -EINVAL);
}

static void test_parse_bool_and_version(void **state) {
        unsigned major, minor;
        bool b;

        assert_int_equal(parse_bool("Y", &b), 0);
        assert_true(b);
        assert_int_equal(parse_bool("off", &b), 0);
        assert_false(b);
        assert_int_equal(parse_bool("maybe", &b), -EINVAL);

        assert_int_equal(parse_kernel_version("6.1.0-57-amd64", &major, &minor), 0);
        assert_int_equal(major, 6);
        assert_int_equal(minor, 1);
        assert_int_equal(parse_kernel_version("6.12.117+deb12-amd64", &major, &minor), 0);
        assert_int_equal(minor, 12);
        assert_int_equal(parse_kernel_version("v6.1", &major, &minor), -EINVAL);
        assert_int_equal(parse_kernel_version("6", &major, &minor), -EINVAL);
}

static char tree[] = "/tmp/iommud-test-util-XXXXXX";
static int tree_fd = -1;

static void write_file(const char *path, const char *content, size_t size) {
        char full[4096];
        int fd;

        snprintf(full, sizeof(full), "%s/%s", tree, path);
        fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, size), (ssize_t)size);
        close(fd);
}

static int setup_tree(void **state) {
        char path[4096];

        assert_non_null(mkdtemp(tree));
        snprintf(path, sizeof(path), "%s/sys", tree);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/sys/dir", tree);
        assert_int_equal(mkdir(path, 0755), 0);
        write_file("sys/vendor", "0x8086\n", 7);
        write_file("sys/nul", "a\0b\n", 4);
        write_file("sys/dir/b", "", 0);
        write_file("sys/dir/a", "x", 1);
        /* Links that try to leave the tree must stay inside it. */
        snprintf(path, sizeof(path), "%s/sys/escape", tree);
        assert_int_equal(symlink("../../../../../../etc/hostname", path), 0);
        snprintf(path, sizeof(path), "%s/sys/absolute", tree);
        assert_int_equal(symlink("/sys/vendor", path), 0);
        snprintf(path, sizeof(path), "%s/sys/driver", tree);
        assert_int_equal(symlink("../../../bus/pci/drivers/e1000e", path), 0);

        tree_fd = open(tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(tree_fd >= 0);
        return 0;
}

static int teardown_tree(void **state) {
        char cmd[4200];

        close(tree_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static void test_read_attr(void **state) {
        _cleanup_(freep) char *s = NULL, *t = NULL;

        assert_int_equal(read_attr_at(tree_fd, "sys/vendor", &s), 0);
        assert_string_equal(s, "0x8086");
        assert_int_equal(read_attr_at(tree_fd, "sys/nul", &t), -EBADMSG);
        assert_int_equal(read_attr_at(tree_fd, "sys/missing", &t), -ENOENT);
        assert_int_equal(read_attr_at(tree_fd, "sys/dir", &t), -EISDIR);
}

static void test_confinement(void **state) {
        _cleanup_(freep) char *s = NULL, *t = NULL;

        /* "/sys/vendor" means <tree>/sys/vendor, never the host's /sys. */
        assert_int_equal(read_attr_at(tree_fd, "sys/absolute", &s), 0);
        assert_string_equal(s, "0x8086");
        /* ".." stops at the tree's root, so the host's /etc/hostname is out of reach. */
        assert_int_equal(read_attr_at(tree_fd, "sys/escape", &t), -ENOENT);
}

static void test_links_and_dirs(void **state) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(freep) char *driver = NULL;
        size_t n;

        assert_int_equal(read_link_basename_at(tree_fd, "sys/driver", &driver), 0);
        assert_string_equal(driver, "e1000e");
        assert_int_equal(read_dir_at(tree_fd, "sys/dir", &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "a");
        assert_string_equal(names[1], "b");
        assert_null(names[2]);
        assert_int_equal(exists_at(tree_fd, "sys/dir/a"), 1);
        assert_int_equal(exists_at(tree_fd, "sys/dir/c"), 0);
        assert_int_equal(exists_at(tree_fd, "sys/nope/c"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_u32),
                cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_parse_bool_and_version),
                cmocka_unit_test(test_read_attr),
                cmocka_unit_test(test_confinement),
                cmocka_unit_test(test_links_and_dirs),
        };

        return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
