/* Small string helpers. */
#pragma once

#include <stdbool.h>
#include <string.h>

#include "macro.h"

/* asprintf() returning the string, or NULL on OOM: glibc leaves its out pointer undefined on failure. */
char *strprintf(const char *format, ...) _printf_(1, 2);

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
