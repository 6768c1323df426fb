/* Logging: the journal's native protocol with structured fields under systemd, stderr otherwise. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* Our own CODE_FILE= and friends: the caller's, not log.c's. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected stdout/stderr to. It is
 * inherited by children whose stderr went elsewhere, so the device and inode must match ours. */
static bool stderr_is_journal(void) {
        static int cached = -1;

        if (cached < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;

                cached = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                         (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
        }
        return cached;
}

const char *log_target(void) {
        return stderr_is_journal() ? "journal" : "stderr";
}

/* One entry with every field; false when the journal socket cannot take it (then stderr does). */
static bool send_journal(int level, int error, const LogFields *f, const char *file, int line, const char *func,
                         const char *message) {
        char priority[16], code_line[32], code_file[256], code_func[128], err[32], message_id[64], group[32],
                operation[48];
        _cleanup_(freep) char *msg = NULL, *device = NULL, *peer = NULL;
        struct iovec iov[12];
        size_t n = 0;

#define ADD(s) iov[n++] = (struct iovec){ .iov_base = (char *)(s), .iov_len = strlen(s) }
        msg = malloc(strlen("MESSAGE=") + strlen(message) + 1);
        if (!msg)
                return false;
        strcpy(stpcpy(msg, "MESSAGE="), message);
        ADD(msg);
        snprintf(priority, sizeof(priority), "PRIORITY=%d", level & 7);
        ADD(priority);
        ADD("SYSLOG_IDENTIFIER=iommud");
        snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", file);
        ADD(code_file);
        snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
        ADD(code_line);
        snprintf(code_func, sizeof(code_func), "CODE_FUNC=%s", func);
        ADD(code_func);
        if (error > 0) {
                snprintf(err, sizeof(err), "ERRNO=%d", error);
                ADD(err);
        }
        if (f && f->message_id) {
                snprintf(message_id, sizeof(message_id), "MESSAGE_ID=%s", f->message_id);
                ADD(message_id);
        }
        if (f && f->has_group) {
                snprintf(group, sizeof(group), "IOMMUD_GROUP=%u", f->group);
                ADD(group);
        }
        if (f && f->device) {
                if (asprintf(&device, "IOMMUD_DEVICE=%s", f->device) < 0)
                        return false;
                ADD(device);
        }
        if (f && f->operation > 0) {
                snprintf(operation, sizeof(operation), "IOMMUD_OPERATION=%" PRIu64, f->operation);
                ADD(operation);
        }
        if (f && f->peer) {
                if (asprintf(&peer, "IOMMUD_PEER=%s", f->peer) < 0)
                        return false;
                ADD(peer);
        }
#undef ADD
        return sd_journal_sendv(iov, (int)n) >= 0;
}

int log_internal(int level, int error, const LogFields *fields, const char *file, int line, const char *func,
                 const char *format, ...) {
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

                if (stderr_is_journal()) {
                        /* The stream would lose the fields; "<N>" keeps at least the priority. */
                        if (!send_journal(level, error, fields, file, line, func, buf))
                                fprintf(stderr, "<%d>%s\n", level & 7, buf);
                } else if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "iommud: %s: %s (%s:%d %s)\n", prefixes[level & 7], buf, file, line,
                                func);
                else
                        fprintf(stderr, "iommud: %s: %s\n", prefixes[level & 7], buf);
        }

        errno = saved_errno;
        return -error;
}
