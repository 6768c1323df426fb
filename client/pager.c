/* A pager for long output on a terminal, started the way systemd's tools start theirs.
 *
 * The pager is the child: it reads a pipe whose writing end becomes our standard output, so the
 * printing code never knows. It is never started for a pipe or a file, nor for watch. */
#include "pager.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t pager_pid = 0;
static int saved_stdout = -1;

/* The child's last resort when no pager can run: what was printed still reaches the terminal. */
static _Noreturn void copy_through(void) {
        char buf[4096];
        ssize_t n;

        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                if (write(STDOUT_FILENO, buf, (size_t)n) != n)
                        break;
        _exit(n < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

static _Noreturn void run_pager(const char *pager, int read_fd) {
        const char *less = getenv("SYSTEMD_LESS");

        if (dup2(read_fd, STDIN_FILENO) < 0)
                _exit(EXIT_FAILURE);
        /* Our SIGPIPE is ignored and that would outlive exec; the pager must die of it as usual. */
        signal(SIGPIPE, SIG_DFL);
        /* A pager whose writer died must not keep the terminal. */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)setenv("LESS", less ?: "FRSXMK", 1);
        if (strcmp(nl_langinfo(CODESET), "UTF-8") == 0)
                (void)setenv("LESSCHARSET", "utf-8", 0);
        if (pager) {
                execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
                copy_through();
        }
        execlp("less", "less", (char *)NULL);
        execlp("more", "more", (char *)NULL);
        copy_through();
}

int pager_open(void) {
        const char *pager;
        int fd[2];

        if (pager_pid > 0 || !isatty(STDOUT_FILENO))
                return 0;
        pager = getenv("SYSTEMD_PAGER") ?: getenv("PAGER");
        if (pager && (pager[strspn(pager, " \t")] == 0 || strcmp(pager, "cat") == 0))
                return 0;

        if (fflush(stdout) != 0)
                return -errno;
        if (pipe2(fd, O_CLOEXEC) < 0)
                return -errno;
        pager_pid = fork();
        if (pager_pid < 0) {
                int r = -errno;

                pager_pid = 0;
                close(fd[0]);
                close(fd[1]);
                return r;
        }
        if (pager_pid == 0)
                run_pager(pager, fd[0]);

        saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved_stdout < 0 || dup2(fd[1], STDOUT_FILENO) < 0) {
                int r = -errno;

                close(fd[0]);
                close(fd[1]);
                pager_close();
                return r;
        }
        close(fd[0]);
        close(fd[1]);
        return 0;
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;
        (void)fflush(stdout);
        /* The pager sees the end of its input only when no copy of the pipe's writing end is left. */
        if (saved_stdout >= 0) {
                (void)dup2(saved_stdout, STDOUT_FILENO);
                close(saved_stdout);
                saved_stdout = -1;
        } else
                close(STDOUT_FILENO);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}
