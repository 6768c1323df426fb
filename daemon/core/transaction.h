/* A multi-step host change with everything needed to undo it, journaled before and after each step
 * so that a crash at any point can be rolled back at the next start. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roots.h"

typedef enum StepKind {
        STEP_SET_OVERRIDE, /* device: driver_override := value (NULL clears); undo: := previous */
        STEP_UNBIND,       /* device: unbind from driver value; undo: bind value again */
        STEP_PROBE,        /* device: drivers_probe, must end on driver value; undo: unbind it */
        STEP_WRITE_TYPE,   /* group: type := value; undo: := previous */
        STEP_WAIT_VFIO,    /* group: wait for dev/vfio/<group>; nothing to undo */
        STEP_LOAD_MODULE,  /* value: a module to load; left loaded on undo */
        STEP_SET_NUMVFS,   /* device (a PF): sriov_numvfs := value; undo: := previous */
        STEP_LOAD_DRIVER,  /* device: the PCI driver value must be registered (its module loaded);
                            * left loaded on undo */
        _STEP_KIND_MAX,
} StepKind;

typedef struct Step {
        StepKind kind;
        char *device;   /* PCI address for device steps */
        char *value;    /* see StepKind */
        char *previous; /* what undo restores, for SET_OVERRIDE and WRITE_TYPE; for PROBE, the other
                         * driver the kernel bound instead of value, which undo unbinds */
} Step;

typedef struct Transaction {
        uint64_t id;
        char *operation; /* "SetDomainType", "PrepareGroup", ... */
        unsigned group;
        Step *steps;
        size_t n_steps;
        /* Steps before 'next' are done; step 'next' may have been partly done when a crash
         * interrupted it, so recovery undoes it too (every undo checks the state first). */
        size_t next;
        char *journal_dir; /* NULL: not journaled (dry runs, tests of the steps themselves) */
        /* Test hook: the process kills itself right after step N is done and journaled (1-based). */
        unsigned fault_after_step;
        /* CLOCK_MONOTONIC time after which no further step starts (the transaction rolls back
         * with -ETIMEDOUT); 0: none. */
        uint64_t deadline_usec;
        /* How long one kernel write may take (0: no bound). A write the kernel has not returned from
         * by then stops the transaction where it is, without rollback. */
        uint64_t step_timeout_usec;
        /* Set by transaction_run() and transaction_rollback() when they end with the host neither
         * as before nor as intended (a kernel write did not return, or an undo failed): the journal
         * record is kept for an admin, and the group is FAILED. */
        bool left_failed;
} Transaction;

uint64_t transaction_now_usec(void);

Transaction *transaction_new(uint64_t id, const char *operation, unsigned group);
Transaction *transaction_free(Transaction *t);
static inline void transaction_freep(Transaction **t) {
        transaction_free(*t);
}

/* Appends a step; the strings are copied (NULL allowed). */
int transaction_add(Transaction *t, StepKind kind, const char *device, const char *value, const char *previous);

/* "unbind 0000:01:00.0 from e1000e": what the step does, for dry runs, results and logs. */
char *step_describe(const Step *s, unsigned group);

/* <journal_dir>/<id>.json */
char *transaction_journal_path(const Transaction *t);

/* Runs every step, journaling as it goes. On failure undoes what was done, in reverse, and returns
 * the step's error with *ret_message saying which step failed and why, whether the rollback worked,
 * and where every device the transaction touched is now (driver and driver_override). The journal
 * record is removed once the transaction has completed or been rolled back, and kept when the
 * rollback failed or a kernel write did not return (then left_failed is set; a write that did not
 * return is -ETIMEDOUT). A journal record with t's id that exists already (an earlier operation's, kept for an
 * admin) is never overwritten: -EEXIST, nothing done. */
int transaction_run(Transaction *t, const HostRoots *roots, char **ret_message);

/* Undoes steps next..0 (recovery after a crash, or after a failed step). */
int transaction_rollback(Transaction *t, const HostRoots *roots, char **ret_message);

/* What recovery did with one record left in the journal. */
typedef struct RecoveredRecord {
        uint64_t id;           /* from the file name */
        int group;             /* -1 when the record could not be read */
        const char *operation; /* NULL when the record could not be read */
        const char *path;
        int result;            /* 0: rolled back and removed; -errno: kept for an admin */
        const char *message;   /* why it was kept; NULL when rolled back */
} RecoveredRecord;

typedef void (*RecoverFunc)(const RecoveredRecord *record, void *userdata);

/* Reads every record left in journal_dir and rolls each back (kernel writes bounded by
 * step_timeout_usec), logging what it did and telling cb (may be NULL) about each. Returns the
 * number of records rolled back, or -errno when one could not be (its record is kept). */
int transaction_recover(const char *journal_dir, const HostRoots *roots, uint64_t step_timeout_usec, RecoverFunc cb,
                        void *userdata);

/* The largest id of a record in journal_dir (0 when none, or the directory is missing), so that new
 * ids never reuse one of a record kept for an admin. */
int transaction_journal_max_id(const char *journal_dir, uint64_t *ret);
