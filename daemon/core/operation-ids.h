/* Operation ids, which also name intent journal records: never reused across restarts and reboots,
 * so that a record kept for an admin (its rollback failed) is never overwritten by a later
 * operation, and logs and API answers never give two operations one id. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct OperationIds OperationIds;

/* The first id handed out is above both the bound stored in file (ids below it may have been used
 * by an earlier run) and the largest id of a record in journal_dir. A missing or unreadable file
 * counts as 0 (logged when unreadable). */
int operation_ids_open(const char *file, const char *journal_dir, OperationIds **ret);
OperationIds *operation_ids_free(OperationIds *ids);
static inline void operation_ids_freep(OperationIds **ids) {
        operation_ids_free(*ids);
}

/* The next id. The stored bound is raised (durably, a block of ids at a time) before an id above it
 * is handed out; when it cannot be stored, -errno, unless volatile_ok: then the id is handed out
 * anyway (it is still above every journal record, but a later run may use it again). */
int operation_ids_next(OperationIds *ids, bool volatile_ok, uint64_t *ret);

/* Hands out no id below floor from now on (ids that another log, the history, has seen already). */
void operation_ids_at_least(OperationIds *ids, uint64_t floor);
