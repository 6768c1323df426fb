/* iommud's entry point: command line, then the requested mode. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "inventory.h"
#include "log.h"
#include "macro.h"
#include "roots.h"

typedef struct Arguments {
        bool dump;
        bool compact;
        const char *sysfs_root;
        const char *proc_root;
        const char *dev_root;
        const char *pci_ids;
} Arguments;

static void help(void) {
        printf("Usage: iommud --dump [OPTIONS]\n"
               "\n"
               "IOMMU management daemon: discovers IOMMU units, groups and devices.\n"
               "\n"
               "Modes:\n"
               "  --dump               Print the host's IOMMU inventory as JSON and exit\n"
               "\n"
               "Options:\n"
               "  --root DIR           Read sys/, proc/ and dev/ below DIR (a captured snapshot\n"
               "                       or fixture tree); sets the three roots below\n"
               "  --sysfs-root DIR     Read sysfs below DIR/sys (default: /)\n"
               "  --proc-root DIR      Read procfs below DIR/proc (default: /)\n"
               "  --dev-root DIR       Read device nodes below DIR/dev (default: /)\n"
               "  --pci-ids FILE       pci.ids database for names (default: %s)\n"
               "  --compact            One-line JSON instead of indented\n"
               "  --debug              Log debug messages to stderr\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "\n"
               "Exit status: 0 success, 1 the host could not be read, 2 usage error.\n"
               "Problems with single files do not fail the dump: they are reported in the\n"
               "\"errors\" list of the item they belong to, and summed up in one warning.\n",
               PCI_IDS_PATH);
}

static int parse_argv(int argc, char *argv[], Arguments *args) {
        enum {
                ARG_DUMP = 0x100,
                ARG_ROOT,
                ARG_SYSFS_ROOT,
                ARG_PROC_ROOT,
                ARG_DEV_ROOT,
                ARG_PCI_IDS,
                ARG_COMPACT,
                ARG_DEBUG,
                ARG_VERSION,
        };
        static const struct option options[] = {
                { "dump", no_argument, NULL, ARG_DUMP },
                { "root", required_argument, NULL, ARG_ROOT },
                { "sysfs-root", required_argument, NULL, ARG_SYSFS_ROOT },
                { "proc-root", required_argument, NULL, ARG_PROC_ROOT },
                { "dev-root", required_argument, NULL, ARG_DEV_ROOT },
                { "pci-ids", required_argument, NULL, ARG_PCI_IDS },
                { "compact", no_argument, NULL, ARG_COMPACT },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_DUMP:
                        args->dump = true;
                        break;
                case ARG_ROOT:
                        args->sysfs_root = args->proc_root = args->dev_root = optarg;
                        break;
                case ARG_SYSFS_ROOT:
                        args->sysfs_root = optarg;
                        break;
                case ARG_PROC_ROOT:
                        args->proc_root = optarg;
                        break;
                case ARG_DEV_ROOT:
                        args->dev_root = optarg;
                        break;
                case ARG_PCI_IDS:
                        args->pci_ids = optarg;
                        break;
                case ARG_COMPACT:
                        args->compact = true;
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("iommud %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'iommud --help'.\n");
                        return -EINVAL;
                }
        }

        if (optind < argc) {
                fprintf(stderr, "iommud: unexpected argument '%s'. Try 'iommud --help'.\n", argv[optind]);
                return -EINVAL;
        }
        if (!args->dump) {
                fprintf(stderr, "iommud: no mode given; only --dump exists so far. Try 'iommud --help'.\n");
                return -EINVAL;
        }
        return 1;
}

static int run_dump(const Arguments *args) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        json_object *json;
        int r;

        r = host_roots_open(args->sysfs_root, args->proc_root, args->dev_root, &roots);
        if (r < 0)
                return r;

        r = inventory_load(roots, args->pci_ids, &inv);
        if (r < 0)
                return log_error_errno(r, "Failed to read the host inventory: %m");

        if (inv->n_errors > 0)
                log_warning("%zu problem%s while reading the host; see the \"errors\" lists in the output.",
                            inv->n_errors, inv->n_errors == 1 ? "" : "s");

        json = inventory_to_json(inv);
        fputs(json_object_to_json_string_ext(json, args->compact ? JSON_C_TO_STRING_PLAIN
                                                                 : JSON_C_TO_STRING_PRETTY |
                                                                           JSON_C_TO_STRING_SPACED |
                                                                           JSON_C_TO_STRING_NOSLASHESCAPE),
              stdout);
        fputc('\n', stdout);
        json_object_put(json);

        if (fflush(stdout) != 0 || ferror(stdout))
                return log_error_errno(errno ?: EIO, "Failed to write the dump: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        Arguments args = {};
        int r;

        r = parse_argv(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = run_dump(&args);
        return r < 0 ? 1 : 0;
}
