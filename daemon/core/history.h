/* The history of operations: who asked for what, when, the steps, the result and how long it took,
 * kept in the state directory across restarts and crashes, bounded in size. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How an operation ended. */
typedef enum OperationResult {
        OPERATION_RESULT_DONE,            /* every step done (or nothing was needed) */
        OPERATION_RESULT_DRY_RUN,         /* a dry run: the steps say what would be done */
        OPERATION_RESULT_REFUSED,         /* refused before touching the host */
        OPERATION_RESULT_FAILED,          /* a step failed; what was done before it was undone */
        OPERATION_RESULT_ROLLBACK_FAILED, /* a step failed and undoing failed too: see the journal */
        OPERATION_RESULT_CANCELLED,       /* queued when the daemon stopped; never touched the host */
        OPERATION_RESULT_CRASH_ROLLED_BACK, /* the daemon died during it; rolled back at the next start */
        OPERATION_RESULT_CRASH_KEPT,      /* the daemon died during it; rolling back failed */
        OPERATION_RESULT_INTERRUPTED,     /* the daemon died during it and no intent record was left */
        OPERATION_RESULT_RUNNING,         /* not ended (yet) */
        _OPERATION_RESULT_MAX,
} OperationResult;

/* "done", "dry-run", "refused", "failed", "rollback-failed", "cancelled", "rolled-back-after-crash",
 * "crashed-rollback-failed", "interrupted", "running" */
const char *operation_result_to_string(OperationResult r);
int operation_result_from_string(const char *s);

typedef struct HistoryEntry {
        uint64_t id;
        char *operation; /* "BlockGroup", ... */
        unsigned group;
        char *argument; /* SetDomainType: the type; PrepareGroup: the owner; else NULL */
        char *peer;     /* who asked */
        bool dry_run, force;
        uint64_t started_usec;  /* CLOCK_REALTIME */
        uint64_t duration_usec; /* start to end; 0 while running */
        char **steps;           /* planned (and for a finished operation: done or undone) */
        OperationResult result;
        char *message; /* why it was refused or failed; NULL on success */
} HistoryEntry;

void history_entry_done(HistoryEntry *e);
void history_entries_free(HistoryEntry *entries, size_t n);

typedef struct History History;

/* The default bound: each of the two files holds at most this many lines (a start and an end line
 * per operation), so between HISTORY_MAX_LINES / 2 and HISTORY_MAX_LINES * 2 entries are kept. */
#define HISTORY_MAX_LINES 2000

/* Opens <dir>/history.jsonl (creating dir and file when missing) and reads what is there: the
 * largest id, and the operations that started but never ended. max_lines 0: the default. A file
 * that cannot be written is read all the same; writing then fails with -EROFS. */
int history_open(const char *dir, unsigned max_lines, History **ret);
History *history_free(History *h);
static inline void history_freep(History **h) {
        history_free(*h);
}

/* The largest id in the history (0 when empty): new operations number on from it. */
uint64_t history_max_id(const History *h);

/* Operations whose start was recorded by an earlier run and whose end never was: that run died
 * during them. Valid until history_finish() is called for one of them. */
const uint64_t *history_unfinished(const History *h, size_t *ret_n);

/* The start of an operation (result RUNNING), on disk before this returns: a crash after it leaves
 * the entry for the next start to close. */
int history_start(History *h, const HistoryEntry *e);
/* The end of an operation started with history_start() (by this run or an earlier one). */
int history_finish(History *h, uint64_t id, OperationResult result, const char *message, uint64_t duration_usec);
/* A whole entry at once: dry runs, refusals, operations with nothing to do. */
int history_add(History *h, const HistoryEntry *e);

/* Reads the history from disk: the newest entries first, at most limit of them (0: all), only those
 * of the groups listed (n_groups 0: every group). */
int history_list(const History *h, size_t limit, const unsigned *groups, size_t n_groups, HistoryEntry **ret,
                 size_t *ret_n);
