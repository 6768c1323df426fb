/* Small string helpers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macro.h"

/* asprintf() returning the string, or NULL on OOM: glibc leaves its out pointer undefined on failure. */
char *strprintf(const char *format, ...) _printf_(1, 2);

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* Equal strings, or both NULL. */
static inline bool streq_ptr(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* The length of the UTF-8 character at s (at most avail bytes), with its code point in *ret_code
 * (may be NULL); 0 when the bytes there are not one (overlong forms, surrogates and values above
 * U+10FFFF included). */
size_t utf8_char(const char *s, size_t avail, uint32_t *ret_code);

/* A copy of s that is safe to print on a terminal, for strings from elsewhere (a server, a domain
 * name): control characters (C0, DEL, C1), the bidirectional overrides and isolates, and bytes
 * that are not UTF-8 become \xNN or \uNNNN, a backslash becomes \\; everything else is kept. NULL
 * on OOM; NULL in, "(null)" out. */
char *str_escape_terminal(const char *s);
/* True when str_escape_terminal(s) would equal s. */
bool str_is_terminal_safe(const char *s);
