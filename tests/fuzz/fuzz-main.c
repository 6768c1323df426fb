/* Replays fuzz corpora without libFuzzer: feeds every file named on the command line (or found in a
 * named directory) to LLVMFuzzerTestOneInput once, so corpora run as plain tests in suite "fuzz". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t n = 0, alloc = 0;

        if (!f) {
                fprintf(stderr, "%s: %m\n", path);
                return -1;
        }
        for (;;) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 4096;
                        uint8_t *t = realloc(buf, alloc);
                        if (!t)
                                return -1;
                        buf = t;
                }
                size_t k = fread(buf + n, 1, alloc - n, f);
                n += k;
                if (k == 0)
                        break;
        }
        /* An exact-size copy lets ASan catch reads past the input. */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact)
                return -1;
        memcpy(exact, buf, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        printf("ok %s (%zu bytes)\n", path, n);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) < 0)
                                return EXIT_FAILURE;
                        count++;
                        continue;
                }
                _cleanup_(closedirp) DIR *d = opendir(argv[i]);
                if (!d)
                        return EXIT_FAILURE;
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (run_file(path) < 0)
                                return EXIT_FAILURE;
                        count++;
                }
        }
        printf("%u inputs replayed\n", count);
        return count > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
