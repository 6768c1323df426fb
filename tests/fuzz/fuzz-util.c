/* See fuzz-util.h. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz-util.h"

const char *fuzz_scratch_dir(void) {
        static char dir[PATH_MAX];

        if (!dir[0]) {
                const char *tmp = getenv("TMPDIR") ?: "/tmp";

                snprintf(dir, sizeof(dir), "%s/iommud-fuzz-XXXXXX", tmp);
                if (!mkdtemp(dir))
                        abort();
        }
        return dir;
}

void fuzz_write_file(const char *path, const void *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
                abort();
        for (size_t done = 0; done < size;) {
                ssize_t k = write(fd, (const char *)data + done, size - done);
                if (k <= 0)
                        abort();
                done += (size_t)k;
        }
        close(fd);
}

void fuzz_empty_dir(const char *dir) {
        DIR *d = opendir(dir);

        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void)unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

void fuzz_copy_tree(const char *src, const char *dst) {
        pid_t pid = fork();
        int status;

        if (pid < 0)
                abort();
        if (pid == 0) {
                execlp("cp", "cp", "-a", "--", src, dst, (char *)NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                abort();
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **ret_parts, size_t *ret_sizes, size_t max) {
        const size_t sep_len = strlen(FUZZ_SEPARATOR);
        size_t n = 0;

        while (n + 1 < max) {
                const uint8_t *sep = memmem(data, size, FUZZ_SEPARATOR, sep_len);
                if (!sep)
                        break;
                ret_parts[n] = data;
                ret_sizes[n] = (size_t)(sep - data);
                n++;
                size -= (size_t)(sep - data) + sep_len;
                data = sep + sep_len;
        }
        ret_parts[n] = data;
        ret_sizes[n] = size;
        return n + 1;
}
