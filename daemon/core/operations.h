/* Group operations: domain type changes, prepare for VFIO and release, block and unblock. Each is
 * checked here on the loop thread, then run as a journaled transaction on the executor. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "authorize.h"
#include "group-state.h"
#include "histogram.h"
#include "history.h"
#include "host-use.h"
#include "manager.h"
#include "plan.h"
#include "policy.h"

struct event_base;

typedef enum OperationKind {
        OPERATION_SET_DOMAIN_TYPE,
        OPERATION_PREPARE,
        OPERATION_RELEASE,
        OPERATION_BLOCK,
        OPERATION_UNBLOCK,
        _OPERATION_KIND_MAX,
} OperationKind;

const char *operation_kind_to_string(OperationKind k); /* "SetDomainType", "PrepareGroup", ... */

typedef struct OperationRequest {
        OperationKind kind;
        unsigned group;
        const char *type;   /* SetDomainType: "identity", "DMA", "DMA-FQ", "auto" */
        const char *owner;  /* PrepareGroup: who holds the group afterwards */
        const char *client; /* who asked, for logs */
        bool force;         /* take a group the host uses: only for role admin */
        Role role;          /* the asking peer's role, as the transport established it */
        bool dry_run;       /* only say what would be done */
} OperationRequest;

typedef struct OperationOutcome {
        uint64_t id;
        unsigned group;
        int error;           /* 0 or -errno */
        const char *message; /* why it failed, NULL on success */
        char **steps;        /* what was done (or, for a dry run, would be), in order */
} OperationOutcome;

typedef struct Operations Operations;

/* Called on the loop thread when the operation has finished (at once for dry runs and no-ops). */
typedef void (*OperationDoneFunc)(const OperationOutcome *outcome, void *userdata);


/* The running guest that uses a group, as the virt layer sees it. */
typedef struct GroupUser {
        const char *domain_name;
        const char *domain_uuid;
} GroupUser;

/* True, with *ret filled (strings valid until the loop runs again), when a guest uses a member of g. */
typedef bool (*GroupUserFunc)(const Group *g, GroupUser *ret, void *userdata);

typedef struct OperationsOptions {
        const char *policy_dir;    /* *.conf policy rules (docs/POLICY.md); a missing directory is no rule */
        const char *journal_dir;   /* intent records; created when missing */
        const char *state_dir;     /* what survives reboots: prepared and blocked groups */
        unsigned timeout_sec;      /* one operation, start to finish */
        unsigned kernel_write_timeout_sec; /* one kernel write; 0: no bound */
        unsigned max_queued;
        unsigned fault_after_step; /* test hook: die after this step of every transaction (0: off) */
        unsigned history_lines;    /* bound of each history file (0: HISTORY_MAX_LINES) */
} OperationsOptions;

/* Rolls back what an earlier run left in the journal, then compares the group records with the host,
 * before anything else happens: call it before serving anyone. A state or runtime directory that
 * cannot be written does not stop the start: every operation is refused then (reads only). */
int operations_new(struct event_base *base, Manager *manager, const OperationsOptions *options, Operations **ret);
Operations *operations_free(Operations *ops);
static inline void operations_freep(Operations **ops) {
        operations_free(*ops);
}

/* Checks and queues an operation. A refusal (bad argument, no such group, busy, kernel cannot,
 * host uses it, -EROFS when iommud serves reads only or cannot record the change) is returned at
 * once as -errno with *ret_message; otherwise done is called later. Prepare and block store the
 * group's record, release and unblock mark it, before the first step. */
int operations_start(Operations *ops, const OperationRequest *request, OperationDoneFunc done, void *userdata,
                     char **ret_message);

/* Reads the policy directory again. On errors (each logged as file:line) the current policy stays
 * and -EINVAL is returned. */
int operations_reload_policy(Operations *ops);
const Policy *operations_get_policy(const Operations *ops);
/* The plan for the current inventory under the current policy; the caller frees it (plan_free). */
int operations_plan(const Operations *ops, Plan **ret);

/* Applying the policy: each group's steps, run one operation after another. */
typedef struct ApplyOutcome {
        Plan *plan;                  /* what was planned */
        OperationOutcome *outcomes;  /* one per operation run (none for a dry run) */
        size_t n_outcomes;
} ApplyOutcome;
typedef void (*ApplyDoneFunc)(const ApplyOutcome *outcome, void *userdata);
/* group -1: every group; otherwise only that one (a hot-plugged device's). done may be called
 * before this returns (dry runs, nothing to do); NULL just logs the result. -EROFS with
 * *ret_message (may be NULL) when iommud serves reads only and this is no dry run. */
int operations_apply_policy(Operations *ops, int group, bool dry_run, ApplyDoneFunc done, void *userdata,
                            char **ret_message);

Manager *operations_get_manager(const Operations *ops);

/* The virt layer saw a libvirt domain with these PCI hostdevs start (or first saw it running) or
 * stop: the statuses of their groups are judged again, and changes published with that cause. */
void operations_note_libvirt(Operations *ops, const char *name, const char *uuid, bool started,
                             char *const *addresses);

/* Who tells core which groups running guests use (main wires the virt layer in); NULL: nobody.
 * SetDomainType, ReleaseGroup and BlockGroup refuse such a group, naming the guest. */
void operations_set_user_lookup(Operations *ops, GroupUserFunc lookup, void *userdata);
bool operations_group_user(const Operations *ops, const Group *g, GroupUser *ret);

/* What iommud did to the group (HOST when nothing) or IN_USE when a guest uses it, and the owner
 * it was prepared for; FAILED when an operation left it neither as it was nor as intended. */
GroupStateKind operations_group_state(const Operations *ops, const Group *g, const char **ret_owner);

/* What the host does with g's members (a VFIO user, a mount, a link...), judged as an operation
 * would judge it. usage NULL: the facts are read now; otherwise those read for many groups. */
typedef struct HostUsage HostUsage;
int operations_judge_group(Operations *ops, const HostUsage *usage, const Group *g, HostUses *ret);
/* How SetDomainType to type would go for g now, built by the operation's own checks and steps and
 * never run: *ret_allowed (maybe only with force, which *ret_text then says), *ret_current (nothing
 * to do), and *ret_text, e.g. "identity: iommud unbinds e1000e from 0000:03:00.0, writes the type,
 * and binds it again" or "DMA-FQ: refused: ...". */
int operations_type_verdict(Operations *ops, const Group *g, const HostUses *uses, const char *type, bool *ret_allowed,
                            bool *ret_current, char **ret_text);

/* Why every operation is refused, e.g. "state directory /var/lib/iommud is not writable: Read-only
 * file system; iommud serves reads only"; NULL when operations may run. Decided at start. */
const char *operations_read_only_reason(const Operations *ops);

/* What an admin should know about g beyond the kernel's files: records iommud retired (the kernel
 * forgot its overrides), records left alone because other hardware sits at their address, why the
 * group is FAILED. *ret is a strv (possibly empty). */
int operations_group_findings(const Operations *ops, const Group *g, char ***ret);
/* What operations counted since the daemon started, for the metrics: every operation by kind and
 * how it ended, and how long those that ran on the executor took, start to end. */
typedef struct OperationsStats {
        uint64_t total[_OPERATION_KIND_MAX][_OPERATION_RESULT_MAX];
        Histogram duration[_OPERATION_KIND_MAX]; /* seconds */
} OperationsStats;

const OperationsStats *operations_get_stats(const Operations *ops);
unsigned operations_n_in_flight(const Operations *ops); /* groups with an operation under way */
unsigned operations_n_queued(const Operations *ops);    /* transactions waiting for the executor */

/* The history (history_list()): newest first, at most limit (0: all), of the groups given (none:
 * all). The caller frees *ret with history_entries_free(). */
int operations_history(const Operations *ops, size_t limit, const unsigned *groups, size_t n_groups,
                       HistoryEntry **ret, size_t *ret_n);

/* Groups the host uses, per kind of use, judged now as an operation would judge them. */
int operations_count_host_uses(Operations *ops, unsigned ret[static _HOST_USE_KIND_MAX]);
