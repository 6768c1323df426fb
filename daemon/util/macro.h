/* Small language helpers shared by every layer: scoped cleanup, ownership transfer, array sizes. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
/* Arguments are evaluated twice: plain values only. */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand ownership of a pointer (or fd) to someone else and leave NULL (-1) behind. */
#define TAKE_PTR(p)                                                                                       \
        ({                                                                                                \
                __typeof__(p) _p_ = (p);                                                                  \
                (p) = NULL;                                                                               \
                _p_;                                                                                      \
        })
#define TAKE_FD(fd)                                                                                       \
        ({                                                                                                \
                int _fd_ = (fd);                                                                          \
                (fd) = -1;                                                                                \
                _fd_;                                                                                     \
        })

/* Defines name##p(type **) that calls func(*p) when *p is set, for use with _cleanup_. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                           \
        static inline void func##p(type *p) {                                                             \
                if (*p)                                                                                   \
                        func(*p);                                                                         \
        }

static inline void freep(void *p) {
        free(*(void **)p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* An empty array may be NULL: NULL + 0 is undefined behaviour in C (UBSan's pointer-overflow check
 * says so), hence the test of num first. */
#define FOREACH_ARRAY(i, array, num) \
        for (__typeof__(*(array)) *i = (array); (num) > 0 && (i) < (array) + (num); (i)++)

/* Grows *array (holding *n elements) by one zeroed element and returns it, or NULL on OOM. */
void *array_append(void *array_ptr, size_t *n, size_t elem_size);
