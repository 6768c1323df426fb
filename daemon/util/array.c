/* Growable arrays of plain structs. */
#include <stdint.h>
#include <string.h>

#include "macro.h"

void *array_append(void *array_ptr, size_t *n, size_t elem_size) {
        void **array = array_ptr;
        void *p;

        /* Capacity is always the next power of two >= n, so grow exactly when n is 0 or a power of two. */
        if ((*n & (*n - 1)) == 0) {
                size_t capacity = *n ? *n * 2 : 1;

                if (capacity > SIZE_MAX / elem_size)
                        return NULL;
                p = realloc(*array, capacity * elem_size);
                if (!p)
                        return NULL;
                *array = p;
        }

        p = (uint8_t *)*array + *n * elem_size;
        memset(p, 0, elem_size);
        (*n)++;
        return p;
}
