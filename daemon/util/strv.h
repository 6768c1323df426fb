/* NULL-terminated string vectors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

char **strv_free(char **l);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}

/* Appends a copy of s to *l, which holds *n strings; keeps *l NULL-terminated. */
int strv_push_dup(char ***l, size_t *n, const char *s);
/* Appends s itself (takes ownership on success). */
int strv_push(char ***l, size_t *n, char *s);
size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* The same strings in the same order; NULL equals the empty vector. */
bool strv_equal(char *const *a, char *const *b);
