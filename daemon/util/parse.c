/* Strict number parsing. */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_u64(const char *s, unsigned base, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || !*s)
                return -EINVAL;
        if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        /* strtoull accepts leading blanks and signs; we do not. */
        if (!isxdigit((unsigned char)s[0]) || (base == 10 && !isdigit((unsigned char)s[0])))
                return -EINVAL;

        errno = 0;
        v = strtoull(s, &end, (int)base);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;

        *ret = v;
        return 0;
}

int parse_u32(const char *s, unsigned base, uint32_t *ret) {
        uint64_t v;
        int r;

        r = parse_u64(s, base, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

int parse_int(const char *s, int *ret) {
        bool negative = false;
        uint64_t v;
        int r;

        if (s && *s == '-') {
                negative = true;
                s++;
        }
        r = parse_u64(s, 10, &v);
        if (r < 0)
                return r;
        if (v > (uint64_t)INT32_MAX + (negative ? 1 : 0))
                return -ERANGE;

        *ret = negative ? (int)(-(int64_t)v) : (int)v;
        return 0;
}

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "y", "yes", "on", "true" };
        static const char *const no[] = { "0", "n", "no", "off", "false" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int parse_kernel_version(const char *release, unsigned *ret_major, unsigned *ret_minor) {
        unsigned long major, minor;
        char *end;

        if (!release || !isdigit((unsigned char)release[0]))
                return -EINVAL;
        errno = 0;
        major = strtoul(release, &end, 10);
        if (errno || *end != '.' || !isdigit((unsigned char)end[1]))
                return -EINVAL;
        minor = strtoul(end + 1, &end, 10);
        if (errno || major > 1000 || minor > 1000)
                return -EINVAL;

        *ret_major = (unsigned)major;
        *ret_minor = (unsigned)minor;
        return 0;
}
