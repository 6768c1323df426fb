/* VFIO variant drivers from modules.alias: "alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci". */
#include "vfio-variant.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

#define MODULES_ALIAS_MAX (16 * 1024 * 1024)

int vfio_variant_lookup(const HostRoots *roots, const char *release, const char *modalias, char **ret) {
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) uint8_t *text = NULL;
        char *saveptr = NULL;
        size_t size;
        int r;

        *ret = NULL;
        /* The device's own alias is "pci:v...": the vfio_pci: patterns match what follows "pci:". */
        if (!release || !modalias || strncmp(modalias, "pci:", 4) != 0)
                return 0;
        path = strprintf("lib/modules/%s/modules.alias", release);
        if (!path)
                return -ENOMEM;
        r = read_binary_at(roots->sysfs_fd, path, MODULES_ALIAS_MAX, &text, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        text[size < MODULES_ALIAS_MAX ? size : MODULES_ALIAS_MAX - 1] = 0;

        for (char *line = strtok_r((char *)text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char pattern[512], module[128];

                if (strncmp(line, "alias vfio_pci:", 15) != 0)
                        continue;
                if (sscanf(line + 15, "%511s %127s", pattern, module) != 2)
                        continue;
                /* vfio-pci itself claims every device ("vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci"): it is
                 * the default, not a variant, and its driver is named "vfio-pci", not "vfio_pci". */
                if (streq(module, "vfio_pci"))
                        continue;
                if (fnmatch(pattern, modalias + 4, 0) == 0) {
                        *ret = strdup(module);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return 0;
}
