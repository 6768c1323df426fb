/* Reading the boot id through the proc root. */
#include "boot-id.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

int host_read_boot_id(const HostRoots *roots, char **ret) {
        char *id = NULL;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/sys/kernel/random/boot_id", &id);
        if (r < 0)
                return r;
        /* A UUID: anything else is not a boot id we can compare. */
        if (strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36) {
                free(id);
                return -EBADMSG;
        }
        *ret = id;
        return 0;
}
