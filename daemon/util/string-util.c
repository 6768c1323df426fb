/* Small string helpers. */
#include "string-util.h"

#include <stdarg.h>
#include <stdio.h>

char *strprintf(const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}
