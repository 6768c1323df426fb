/* Small string helpers. */
#pragma once

#include "macro.h"

/* asprintf() returning the string, or NULL on OOM: glibc leaves its out pointer undefined on failure. */
char *strprintf(const char *format, ...) _printf_(1, 2);
