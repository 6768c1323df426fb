/* Who is behind a local call: facts about the calling process that the kernel and sudo keep. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "macro.h"
#include "string-util.h"

/* The peer is a real process of this machine even when the daemon reads a fixture host, so this is
 * the real /proc, never the configured proc root. */
#define PROC "/proc"

/* The value of NAME= in a NUL-separated environment block; NULL when absent. */
static char *environ_get(const char *block, size_t size, const char *name) {
        size_t len = strlen(name);

        for (const char *p = block; p < block + size; p += strnlen(p, block + size - p) + 1) {
                size_t n = strnlen(p, block + size - p);

                if (n > len && strncmp(p, name, len) == 0 && p[len] == '=')
                        return strndup(p + len + 1, n - len - 1);
        }
        return NULL;
}

static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size) {
        char path[64];
        _cleanup_(closep) int fd = -1;
        ssize_t n;

        snprintf(path, sizeof(path), PROC "/%d/%s", (int)pid, what);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return n;
}

/* sudo's user must be a plain user name: anything else in the environment is not shown. */
static bool user_name_is_plain(const char *s) {
        return *s && strlen(s) <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(s);
}

char *audit_describe_process(const char *base, pid_t pid) {
        _cleanup_(freep) char *env = NULL, *sudo_user = NULL, *unit = NULL;
        char loginuid[32] = "", buf[32];
        unsigned long v;
        ssize_t n;

        if (pid <= 0)
                return strdup(base);

        /* 4294967295 (-1): nobody logged in, as for services that systemd started. */
        if (read_proc(pid, "loginuid", buf, sizeof(buf)) > 0 && sscanf(buf, "%lu", &v) == 1 && v != 4294967295UL)
                snprintf(loginuid, sizeof(loginuid), " loginuid=%lu", v);

        env = malloc(65536);
        if (env) {
                n = read_proc(pid, "environ", env, 65536);
                if (n > 0)
                        sudo_user = environ_get(env, (size_t)n, "SUDO_USER");
                if (sudo_user && !user_name_is_plain(sudo_user)) {
                        free(sudo_user);
                        sudo_user = NULL;
                }
        }
        if (sd_pid_get_unit(pid, &unit) < 0 && sd_pid_get_user_unit(pid, &unit) < 0)
                unit = NULL;

        return strprintf("%s%s%s%s%s%s", base, loginuid, sudo_user ? " sudo_user=" : "", sudo_user ?: "",
                         unit ? " unit=" : "", unit ?: "");
}
