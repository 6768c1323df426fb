/* Helpers of the fuzz targets that feed files to the daemon's readers: a scratch directory, files
 * written from the input, and inputs split into parts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A directory of this process, made once (mkdtemp below $TMPDIR or /tmp); aborts on failure. */
const char *fuzz_scratch_dir(void);

/* Writes size bytes to path (created or truncated); aborts on failure. */
void fuzz_write_file(const char *path, const void *data, size_t size);

/* Removes every entry of dir (not recursive), keeping dir. */
void fuzz_empty_dir(const char *dir);

/* Copies the tree src to dst (cp -a); aborts on failure. */
void fuzz_copy_tree(const char *src, const char *dst);

/* The parts of an input separated by FUZZ_SEPARATOR, at most max: *ret_parts[i] points into data,
 * with its size in ret_sizes[i]. Returns the number of parts (at least 1). */
#define FUZZ_SEPARATOR "\n====\n"
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **ret_parts, size_t *ret_sizes, size_t max);
