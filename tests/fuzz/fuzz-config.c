/* libFuzzer target: the configuration file (/etc/iommud/iommud.conf), through the daemon's own INI
 * reader, every option's parser and the cross-checks, as at start and at every reload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "config.h"
#include "fuzz-util.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *path;
        Config c = {};

        if (!path) {
                log_set_max_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
                path = strprintf("%s/iommud.conf", fuzz_scratch_dir());
                if (!path)
                        abort();
        }
        fuzz_write_file(path, data, size);
        if (config_init_defaults(&c) >= 0 && config_load_file(&c, path, true) >= 0)
                (void)config_verify(&c);
        config_done(&c);
        return 0;
}
