/* Logging to stderr with syslog levels; "<N>" prefixes when stderr is connected to the journal. */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static bool stderr_is_journal(void) {
        static int cached = -1;

        if (cached < 0)
                cached = getenv("JOURNAL_STREAM") != NULL;
        return cached;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        static const char *const prefixes[] = {
                [LOG_EMERG] = "emergency", [LOG_ALERT] = "alert",  [LOG_CRIT] = "critical",
                [LOG_ERR] = "error",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",       [LOG_DEBUG] = "debug",
        };
        int saved_errno = errno;
        va_list ap;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                char buf[2048];

                /* glibc's %m prints strerror(errno): make it the error being logged. */
                errno = error;
                va_start(ap, format);
                vsnprintf(buf, sizeof(buf), format, ap);
                va_end(ap);

                if (stderr_is_journal())
                        fprintf(stderr, "<%d>%s\n", level, buf);
                else if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "iommud: %s: %s (%s:%d %s)\n", prefixes[level & 7], buf, file, line,
                                func);
                else
                        fprintf(stderr, "iommud: %s: %s\n", prefixes[level & 7], buf);
        }

        errno = saved_errno;
        return -error;
}
