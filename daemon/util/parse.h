/* Strict number parsing: the whole string must be a number, no sign surprises, no overflow. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Unsigned integer in 'base' (10 or 16). With base 16 an optional "0x" prefix is accepted. */
int parse_u64(const char *s, unsigned base, uint64_t *ret);
int parse_u32(const char *s, unsigned base, uint32_t *ret);
/* Signed decimal (sysfs prints numa_node as -1 for "none"). */
int parse_int(const char *s, int *ret);
/* "1"/"0", "Y"/"N", "yes"/"no", "on"/"off", "true"/"false". */
int parse_bool(const char *s, bool *ret);
/* "MAJOR.MINOR[...]" from a kernel release such as "6.1.0-57-amd64". */
int parse_kernel_version(const char *release, unsigned *ret_major, unsigned *ret_minor);
