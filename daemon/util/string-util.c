/* Small string helpers. */
#include "string-util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

char *strprintf(const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

size_t utf8_char(const char *s, size_t avail, uint32_t *ret_code) {
        const uint8_t *p = (const uint8_t *)s;
        size_t n;
        uint32_t c;

        if (avail == 0)
                return 0;
        if (*p < 0x80) {
                n = 0;
                c = *p;
        } else if ((*p & 0xe0) == 0xc0) {
                n = 1;
                c = *p & 0x1f;
        } else if ((*p & 0xf0) == 0xe0) {
                n = 2;
                c = *p & 0x0f;
        } else if ((*p & 0xf8) == 0xf0) {
                n = 3;
                c = *p & 0x07;
        } else
                return 0;
        if (avail <= n)
                return 0;
        for (size_t i = 1; i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        /* No overlong forms, no surrogates, nothing above U+10FFFF. */
        if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) || c > 0x10ffff ||
            (c >= 0xd800 && c <= 0xdfff))
                return 0;
        if (ret_code)
                *ret_code = c;
        return n + 1;
}

static bool code_is_unsafe(uint32_t c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

bool str_is_terminal_safe(const char *s) {
        size_t len = strlen(s);

        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n = utf8_char(s + i, len - i, &c);

                if (n == 0 || c == '\\' || code_is_unsafe(c))
                        return false;
                i += n;
        }
        return true;
}

char *str_escape_terminal(const char *s) {
        size_t len, w = 0;
        char *out;

        if (!s)
                return strdup("(null)");
        len = strlen(s);
        /* Worst case: every byte as \xNN, or a 3-byte character as \uNNNN (6 for 3). */
        out = malloc(len * 4 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n = utf8_char(s + i, len - i, &c);

                if (n == 0) {
                        w += (size_t)sprintf(out + w, "\\x%02x", (uint8_t)s[i]);
                        i++;
                        continue;
                }
                if (c == '\\') {
                        out[w++] = '\\';
                        out[w++] = '\\';
                } else if (code_is_unsafe(c))
                        w += (size_t)sprintf(out + w, c < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)c);
                else {
                        memcpy(out + w, s + i, n);
                        w += n;
                }
                i += n;
        }
        out[w] = 0;
        return out;
}
