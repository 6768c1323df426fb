/* Reading files, links and directories below a root directory fd without ever leaving it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The longest text attribute we accept; sysfs attributes are at most one page. */
#define ATTR_MAX_SIZE (64 * 1024)

/* openat() that resolves 'path' (and every symlink in it, absolute or with "..") as if dir_fd were
 * the file system root, so a tree under --sysfs-root can never lead us out of it. Returns an fd or
 * -errno. */
int open_in_root(int dir_fd, const char *path, int flags);

/* Reads a text attribute and strips one trailing newline. Fails with -EBADMSG on embedded NUL bytes,
 * -EILSEQ on bytes that are not UTF-8, and -EFBIG above ATTR_MAX_SIZE. */
int read_attr_at(int dir_fd, const char *path, char **ret);
/* The same for sysfs attributes and files of fixture trees: one read() when the file is shorter
 * than a page (sysfs produces an attribute in one show(); a short read of a regular file is its
 * end). Not for procfs, where a read may stop short in the middle. */
int read_sysfs_attr_at(int dir_fd, const char *path, char **ret);

/* Reads up to max_size bytes of a binary file (PCI config space). */
int read_binary_at(int dir_fd, const char *path, size_t max_size, uint8_t **ret, size_t *ret_size);

/* Reads the target of the symlink 'path' (its parent directories resolved inside the root). */
int read_link_at(int dir_fd, const char *path, char **ret);

/* Like read_link_at(), but returns only the last component of the target: the driver or group name. */
int read_link_basename_at(int dir_fd, const char *path, char **ret);

/* Lists the entries of a directory, sorted, without "." and "..". *ret is a NULL-terminated strv. */
int read_dir_at(int dir_fd, const char *path, char ***ret, size_t *ret_n);
/* The same for a directory already open for reading (O_RDONLY | O_DIRECTORY); reads it from where its
 * position is, normally the start. */
int read_dir_fd(int fd, char ***ret, size_t *ret_n);
/* The same in one allocation (the array, then the names): free() it, never strv_free(). For listings
 * that are only looked at, one per PCI device on a large host. */
int read_dir_fd_packed(int fd, char ***ret, size_t *ret_n);

/* The mode (type and permission bits) of 'path' below the root, without following a final symlink:
 * what a sysfs attribute's permissions say about the kernel (a read-only attribute has no store). */
int mode_at(int dir_fd, const char *path, mode_t *ret);

/* Whether 'path' exists below the root (without following a final symlink). 1 yes, 0 no, -errno. */
int exists_at(int dir_fd, const char *path);

bool utf8_is_valid(const char *s, size_t size);

/* Replaces the file at path with content so that a crash at any point leaves either the old file or
 * the new one, complete: writes path.tmp, fsyncs it, renames it over path, fsyncs the directory.
 * Returns -errno of the first step that failed (path.tmp is removed then). */
int write_file_durable(const char *path, const char *content);
/* Removes path and fsyncs its directory, so that the removal survives a crash. A missing file is
 * success. */
int unlink_durable(const char *path);
