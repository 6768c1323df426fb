/* A process-wide set of strings, open addressing with FNV-1a; entries are never removed. Not
 * thread-safe: only the loop thread reads the host model. */
#include "intern.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char **table;
static size_t size, used; /* size is 0 or a power of two */

static uint32_t hash(const char *s, unsigned len) {
        uint32_t h = 2166136261u;

        for (unsigned i = 0; i < len; i++)
                h = (h ^ (uint8_t)s[i]) * 16777619u;
        return h;
}

static int grow(void) {
        size_t n = size ? size * 2 : 256;
        char **t = calloc(n, sizeof(char *));

        if (!t)
                return -1;
        for (size_t i = 0; i < size; i++)
                if (table[i]) {
                        size_t j = hash(table[i], (unsigned)strlen(table[i])) & (n - 1);

                        while (t[j])
                                j = (j + 1) & (n - 1);
                        t[j] = table[i];
                }
        free(table);
        table = t;
        size = n;
        return 0;
}

const char *intern_n(const char *s, unsigned len) {
        size_t i;
        char *copy;

        if (!s)
                return NULL;
        /* At most half full, so probes stay short. */
        if ((used + 1) * 2 > size && grow() < 0)
                return NULL;
        for (i = hash(s, len) & (size - 1); table[i]; i = (i + 1) & (size - 1))
                if (strncmp(table[i], s, len) == 0 && table[i][len] == 0)
                        return table[i];
        copy = malloc(len + 1);
        if (!copy)
                return NULL;
        memcpy(copy, s, len);
        copy[len] = 0;
        table[i] = copy;
        used++;
        return copy;
}

const char *intern(const char *s) {
        return s ? intern_n(s, (unsigned)strlen(s)) : NULL;
}
