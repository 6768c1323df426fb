/* Interned strings: one shared, immutable copy of each distinct string for the life of the process.
 * The host model holds thousands of equal names (vendor, device, class, driver, modalias); interning
 * makes the model grow with the number of distinct names, not with the number of devices. */
#pragma once

/* The interned copy of s (NULL for NULL, or when out of memory). Never free it. */
const char *intern(const char *s);
/* The same, for s given by length (not NUL-terminated). */
const char *intern_n(const char *s, unsigned len);
