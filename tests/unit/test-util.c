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
#include "intern.h"
#include "macro.h"
#include "parse.h"
#include "string-util.h"
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

/* The packed listing: sorted, NULL-terminated, one allocation, also for a directory whose entries
 * take several getdents64 calls and grow the name pool more than once. */
static void test_packed_listing(void **state) {
        _cleanup_(freep) char **names = NULL, **none = NULL;
        _cleanup_(closep) int dir_fd = -1, empty_fd = -1;
        char path[PATH_MAX], name[64];
        size_t n;

        snprintf(path, sizeof(path), "%s/sys/many", tree);
        assert_int_equal(mkdir(path, 0755), 0);
        for (unsigned i = 0; i < 600; i++) {
                int fd;

                /* Long names, in an order that is not the sorted one. */
                snprintf(path, sizeof(path), "%s/sys/many/entry-%03u-padding-to-make-the-names-long", tree,
                         (i * 7) % 600);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                assert_true(fd >= 0);
                close(fd);
        }
        dir_fd = open_in_root(tree_fd, "sys/many", O_RDONLY | O_DIRECTORY);
        assert_true(dir_fd >= 0);
        assert_int_equal(read_dir_fd_packed(dir_fd, &names, &n), 0);
        assert_int_equal(n, 600);
        for (unsigned i = 0; i < 600; i++) {
                snprintf(name, sizeof(name), "entry-%03u-padding-to-make-the-names-long", i);
                assert_string_equal(names[i], name);
        }
        assert_null(names[600]);

        snprintf(path, sizeof(path), "%s/sys/empty", tree);
        assert_int_equal(mkdir(path, 0755), 0);
        empty_fd = open_in_root(tree_fd, "sys/empty", O_RDONLY | O_DIRECTORY);
        assert_true(empty_fd >= 0);
        assert_int_equal(read_dir_fd_packed(empty_fd, &none, &n), 0);
        assert_int_equal(n, 0);
        assert_null(none[0]);
}

/* The paths the host readers take: a listing of an open directory, one-read attributes, and links
 * and stats of one name straight at a directory fd, which must still never leave the tree. */
static void test_fast_paths(void **state) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(freep) char *s = NULL, *link = NULL, *big = NULL;
        _cleanup_(closep) int sys_fd = -1, dir_fd = -1;
        char path[4200];
        mode_t mode;
        size_t n;
        int fd;

        sys_fd = open_in_root(tree_fd, "sys", O_RDONLY | O_DIRECTORY);
        assert_true(sys_fd >= 0);
        dir_fd = open_in_root(tree_fd, "sys/dir", O_RDONLY | O_DIRECTORY);
        assert_true(dir_fd >= 0);
        assert_int_equal(read_dir_fd(dir_fd, &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "a");

        assert_int_equal(read_sysfs_attr_at(sys_fd, "vendor", &s), 0);
        assert_string_equal(s, "0x8086");
        assert_int_equal(read_link_at(sys_fd, "driver", &link), 0);
        assert_string_equal(link, "../../../bus/pci/drivers/e1000e");
        assert_int_equal(exists_at(sys_fd, "vendor"), 1);
        assert_int_equal(exists_at(sys_fd, "missing"), 0);
        assert_int_equal(mode_at(sys_fd, "vendor", &mode), 0);
        assert_true(S_ISREG(mode));
        /* ".." is never taken straight: resolved in the root, it stays there. */
        assert_int_equal(exists_at(sys_fd, ".."), 1);
        assert_int_equal(exists_at(tree_fd, ".."), 1);

        /* Longer than a page: the one-read shortcut still reads it all. */
        big = malloc(10001);
        assert_non_null(big);
        memset(big, 'x', 10000);
        big[10000] = 0;
        snprintf(path, sizeof(path), "%s/sys/big", tree);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, big, 10000), 10000);
        close(fd);
        free(s);
        assert_int_equal(read_sysfs_attr_at(sys_fd, "big", &s), 0);
        assert_int_equal(strlen(s), 10000);
        free(s);
        s = NULL;
        assert_int_equal(read_attr_at(sys_fd, "big", &s), 0);
        assert_int_equal(strlen(s), 10000);
}

static void test_escape_terminal(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "vm-1 gpu", "vm-1 gpu" },
                { "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },           /* UTF-8 is kept */
                { "\x1b[2Jgone\r\n\a", "\\x1b[2Jgone\\x0d\\x0a\\x07" },             /* C0 */
                { "a\x7f\xc2\x9b" "31m", "a\\x7f\\x9b" "31m" },                          /* DEL, C1 CSI */
                { "admin\xe2\x80\xae" "cba", "admin\\u202e" "cba" },                      /* bidi override */
                { "\xff\xc3(\xed\xa0\x80", "\\xff\\xc3(\\xed\\xa0\\x80" },       /* not UTF-8, surrogate */
                { "back\\slash", "back\\\\slash" },
                { "", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *e = str_escape_terminal(cases[i].in);

                assert_non_null(e);
                assert_string_equal(e, cases[i].out);
                assert_true(utf8_is_valid(e, strlen(e)));
                free(e);
        }
        char *n = str_escape_terminal(NULL);
        assert_string_equal(n, "(null)");
        free(n);

        uint32_t c;
        assert_int_equal(utf8_char("\xf0\x9f\x98\x80", 4, &c), 4);
        assert_int_equal(c, 0x1f600);
        assert_int_equal(utf8_char("\xf0\x9f\x98", 3, &c), 0); /* truncated */
        assert_int_equal(utf8_char("\xc0\xaf", 2, &c), 0);     /* overlong */
}

static void test_intern(void **state) {
        char a[] = "QEMU NVM Express Controller", b[] = "QEMU NVM Express Controller";
        const char *x = intern(a), *y = intern(b);

        assert_ptr_equal(x, y);
        assert_ptr_not_equal(x, a);
        assert_string_equal(x, a);
        assert_ptr_equal(intern_n("QEMU NVM", 8), intern("QEMU NVM"));
        assert_ptr_not_equal(intern("QEMU NVM"), x);
        assert_null(intern(NULL));
        /* Growing keeps every earlier string where it was. */
        for (int i = 0; i < 5000; i++) {
                char buf[32];

                snprintf(buf, sizeof(buf), "s%d", i);
                assert_string_equal(intern(buf), buf);
        }
        assert_ptr_equal(intern(b), x);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fast_paths),
                cmocka_unit_test(test_packed_listing),
                cmocka_unit_test(test_intern),
                cmocka_unit_test(test_escape_terminal),
                cmocka_unit_test(test_parse_u32),
                cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_parse_bool_and_version),
                cmocka_unit_test(test_read_attr),
                cmocka_unit_test(test_confinement),
                cmocka_unit_test(test_links_and_dirs),
        };

        return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
