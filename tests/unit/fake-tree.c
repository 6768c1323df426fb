/* Scratch host trees for unit tests (see fake-tree.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "fake-tree.h"
#include "macro.h"

static char *join(FakeTree *t, const char *path) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", t->root, path) >= 0);
        return p;
}

static void mkdir_p(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);

        assert_non_null(copy);
        for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                assert_true(mkdir(copy, 0755) == 0 || errno == EEXIST);
                *s = '/';
        }
        assert_true(mkdir(copy, 0755) == 0 || errno == EEXIST);
}

static void mkdir_parent(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);
        char *slash;

        assert_non_null(copy);
        slash = strrchr(copy, '/');
        assert_non_null(slash);
        *slash = 0;
        mkdir_p(copy);
}

FakeTree *fake_tree_new(void) {
        FakeTree *t = calloc(1, sizeof(*t));
        const char *tmp = getenv("TMPDIR");

        assert_non_null(t);
        assert_true(asprintf(&t->root, "%s/iommud-test-XXXXXX", tmp ?: "/tmp") >= 0);
        assert_non_null(mkdtemp(t->root));
        fake_tree_mkdir(t, "sys");
        fake_tree_mkdir(t, "proc");
        fake_tree_mkdir(t, "dev");
        return t;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void fake_tree_free(FakeTree *t) {
        if (!t)
                return;
        host_roots_free(t->roots);
        if (t->root)
                assert_int_equal(nftw(t->root, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(t->root);
        free(t);
}

void fake_tree_write(FakeTree *t, const char *path, const char *content) {
        _cleanup_(freep) char *p = join(t, path);
        _cleanup_(fclosep) FILE *f = NULL;

        mkdir_parent(p);
        f = fopen(p, "we");
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
}

void fake_tree_mkdir(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        mkdir_p(p);
}

void fake_tree_symlink(FakeTree *t, const char *path, const char *target) {
        _cleanup_(freep) char *p = join(t, path);

        mkdir_parent(p);
        assert_int_equal(symlink(target, p), 0);
}

void fake_tree_unlink(FakeTree *t, const char *path) {
        _cleanup_(freep) char *p = join(t, path);

        assert_int_equal(unlink(p), 0);
}

const HostRoots *fake_tree_roots(FakeTree *t) {
        if (!t->roots)
                assert_int_equal(host_roots_open(t->root, t->root, t->root, &t->roots), 0);
        return t->roots;
}
