/* A counter whose upper bound is stored before ids below it are used (as a sequence cache does). */
#include "operation-ids.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "transaction.h"

/* Ids reserved per write of the bound: one fsync per this many operations. */
#define OPERATION_IDS_BLOCK 64

struct OperationIds {
        char *file;
        uint64_t next;  /* the next id to hand out */
        uint64_t bound; /* ids below this are covered by the stored bound */
};

static int read_bound(const char *file, uint64_t *ret) {
        char text[32] = {}, *end;
        FILE *f = fopen(file, "re");
        size_t n;

        if (!f) {
                if (errno != ENOENT)
                        return -errno;
                *ret = 0;
                return 0;
        }
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = 0;
        errno = 0;
        *ret = strtoull(text, &end, 10);
        return errno == 0 && end != text && (*end == '\n' || *end == 0) ? 0 : -EBADMSG;
}

int operation_ids_open(const char *file, const char *journal_dir, OperationIds **ret) {
        _cleanup_(operation_ids_freep) OperationIds *ids = calloc(1, sizeof(*ids));
        uint64_t stored = 0, journal_max = 0;
        int r;

        if (!ids || !(ids->file = strdup(file)))
                return -ENOMEM;
        r = read_bound(file, &stored);
        if (r < 0)
                log_warning_errno(r, "Cannot read the operation id bound in %s, ignoring: %m", file);
        r = transaction_journal_max_id(journal_dir, &journal_max);
        if (r < 0)
                log_warning_errno(r, "Cannot list the intent journal %s, ignoring: %m", journal_dir);
        ids->next = stored > journal_max + 1 ? stored : journal_max + 1;
        ids->bound = ids->next;
        *ret = TAKE_PTR(ids);
        return 0;
}

OperationIds *operation_ids_free(OperationIds *ids) {
        if (!ids)
                return NULL;
        free(ids->file);
        free(ids);
        return NULL;
}

int operation_ids_next(OperationIds *ids, bool volatile_ok, uint64_t *ret) {
        if (ids->next >= ids->bound) {
                char text[32];
                int r;

                snprintf(text, sizeof(text), "%" PRIu64 "\n", ids->next + OPERATION_IDS_BLOCK);
                r = write_file_durable(ids->file, text);
                if (r >= 0)
                        ids->bound = ids->next + OPERATION_IDS_BLOCK;
                else if (!volatile_ok)
                        return r;
        }
        *ret = ids->next++;
        return 0;
}

void operation_ids_at_least(OperationIds *ids, uint64_t floor) {
        if (ids->next < floor)
                ids->next = floor;
}
