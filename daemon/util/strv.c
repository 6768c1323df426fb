/* NULL-terminated string vectors. */
#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

int strv_push(char ***l, size_t *n, char *s) {
        char **p = realloc(*l, (*n + 2) * sizeof(char *));

        if (!p)
                return -ENOMEM;
        p[(*n)++] = s;
        p[*n] = NULL;
        *l = p;
        return 0;
}

int strv_push_dup(char ***l, size_t *n, const char *s) {
        char *c = strdup(s);
        int r;

        if (!c)
                return -ENOMEM;
        r = strv_push(l, n, c);
        if (r < 0)
                free(c);
        return r;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        if (l)
                for (; *l; l++)
                        if (strcmp(*l, s) == 0)
                                return true;
        return false;
}

bool strv_equal(char *const *a, char *const *b) {
        for (; a && *a && b && *b; a++, b++)
                if (*a != *b && strcmp(*a, *b) != 0)
                        return false;
        return !(a && *a) && !(b && *b);
}
