/* libFuzzer target: what iommud reads back from its own state at start, which a crash, a full disk
 * or an admin's editor may have left in any shape: the intent journal (<runtime>/journal/<id>.json,
 * rolled back by recovery) and the group records (<state>/groups/<n>.json, compared with the host).
 *
 * Input layout: byte 0 bit 0 picks the journal (0) or the group records (1); the rest is split at
 * FUZZ_SEPARATOR into up to four records. The journal is recovered against an empty host tree, so
 * that every undo finds nothing to change (and a wait for a driver cannot start); group records
 * are compared with a fixture host captured from a real kernel. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

#include "fuzz-util.h"
#include "group-record.h"
#include "inventory.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "string-util.h"
#include "strv.h"
#include "transaction.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *journal_dir, *records_dir;
static HostRoots *empty_roots, *host_roots;
static Inventory *inventory;

static void setup(void) {
        const char *scratch = fuzz_scratch_dir();
        const char *host = getenv("FUZZ_HOST_ROOT") ?: FUZZ_SOURCE_ROOT "/tests/fixtures/captured/hypervisor-6.12";
        _cleanup_(freep) char *path = NULL;

        log_set_max_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        journal_dir = strprintf("%s/journal", scratch);
        records_dir = strprintf("%s/groups", scratch);
        path = strprintf("%s/empty", scratch);
        if (!journal_dir || !records_dir || !path || mkdir(journal_dir, 0700) < 0 || mkdir(records_dir, 0700) < 0 ||
            mkdir(path, 0700) < 0)
                abort();
        for (const char *const *d = (const char *const[]){ "sys", "proc", "dev", NULL }; *d; d++) {
                _cleanup_(freep) char *sub = strprintf("%s/%s", path, *d);

                if (!sub || mkdir(sub, 0700) < 0)
                        abort();
        }
        if (host_roots_open(path, path, path, &empty_roots) < 0 || host_roots_open(host, host, host, &host_roots) < 0 ||
            inventory_load(host_roots, NULL, &inventory) < 0)
                abort();
}

static JournalFate fate(uint64_t operation, void *userdata) {
        return (JournalFate)(operation % 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *parts[4];
        size_t sizes[4], n;
        bool journal;

        if (!inventory)
                setup();
        if (size < 1)
                return 0;
        journal = !(data[0] & 1);
        n = fuzz_split(data + 1, size - 1, parts, sizes, 4);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(freep) char *path = strprintf("%s/%zu.json", journal ? journal_dir : records_dir, i + 1);

                if (!path)
                        abort();
                fuzz_write_file(path, parts[i], sizes[i]);
        }

        if (journal) {
                uint64_t max;

                (void)transaction_recover(journal_dir, empty_roots, 1000, NULL, NULL);
                if (transaction_journal_max_id(journal_dir, &max) < 0)
                        abort();
                fuzz_empty_dir(journal_dir);
        } else {
                GroupRecords *rs = NULL;

                if (group_records_open(records_dir, "00000000-0000-0000-0000-000000000000", &rs) < 0)
                        abort();
                group_records_reconcile_all(rs, inventory, fate, NULL);
                for (size_t i = 0; i < inventory->n_groups; i++) {
                        char **findings = NULL;

                        (void)group_records_find(rs, inventory, &inventory->groups[i]);
                        if (group_records_findings(rs, inventory, &inventory->groups[i], &findings) >= 0)
                                strv_free(findings);
                }
                for (size_t i = 0; i < inventory->n_devices; i++)
                        (void)group_records_find_blocked_member(rs, &inventory->devices[i]);
                group_records_free(rs);
                fuzz_empty_dir(records_dir);
        }
        return 0;
}
