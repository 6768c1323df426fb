/* libFuzzer target: the readers of sysfs and procfs text: the kernel command line, an IOMMU group's
 * reserved regions and type, the units' capability registers (Intel cap/ecap, AMD cap/features),
 * the mount tables, swaps, modules, routes, framebuffers, and the holders of open device nodes, as the
 * judgement of what the host does with each group reads them.
 * They run where they always do, on a tree: a copy of a fixture host captured from a real kernel,
 * with the input written over some of its files.
 *
 * Input layout: byte 0 bit 0 picks the host (a VT-d guest with its processes and mounts, or an
 * AMD-Vi guest); the rest is split at FUZZ_SEPARATOR, part i replacing the i-th file of the host's
 * list below. Files the input does not reach keep their captured contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz-util.h"
#include "host-use.h"
#include "host-usage.h"
#include "inventory.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "string-util.h"
#include "svc-dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 16

typedef struct Host {
        const char *fixture;
        const char *files[MAX_FILES];
        char *saved[MAX_FILES]; /* the captured contents, restored after every input */
        size_t saved_size[MAX_FILES];
        char *root;
        HostRoots *roots;
        HostReader *reader;
} Host;

static Host hosts[] = {
        {
                .fixture = "hypervisor-6.12",
                .files = {
                        "proc/cmdline",
                        "sys/kernel/iommu_groups/0/reserved_regions",
                        "sys/class/iommu/dmar0/intel-iommu/cap",
                        "sys/class/iommu/dmar0/intel-iommu/ecap",
                        "proc/1/mountinfo",
                        "proc/self/mountinfo",
                        "proc/swaps",
                        "proc/modules",
                        "sys/kernel/iommu_groups/0/type",
                        "proc/1/net/route",
                        "proc/1/net/if_inet6",
                        "proc/fb",
                        "proc/308/status",
                        "proc/308/comm",
                        "proc/sys/kernel/osrelease",
                },
        },
        {
                .fixture = "amd-6.12",
                .files = {
                        "proc/cmdline",
                        "sys/kernel/iommu_groups/0/reserved_regions",
                        "sys/class/iommu/ivhd0/amd-iommu/cap",
                        "sys/class/iommu/ivhd0/amd-iommu/features",
                        "proc/modules",
                        "sys/kernel/iommu_groups/0/type",
                        "proc/sys/kernel/osrelease",
                },
        },
};

/* Where the dump of each inventory goes: it is printed through the API's mapping, as --dump does. */
static FILE *dump_out;

static void setup(void) {
        log_set_max_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        dump_out = fopen("/dev/null", "we");
        if (!dump_out)
                abort();
        FOREACH_ARRAY(h, hosts, ELEMENTSOF(hosts)) {
                _cleanup_(freep) char *src = strprintf("%s/tests/fixtures/captured/%s", FUZZ_SOURCE_ROOT, h->fixture);

                h->root = strprintf("%s/%s", fuzz_scratch_dir(), h->fixture);
                if (!src || !h->root)
                        abort();
                fuzz_copy_tree(src, h->root);
                if (host_roots_open(h->root, h->root, h->root, &h->roots) < 0 ||
                    host_reader_new(h->roots, NULL, &h->reader) < 0)
                        abort();
                for (size_t i = 0; i < MAX_FILES && h->files[i]; i++) {
                        uint8_t *buf = NULL;
                        size_t n = 0;

                        /* The fixture must have every file listed: a renamed one would go untested. */
                        if (read_binary_at(h->roots->sysfs_fd, h->files[i], 1 << 20, &buf, &n) < 0)
                                abort();
                        h->saved[i] = (char *)buf;
                        h->saved_size[i] = n;
                }
        }
}

static void write_at(Host *h, size_t i, const void *data, size_t size) {
        _cleanup_(freep) char *path = strprintf("%s/%s", h->root, h->files[i]);

        if (!path)
                abort();
        fuzz_write_file(path, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *parts[MAX_FILES];
        size_t sizes[MAX_FILES], n, n_files = 0;
        Inventory *inv = NULL;
        HostUsage *usage = NULL;
        Host *h;

        if (!hosts[0].roots)
                setup();
        if (size < 1)
                return 0;
        h = &hosts[data[0] & 1];
        while (n_files < MAX_FILES && h->files[n_files])
                n_files++;
        n = fuzz_split(data + 1, size - 1, parts, sizes, n_files);
        for (size_t i = 0; i < n; i++)
                write_at(h, i, parts[i], sizes[i]);

        if (inventory_read(h->reader, &inv) < 0)
                abort();
        (void)inventory_dump(inv, dump_out, true);
        if (host_usage_read(h->roots, &usage) >= 0) {
                /* What the host does with each group: mounts, swaps, routes, holders of its nodes. */
                for (size_t i = 0; i < inv->n_groups; i++) {
                        HostUses uses = {};

                        if (host_use_judge_group(h->roots, usage, inv, &inv->groups[i], NULL, NULL, &uses) >= 0)
                                free(host_uses_join(&uses, ~0u));
                        host_uses_done(&uses);
                }
                host_usage_free(usage);
        }
        inventory_free(inv);

        for (size_t i = 0; i < n; i++)
                write_at(h, i, h->saved[i], h->saved_size[i]);
        return 0;
}
