/* Scratch host trees for unit tests: a mkdtemp() directory holding sys/, proc/ and dev/ to fill with files
 * and symlinks, opened as HostRoots. Failures abort the test through cmocka asserts. */
#pragma once

#include "roots.h"

typedef struct FakeTree {
        char *root;       /* the mkdtemp() directory */
        HostRoots *roots; /* opened on first use by fake_tree_roots() */
} FakeTree;

FakeTree *fake_tree_new(void);
/* Removes the directory and everything below it. */
void fake_tree_free(FakeTree *t);

/* Paths are relative to the root, e.g. "sys/class/iommu/dmar0"; missing parent directories are created. */
void fake_tree_write(FakeTree *t, const char *path, const char *content);
void fake_tree_mkdir(FakeTree *t, const char *path);
void fake_tree_symlink(FakeTree *t, const char *path, const char *target);
void fake_tree_unlink(FakeTree *t, const char *path);

const HostRoots *fake_tree_roots(FakeTree *t);
