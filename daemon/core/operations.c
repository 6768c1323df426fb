/* Group operations: the checks, the steps, the records of what iommud holds, and completion. */
#include "operations.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "boot-id.h"
#include "executor.h"
#include "fileio.h"
#include "group-record.h"
#include "group-status.h"
#include "history.h"
#include "host-use.h"
#include "json-util.h"
#include "log-ids.h"
#include "log.h"
#include "macro.h"
#include "operation-ids.h"
#include "string-util.h"
#include "strv.h"
#include "transaction.h"
#include "vfio-variant.h"

#define VFIO_DRIVER "vfio-pci"
/* driver_override with a name no driver has: nothing binds (KERNEL.md §4.1). */
#define NO_DRIVER "none"

typedef struct Pending {
        Operations *ops;
        OperationRequest request; /* strings owned by the Pending */
        uint64_t id;
        /* Prepare, block: the record to store before the first step (owned here until stored, then
         * by the records). Release, unblock: the record being given back (owned by the records). */
        GroupRecord *record;
        bool owns_record; /* record not stored yet */
        OperationDoneFunc done;
        void *userdata;
        char **steps;
        uint64_t start_usec, start_realtime_usec;
        bool started; /* its start is in the history: it went to the executor */
} Pending;

/* A group an operation left neither as it was nor as intended (GROUP_FAILED). */
typedef struct FailedGroup {
        unsigned group;
        char *first_device; /* the group's first member then: the kernel reuses group numbers */
        char *reason;
} FailedGroup;

/* What recovery did with a journal record at start, for the records' reconciliation. */
typedef struct Recovered {
        uint64_t id;
        bool rolled_back;
} Recovered;

struct Operations {
        Manager *manager;
        char *policy_dir;
        Policy *policy;
        ManagerSubscription *subscription; /* hot-plugged devices of blocked groups */
        Executor *executor;
        char *journal_dir;
        char *state_dir;
        char *records_dir;
        unsigned timeout_sec;
        uint64_t step_timeout_usec;
        unsigned fault_after_step;
        OperationIds *ids;
        char *boot_id;          /* NULL: unknown */
        char *read_only_reason; /* set at start when the state cannot be written: reads only */
        GroupRecords *records;
        FailedGroup *failed;
        size_t n_failed;
        Recovered *recovered; /* at start only */
        size_t n_recovered;
        unsigned *busy; /* group ids with an operation in flight */
        size_t n_busy;
        GroupUserFunc user_lookup;
        void *user_lookup_userdata;
        History *history;
        OperationsStats stats;
        StatusTracker *tracker; /* publishes every change of a group's status */
};

static const char *const operation_names[_OPERATION_KIND_MAX] = {
        [OPERATION_SET_DOMAIN_TYPE] = "SetDomainType", [OPERATION_PREPARE] = "PrepareGroup",
        [OPERATION_RELEASE] = "ReleaseGroup",          [OPERATION_BLOCK] = "BlockGroup",
        [OPERATION_UNBLOCK] = "UnblockGroup",
};

const char *operation_kind_to_string(OperationKind k) {
        return k < _OPERATION_KIND_MAX ? operation_names[k] : NULL;
}

Manager *operations_get_manager(const Operations *ops) {
        return ops->manager;
}

/* The group's status may have changed because of p: judged now, published with p as the cause. */
static void publish_status(Operations *ops, uint64_t id, const OperationRequest *req, unsigned group) {
        EventCause cause = {
                .kind = EVENT_CAUSE_OPERATION,
                .operation_id = id,
                .operation = operation_kind_to_string(req->kind),
                .peer = req->client,
        };
        const EventCause *saved;

        if (!ops->tracker)
                return;
        saved = manager_set_cause(ops->manager, &cause);
        status_tracker_mark(ops->tracker, group);
        status_tracker_flush(ops->tracker);
        manager_set_cause(ops->manager, saved);
}

void operations_note_libvirt(Operations *ops, const char *name, const char *uuid, bool started,
                             char *const *addresses) {
        const Inventory *inv = manager_get_inventory(ops->manager);
        EventCause cause = {
                .kind = EVENT_CAUSE_LIBVIRT,
                .domain_name = name,
                .domain_uuid = uuid,
                .started = started,
        };
        const EventCause *saved;

        if (!ops->tracker)
                return;
        for (char *const *a = addresses; a && *a; a++) {
                const Device *d = inventory_find_device(inv, *a);

                if (d && d->group >= 0)
                        status_tracker_mark(ops->tracker, (unsigned)d->group);
        }
        saved = manager_set_cause(ops->manager, &cause);
        status_tracker_flush(ops->tracker);
        manager_set_cause(ops->manager, saved);
}

void operations_set_user_lookup(Operations *ops, GroupUserFunc lookup, void *userdata) {
        ops->user_lookup = lookup;
        ops->user_lookup_userdata = userdata;
}

bool operations_group_user(const Operations *ops, const Group *g, GroupUser *ret) {
        return ops->user_lookup && ops->user_lookup(g, ret, ops->user_lookup_userdata);
}

static const FailedGroup *find_failed(const Operations *ops, const Group *g) {
        FOREACH_ARRAY(f, ops->failed, ops->n_failed)
                if (f->group == g->id && g->devices[0] && streq(f->first_device, g->devices[0]))
                        return f;
        return NULL;
}

static bool group_busy(const Operations *ops, unsigned id) {
        for (size_t i = 0; i < ops->n_busy; i++)
                if (ops->busy[i] == id)
                        return true;
        return false;
}

GroupStateKind operations_group_state(const Operations *ops, const Group *g, const char **ret_owner) {
        const GroupRecord *r;
        GroupUser user;

        if (ret_owner)
                *ret_owner = NULL;
        if (group_busy(ops, g->id))
                return GROUP_TRANSITIONING;
        r = group_records_find(ops->records, manager_get_inventory(ops->manager), g);
        if (r && ret_owner)
                *ret_owner = r->owner;
        /* A record still pending with no operation in flight: one was left for an admin. */
        if (find_failed(ops, g) || (r && r->pending != RECORD_SETTLED))
                return GROUP_FAILED;
        if (operations_group_user(ops, g, &user))
                return GROUP_IN_USE;
        return r ? r->state : GROUP_HOST;
}

const char *operations_read_only_reason(const Operations *ops) {
        return ops->read_only_reason;
}

int operations_group_findings(const Operations *ops, const Group *g, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        const FailedGroup *f = find_failed(ops, g);
        const GroupRecord *r;
        size_t n;
        int k;

        k = group_records_findings(ops->records, manager_get_inventory(ops->manager), g, &l);
        if (k < 0)
                return k;
        n = strv_length(l);
        if (f && strv_push_dup(&l, &n, f->reason) < 0)
                return -ENOMEM;
        r = group_records_find(ops->records, manager_get_inventory(ops->manager), g);
        if (!f && r && r->pending != RECORD_SETTLED && !group_busy(ops, g->id)) {
                char *reason = strprintf("operation %" PRIu64 " on group %u could not be rolled back; its record %s "
                                         "and its intent record are kept for an admin",
                                         r->pending_operation, g->id, r->path);

                if (!reason || strv_push(&l, &n, reason) < 0) {
                        free(reason);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- checks ----------------------------------------------------------------------------------- */

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* "prepared by iommud for libvirt:vm1", "in use by libvirt domain 'vm1'": what the SR-IOV verdict
 * says about a virtual function's group besides its driver and holders. */
static char *describe_group_owner(const Group *g, void *userdata) {
        const Operations *ops = userdata;
        const GroupRecord *r = group_records_find(ops->records, manager_get_inventory(ops->manager), g);
        GroupUser user;

        if (operations_group_user(ops, g, &user))
                return strprintf("in use by libvirt domain '%s'", user.domain_name);
        if (r && r->state == GROUP_VFIO_READY)
                return strprintf("prepared by iommud for %s", r->owner ?: "an API client");
        if (r && r->state == GROUP_BLOCKED)
                return strdup("blocked by iommud");
        return NULL;
}

/* The host-use verdict on g, from facts read now. */
static int judge_group(Operations *ops, const Inventory *inv, const Group *g, HostUses *ret) {
        _cleanup_(host_usage_freep) HostUsage *usage = NULL;
        const HostRoots *roots = manager_get_roots(ops->manager);
        int r;

        r = host_usage_read(roots, &usage);
        if (r < 0)
                return r;
        return host_use_judge_group(roots, usage, inv, g, describe_group_owner, ops, ret);
}

int operations_count_host_uses(Operations *ops, unsigned ret[static _HOST_USE_KIND_MAX]) {
        _cleanup_(host_usage_freep) HostUsage *usage = NULL;
        const HostRoots *roots = manager_get_roots(ops->manager);
        const Inventory *inv = manager_get_inventory(ops->manager);
        int r;

        /* The facts are read once for all groups. */
        r = host_usage_read(roots, &usage);
        if (r < 0)
                return r;
        memset(ret, 0, _HOST_USE_KIND_MAX * sizeof(unsigned));
        FOREACH_ARRAY(g, inv->groups, inv->n_groups) {
                _cleanup_(host_uses_done) HostUses uses = {};
                unsigned kinds = 0;

                r = host_use_judge_group(roots, usage, inv, g, describe_group_owner, ops, &uses);
                if (r < 0)
                        return r;
                FOREACH_ARRAY(u, uses.items, uses.n)
                        kinds |= 1u << u->kind;
                for (int k = 0; k < _HOST_USE_KIND_MAX; k++)
                        ret[k] += !!(kinds & (1u << k));
        }
        return 0;
}

#define ALL_HOST_USES ((1u << _HOST_USE_KIND_MAX) - 1)
/* What stands in the way of giving a group on VFIO back: its users, VFs that would vanish, and
 * what cannot be told. A boot VGA card that was passed through goes back to the host gladly. */
#define RELEASE_HOST_USES ((1u << HOST_USE_VFIO) | (1u << HOST_USE_SRIOV) | (1u << HOST_USE_UNKNOWN))

/* Refuses what the verdict forbids among 'kinds': a VFIO user always (unbinding its device would
 * block in the kernel until it lets go), every other use and every unknown unless forced. */
static int check_uses(const Group *g, const HostUses *uses, unsigned kinds, bool force, char **ret_message) {
        _cleanup_(freep) char *vfio = NULL, *known = NULL, *unknown = NULL;
        unsigned hard = 0;

        FOREACH_ARRAY(u, uses->items, uses->n)
                if ((kinds & (1u << u->kind)) && !u->forcible)
                        hard |= 1u << u->kind;
        if (hard) {
                vfio = host_uses_join(uses, hard);
                if (!vfio)
                        return -ENOMEM;
                *ret_message = strprintf("group %u is in use through VFIO: %s (this cannot be forced: unbinding would "
                                         "block in the kernel until the user lets go)",
                                         g->id, vfio);
                return -EBUSY;
        }
        if (force)
                return 0;
        known = host_uses_join(uses, kinds & ~(1u << HOST_USE_UNKNOWN));
        unknown = host_uses_join(uses, kinds & (1u << HOST_USE_UNKNOWN));
        if (!known && !unknown)
                return 0;
        if (known)
                *ret_message = strprintf("group %u is in use by the host: %s%s%s (an admin may force it)", g->id, known,
                                         unknown ? "; and " : "", unknown ?: "");
        else
                *ret_message = strprintf("group %u may be in use by the host: %s (an admin may force it)", g->id,
                                         unknown);
        return -EBUSY;
}

/* A running guest's devices are never taken from it, not even by force: QEMU would lose them. */
static int check_guest_use(Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                           const HostUses *uses, char **ret_message) {
        _cleanup_(freep) char *owner = NULL, *held = NULL;
        const GroupRecord *record;
        GroupUser user;

        if (req->kind != OPERATION_SET_DOMAIN_TYPE && req->kind != OPERATION_RELEASE && req->kind != OPERATION_BLOCK)
                return 0;
        if (!operations_group_user(ops, g, &user))
                return 0;
        /* libvirt runs its "release end" hook before it announces that the domain stopped: a group
         * prepared for that domain may go back once its QEMU has let go of it. */
        if (req->kind == OPERATION_RELEASE) {
                owner = strprintf("libvirt:%s", user.domain_name);
                if (!owner)
                        return -ENOMEM;
                held = host_uses_join(uses, 1u << HOST_USE_VFIO);
                record = group_records_find(ops->records, inv, g);
                if (record && record->owner && streq(record->owner, owner) && !held)
                        return 0;
        }
        *ret_message = strprintf("group %u is in use by libvirt domain '%s' (uuid %s)", g->id, user.domain_name,
                                 user.domain_uuid);
        return -EBUSY;
}

/* Critical groups are never touched, and Passthrough=deny keeps a group from VFIO, unless an admin
 * forces it. A refusal by a check, like the others (-EBUSY, FAILED_PRECONDITION): -EPERM is for a peer
 * without the role. */
static int check_policy(const Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                        char **ret_message) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        const PlanGroup *pg;
        int r;

        if (req->force || req->kind == OPERATION_RELEASE || req->kind == OPERATION_UNBLOCK)
                return 0;
        r = plan_compute(ops->policy, inv, &plan);
        if (r < 0)
                return r;
        pg = plan_find_group(plan, g->id);
        if (!pg)
                return 0;
        if (pg->critical) {
                const PlanOrigin *o = &pg->origins[POLICY_CRITICAL];

                *ret_message = strprintf("group %u is critical: %s matches %s:%u (%s); an admin may force it", g->id,
                                         o->device ?: "a member", o->file ?: "?", o->line, o->setting ?: "Critical=yes");
                return -EBUSY;
        }
        if (req->kind == OPERATION_PREPARE && pg->passthrough_refusal) {
                *ret_message = strprintf("group %u may not be passed through: %s", g->id, pg->passthrough_refusal);
                return -EBUSY;
        }
        return 0;
}

/* ---- building transactions ------------------------------------------------------------------- */

/* Unbinding a physical function destroys its virtual functions. Disabling them first, as a step of
 * its own, puts their number in the journal, so that a rollback enables them again. */
static int add_unbind(Transaction *t, const Device *d) {
        if (d->sriov_role == SRIOV_PF && d->sriov_numvfs > 0) {
                char count[16];
                int r;

                snprintf(count, sizeof(count), "%d", d->sriov_numvfs);
                r = transaction_add(t, STEP_SET_NUMVFS, d->address, "0", count);
                if (r < 0)
                        return r;
        }
        return transaction_add(t, STEP_UNBIND, d->address, d->driver, NULL);
}

/* What the kernel accepts is the group's type-change verdict (host/groups.c), judged once: a type it
 * refuses fails here, before any step; a type it accepts now is written as is; any other needs the
 * members that are in the way unbound around the write. */
static int build_set_type(Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                          const HostUses *uses, Transaction *t, char **ret_message) {
        const TypeRefusal *refusal;
        bool may_stay = g->type_change.managed_drivers_may_stay;
        int r;

        if (!streq(req->type, "identity") && !streq(req->type, "DMA") && !streq(req->type, "DMA-FQ") &&
            !streq(req->type, "auto")) {
                *ret_message = strprintf("'%s' is not a domain type iommud can set (identity, DMA, DMA-FQ, auto)",
                                         req->type);
                return -EINVAL;
        }
        refusal = type_change_refusal(&g->type_change, req->type);
        if (refusal) {
                *ret_message = strprintf("group %u cannot be %s: %s", g->id, req->type,
                                         refusal->reason ?: "the kernel refuses it");
                return -EOPNOTSUPP;
        }
        if (g->type_raw && streq(g->type_raw, req->type))
                return 0; /* nothing to do: no steps */
        /* A VFIO user owns the group's DMA: the kernel refuses every new default domain then (EPERM
         * from 6.4, EBUSY before), except DMA -> DMA-FQ in place from 6.4. */
        if (!(may_stay && g->type == DOMAIN_TYPE_DMA && streq(req->type, "DMA-FQ"))) {
                r = check_uses(g, uses, 1u << HOST_USE_VFIO, req->force, ret_message);
                if (r < 0)
                        return r;
        }
        if (strv_contains(g->type_change.allowed, req->type))
                return transaction_add(t, STEP_WRITE_TYPE, NULL, req->type, g->type_raw);

        r = check_uses(g, uses, ALL_HOST_USES, req->force, ret_message);
        if (r < 0)
                return r;
        for (int pass = 0; pass < 2; pass++)
                for (char **a = g->devices; *a; a++) {
                        const Device *d = inventory_find_device(inv, *a);

                        if (!d || !d->driver || (may_stay && driver_is_dma_managed(d->driver)))
                                continue;
                        r = pass == 0 ? transaction_add(t, STEP_SET_OVERRIDE, d->address, NO_DRIVER, d->driver_override)
                                      : add_unbind(t, d);
                        if (r < 0)
                                return r;
                }
        r = transaction_add(t, STEP_WRITE_TYPE, NULL, req->type, g->type_raw);
        for (int pass = 0; r >= 0 && pass < 2; pass++)
                for (char **a = g->devices; r >= 0 && *a; a++) {
                        const Device *d = inventory_find_device(inv, *a);

                        if (!d || !d->driver || (may_stay && driver_is_dma_managed(d->driver)))
                                continue;
                        r = pass == 0 ? transaction_add(t, STEP_SET_OVERRIDE, d->address, d->driver_override, NO_DRIVER)
                                      : transaction_add(t, STEP_PROBE, d->address, d->driver, NULL);
                }
        return r;
}

/* A group the kernel will not let VFIO have, whatever is bound (a direct reserved region): refused
 * before any step, naming the region. Driver blockers are what preparing the group fixes. */
static int check_kernel_viability(const Group *g, char **ret_message) {
        FOREACH_ARRAY(b, g->blockers, g->n_blockers)
                if (b->kind == BLOCKER_DIRECT_REGION) {
                        *ret_message = strdup(b->reason ?: "the kernel refuses this group for VFIO");
                        return -EOPNOTSUPP;
                }
        return 0;
}

/* ---- verdicts for the group status ------------------------------------------------------------ */

int operations_judge_group(Operations *ops, const HostUsage *usage, const Group *g, HostUses *ret) {
        const Inventory *inv = manager_get_inventory(ops->manager);

        if (!usage)
                return judge_group(ops, inv, g, ret);
        return host_use_judge_group(manager_get_roots(ops->manager), usage, inv, g, describe_group_owner, ops, ret);
}

/* "iommud unbinds e1000e from 0000:03:00.0 and ahci from 0000:03:00.1, writes the type, and binds
 * them again": the steps of a type change, said in one line. */
static char *describe_type_steps(const Transaction *t) {
        _cleanup_(freep) char *unbinds = strdup("");
        size_t n = 0;

        FOREACH_ARRAY(s, t->steps, t->n_steps) {
                char *next;

                if (!unbinds)
                        return NULL;
                if (s->kind != STEP_UNBIND)
                        continue;
                next = strprintf("%s%s%s from %s", unbinds, n == 0 ? "" : " and ", s->value ?: "its driver", s->device);
                free(unbinds);
                unbinds = next;
                n++;
        }
        if (!unbinds)
                return NULL;
        if (n == 0)
                return strdup("iommud writes the type");
        return strprintf("iommud unbinds %s, writes the type, and binds %s again", unbinds, n == 1 ? "it" : "them");
}

int operations_type_verdict(Operations *ops, const Group *g, const HostUses *uses, const char *type, bool *ret_allowed,
                            bool *ret_current, char **ret_text) {
        const Inventory *inv = manager_get_inventory(ops->manager);
        OperationRequest req = { .kind = OPERATION_SET_DOMAIN_TYPE, .group = g->id, .type = type };
        _cleanup_(freep) char *message = NULL, *forced = NULL, *how = NULL;
        bool needs_force = false;
        int r;

        /* The checks SetDomainType makes, in its order, on steps that are never run. */
        r = check_guest_use(ops, inv, g, &req, uses, &message);
        for (int attempt = 0; r >= 0 && attempt < 2; attempt++) {
                _cleanup_(transaction_freep) Transaction *t = transaction_new(0, "SetDomainType", g->id);

                if (!t)
                        return -ENOMEM;
                req.force = attempt > 0;
                r = build_set_type(ops, inv, g, &req, uses, t, attempt == 0 ? &message : &forced);
                if (r == -EBUSY && attempt == 0) {
                        /* A host use an admin may override: what force would do. */
                        needs_force = true;
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                *ret_current = t->n_steps == 0;
                how = t->n_steps == 0 ? strdup("the group has this type already") : describe_type_steps(t);
                if (!how)
                        return -ENOMEM;
                *ret_allowed = true;
                *ret_text = needs_force ? strprintf("%s: %s; only with force: %s", type, how, message)
                                        : strprintf("%s: %s", type, how);
                return *ret_text ? 0 : -ENOMEM;
        }
        if (r == -ENOMEM)
                return r;
        *ret_allowed = false;
        *ret_current = false;
        *ret_text = strprintf("%s: refused: %s", type, (forced ?: message) ?: strerror(-r));
        return *ret_text ? 0 : -ENOMEM;
}

static int build_prepare(Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                         const HostUses *uses, Transaction *t, GroupRecord **ret_record, char **ret_message) {
        const GroupRecord *record;
        _cleanup_(strv_freep) char **loaded = NULL;
        _cleanup_(freep) char **targets = NULL; /* per member: its variant module, or NULL */
        size_t n_loaded = 0;
        bool all_ready = true;
        int r;

        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);

                if (d && d->header_type == 0 && !d->vfio_bound)
                        all_ready = false;
        }
        record = all_ready ? group_records_find(ops->records, inv, g) : NULL;
        if (record) {
                /* Prepared already: fine for whom it was prepared, as long as nobody else holds it. */
                r = check_uses(g, uses, 1u << HOST_USE_VFIO, false, ret_message);
                if (r < 0)
                        return r;
                if (record->owner && req->owner && !streq(record->owner, req->owner)) {
                        *ret_message = strprintf("group %u is prepared for %s already; it is given to another owner "
                                                 "only after a release",
                                                 g->id, record->owner);
                        return -EBUSY;
                }
                return 0;
        }

        r = check_kernel_viability(g, ret_message);
        if (r < 0)
                return r;
        r = check_uses(g, uses, ALL_HOST_USES, req->force, ret_message);
        if (r < 0)
                return r;
        r = group_record_from_group(inv, g, GROUP_VFIO_READY, req->owner, VFIO_DRIVER, ret_record);
        if (r < 0)
                return r;

        /* Each endpoint gets its vendor's VFIO variant driver when the kernel has one, as libvirt
         * does; the module is loaded first so that the override finds its driver. */
        targets = calloc(g->n_devices + 1, sizeof(char *));
        if (!targets)
                return -ENOMEM;
        r = transaction_add(t, STEP_LOAD_MODULE, NULL, "vfio_pci", NULL);
        if (r >= 0)
                r = transaction_add(t, STEP_LOAD_MODULE, NULL, "vfio_iommu_type1", NULL);
        for (size_t i = 0; r >= 0 && g->devices[i]; i++) {
                const Device *d = inventory_find_device(inv, g->devices[i]);

                if (!d || d->header_type != 0 || d->vfio_bound)
                        continue;
                r = vfio_variant_lookup(manager_get_roots(ops->manager), inv->host.kernel_release, d->modalias,
                                        &targets[i]);
                if (r >= 0 && targets[i])
                        r = group_record_set_target(*ret_record, d->address, targets[i]);
                if (r >= 0 && targets[i] && !strv_contains(loaded, targets[i])) {
                        r = transaction_add(t, STEP_LOAD_MODULE, NULL, targets[i], NULL);
                        if (r >= 0)
                                r = strv_push_dup(&loaded, &n_loaded, targets[i]);
                }
        }
        /* Overrides first on every member, so that no sibling can be re-probed by a host driver while
         * the others change hands. */
        for (int pass = 0; r >= 0 && pass < 3; pass++)
                for (size_t i = 0; r >= 0 && g->devices[i]; i++) {
                        const Device *d = inventory_find_device(inv, g->devices[i]);
                        const char *target = targets[i] ?: VFIO_DRIVER;

                        if (!d || d->header_type != 0 || d->vfio_bound)
                                continue;
                        if (pass == 0)
                                r = transaction_add(t, STEP_SET_OVERRIDE, d->address, target, d->driver_override);
                        else if (pass == 1 && d->driver)
                                r = add_unbind(t, d);
                        else if (pass == 2)
                                r = transaction_add(t, STEP_PROBE, d->address, target, NULL);
                }
        for (size_t i = 0; i < g->n_devices; i++)
                free(targets[i]);
        if (r >= 0)
                r = transaction_add(t, STEP_WAIT_VFIO, NULL, NULL, NULL);
        return r;
}

/* A physical function gets back the VFs iommud disabled to take it, once its own driver is bound
 * again (the kernel configures SR-IOV only through a bound driver). */
static int add_enable_vfs(const GroupRecord *record, Transaction *t) {
        FOREACH_ARRAY(m, record->members, record->n_members) {
                char count[16];
                int r;

                if (m->sriov_numvfs <= 0 || !m->driver)
                        continue;
                snprintf(count, sizeof(count), "%d", m->sriov_numvfs);
                r = transaction_add(t, STEP_SET_NUMVFS, m->address, count, "0");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The original drivers' modules load first, while every member still has its VFIO override: a
 * driver that registers then cannot take a member before its turn. */
static int add_load_drivers(const Inventory *inv, const GroupRecord *record, Transaction *t) {
        _cleanup_(strv_freep) char **drivers = NULL;
        size_t n = 0;
        int r;

        FOREACH_ARRAY(m, record->members, record->n_members) {
                if (!m->driver || !inventory_find_device(inv, m->address) || strv_contains(drivers, m->driver))
                        continue;
                r = transaction_add(t, STEP_LOAD_DRIVER, m->address, m->driver, NULL);
                if (r >= 0)
                        r = strv_push_dup(&drivers, &n, m->driver);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "nothing is recorded to give back", and why when iommud knows (a retired record). */
static char *describe_nothing_recorded(const Operations *ops, const Inventory *inv, const Group *g,
                                       const char *what) {
        _cleanup_(strv_freep) char **findings = NULL;

        (void)group_records_findings(ops->records, inv, g, &findings);
        return strprintf("group %u %s: nothing is recorded to give back%s%s", g->id, what,
                         findings && findings[0] ? "; " : "", findings && findings[0] ? findings[0] : "");
}

static int build_release(Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                         const HostUses *uses, Transaction *t, GroupRecord **ret_record, char **ret_message) {
        GroupRecord *record = group_records_find(ops->records, inv, g);
        int r = 0;

        if (!record || record->state != GROUP_VFIO_READY) {
                *ret_message = describe_nothing_recorded(ops, inv, g, "was not prepared by iommud");
                return -ENOENT;
        }
        r = check_uses(g, uses, RELEASE_HOST_USES, req->force, ret_message);
        if (r < 0)
                return r;
        r = add_load_drivers(inv, record, t);
        for (int pass = 0; r >= 0 && pass < 3; pass++)
                FOREACH_ARRAY(m, record->members, record->n_members) {
                        const Device *d = inventory_find_device(inv, m->address);

                        if (!d)
                                continue;
                        if (pass == 0)
                                r = transaction_add(t, STEP_SET_OVERRIDE, m->address, m->override, d->driver_override);
                        else if (pass == 1 && d->driver)
                                r = add_unbind(t, d);
                        else if (pass == 2 && m->driver)
                                r = transaction_add(t, STEP_PROBE, m->address, m->driver, NULL);
                        if (r < 0)
                                break;
                }
        if (r >= 0)
                r = add_enable_vfs(record, t);
        if (r >= 0)
                *ret_record = record;
        return r;
}

static int build_block(Operations *ops, const Inventory *inv, const Group *g, const OperationRequest *req,
                       const HostUses *uses, Transaction *t, GroupRecord **ret_record, char **ret_message) {
        const GroupRecord *held = group_records_find(ops->records, inv, g);
        int r;

        /* Who holds it first: that is what an admin needs to know. */
        r = check_uses(g, uses, 1u << HOST_USE_VFIO, false, ret_message);
        if (r < 0)
                return r;
        if (held) {
                *ret_message = strprintf("group %u is held by iommud already (%s); release or unblock it first", g->id,
                                         group_state_to_string(held->state));
                return -EBUSY;
        }
        r = check_uses(g, uses, ALL_HOST_USES, req->force, ret_message);
        if (r < 0)
                return r;
        r = group_record_from_group(inv, g, GROUP_BLOCKED, NULL, NO_DRIVER, ret_record);
        for (int pass = 0; r >= 0 && pass < 2; pass++)
                for (char **a = g->devices; r >= 0 && *a; a++) {
                        const Device *d = inventory_find_device(inv, *a);

                        if (!d || d->header_type != 0)
                                continue;
                        if (pass == 0)
                                r = transaction_add(t, STEP_SET_OVERRIDE, d->address, NO_DRIVER, d->driver_override);
                        else if (d->driver)
                                r = add_unbind(t, d);
                }
        return r;
}

static int build_unblock(Operations *ops, const Inventory *inv, const Group *g, Transaction *t,
                         GroupRecord **ret_record, char **ret_message) {
        GroupRecord *record = group_records_find(ops->records, inv, g);
        int r = 0;

        if (!record || record->state != GROUP_BLOCKED) {
                *ret_message = describe_nothing_recorded(ops, inv, g, "is not blocked by iommud");
                return -ENOENT;
        }
        r = add_load_drivers(inv, record, t);
        for (int pass = 0; r >= 0 && pass < 2; pass++)
                FOREACH_ARRAY(m, record->members, record->n_members) {
                        if (pass == 0)
                                r = transaction_add(t, STEP_SET_OVERRIDE, m->address, m->override, NO_DRIVER);
                        else if (m->driver)
                                r = transaction_add(t, STEP_PROBE, m->address, m->driver, NULL);
                        if (r < 0)
                                break;
                }
        if (r >= 0)
                r = add_enable_vfs(record, t);
        if (r >= 0)
                *ret_record = record;
        return r;
}

/* ---- accounting --------------------------------------------------------------------------------- */

static uint64_t realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const char *request_argument(const OperationRequest *req) {
        return req->kind == OPERATION_SET_DOMAIN_TYPE ? req->type : req->kind == OPERATION_PREPARE ? req->owner : NULL;
}

static HistoryEntry history_entry_of(const OperationRequest *req, uint64_t id, char **steps, uint64_t start_realtime) {
        return (HistoryEntry){
                .id = id,
                .operation = (char *)operation_kind_to_string(req->kind),
                .group = req->group,
                .argument = (char *)request_argument(req),
                .peer = (char *)req->client,
                .dry_run = req->dry_run,
                .force = req->force,
                .started_usec = start_realtime,
                .steps = steps,
                .result = OPERATION_RESULT_RUNNING,
        };
}

/* The operation goes to the executor: its start is on disk first, so that a crash during it leaves
 * an entry that the next start closes. */
static void account_start(Operations *ops, const OperationRequest *req, uint64_t id, char **steps,
                          uint64_t start_realtime) {
        HistoryEntry e = history_entry_of(req, id, steps, start_realtime);

        if (history_start(ops->history, &e) < 0)
                log_warning("Operation %llu is not in the history: its start could not be written.",
                            (unsigned long long)id);
        log_event(LOG_INFO,
                  ((LogFields){ .message_id = LOG_ID_OPERATION_STARTED, LOG_GROUP(req->group), .operation = id,
                                .peer = req->client }),
                  "Operation %llu: %s%s%s on group %u for %s%s, %zu steps.", (unsigned long long)id,
                  operation_kind_to_string(req->kind), request_argument(req) ? " " : "", request_argument(req) ?: "",
                  req->group, req->client ?: "?", req->force ? " (forced)" : "", strv_length(steps));
}

/* How an operation ended, in one place: the counters, the history and the audit line. started: its
 * start is in the history already (it ran on the executor). */
static void account_end(Operations *ops, const OperationRequest *req, uint64_t id, char **steps, bool started,
                        uint64_t start_usec, uint64_t start_realtime, OperationResult result, const char *message) {
        static const struct {
                int level;
                const char *id;
                const char *text;
        } kinds[_OPERATION_RESULT_MAX] = {
                [OPERATION_RESULT_DONE] = { LOG_INFO, LOG_ID_OPERATION_DONE, "done" },
                [OPERATION_RESULT_DRY_RUN] = { LOG_INFO, LOG_ID_OPERATION_DRY_RUN, "dry run, nothing changed" },
                [OPERATION_RESULT_REFUSED] = { LOG_NOTICE, LOG_ID_OPERATION_REFUSED, "refused" },
                [OPERATION_RESULT_FAILED] = { LOG_WARNING, LOG_ID_OPERATION_FAILED, "failed, rolled back" },
                [OPERATION_RESULT_ROLLBACK_FAILED] = { LOG_ERR, LOG_ID_ROLLBACK_FAILED, "failed, rollback failed" },
                [OPERATION_RESULT_CANCELLED] = { LOG_NOTICE, LOG_ID_OPERATION_FAILED, "cancelled" },
        };
        uint64_t duration = transaction_now_usec() - start_usec;
        int r;

        if ((unsigned)req->kind < _OPERATION_KIND_MAX && (unsigned)result < _OPERATION_RESULT_MAX) {
                ops->stats.total[req->kind][result]++;
                if (started)
                        histogram_observe(&ops->stats.duration[req->kind], (double)duration / 1e6);
        }
        if (started)
                r = history_finish(ops->history, id, result, message, duration);
        else {
                HistoryEntry e = history_entry_of(req, id, steps, start_realtime);

                e.result = result;
                e.message = (char *)message;
                e.duration_usec = duration;
                r = history_add(ops->history, &e);
        }
        if (r < 0)
                log_warning("The end of operation %llu is not in the history.", (unsigned long long)id);

        if ((unsigned)result < _OPERATION_RESULT_MAX && kinds[result].id)
                log_event(kinds[result].level,
                          ((LogFields){ .message_id = kinds[result].id, LOG_GROUP(req->group), .operation = id,
                                        .peer = req->client }),
                          "Operation %llu %s%s%s on group %u for %s%s: %s (%zu steps, %.3f s)%s%s",
                          (unsigned long long)id, operation_kind_to_string(req->kind),
                          request_argument(req) ? " " : "", request_argument(req) ?: "", req->group,
                          req->client ?: "?", req->force ? " (forced)" : "", kinds[result].text, strv_length(steps),
                          (double)duration / 1e6, message ? ": " : ".", message ?: "");
}

const OperationsStats *operations_get_stats(const Operations *ops) {
        return &ops->stats;
}

unsigned operations_n_in_flight(const Operations *ops) {
        return (unsigned)ops->n_busy;
}

unsigned operations_n_queued(const Operations *ops) {
        return executor_n_queued(ops->executor);
}

int operations_history(const Operations *ops, size_t limit, const unsigned *groups, size_t n_groups,
                       HistoryEntry **ret, size_t *ret_n) {
        return history_list(ops->history, limit, groups, n_groups, ret, ret_n);
}

/* ---- running ---------------------------------------------------------------------------------- */

static char **describe_steps(const Transaction *t) {
        char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        for (size_t i = 0; l && i < t->n_steps; i++) {
                char *s = step_describe(&t->steps[i], t->group);

                if (!s || strv_push(&l, &n, s) < 0) {
                        free(s);
                        return strv_free(l);
                }
        }
        return l;
}

static void busy_remove(Operations *ops, unsigned id) {
        for (size_t i = 0; i < ops->n_busy; i++)
                if (ops->busy[i] == id) {
                        ops->busy[i] = ops->busy[--ops->n_busy];
                        return;
                }
}

static void pending_free(Pending *p) {
        free((char *)p->request.type);
        free((char *)p->request.owner);
        free((char *)p->request.client);
        if (p->owns_record)
                group_record_free(p->record);
        strv_free(p->steps);
        free(p);
}

static void finish(Pending *p, int error, const char *message, OperationResult result) {
        OperationOutcome outcome = {
                .id = p->id,
                .group = p->request.group,
                .error = error,
                .message = message,
                .steps = p->steps,
        };

        account_end(p->ops, &p->request, p->id, p->steps, p->started, p->start_usec, p->start_realtime_usec, result,
                    error < 0 ? message ?: strerror(-error) : NULL);
        p->done(&outcome, p->userdata);
        pending_free(p);
}

static void reapply_block(Operations *ops, unsigned group);

static int add_failed(Operations *ops, const Group *g, unsigned id, const char *reason) {
        FailedGroup *f;

        /* One entry per group: the latest reason. */
        FOREACH_ARRAY(old, ops->failed, ops->n_failed)
                if (old->group == id) {
                        free(old->first_device);
                        free(old->reason);
                        *old = ops->failed[--ops->n_failed];
                        break;
                }
        f = array_append(&ops->failed, &ops->n_failed, sizeof(FailedGroup));
        if (!f)
                return -ENOMEM;
        f->group = id;
        f->first_device = g && g->devices[0] ? strdup(g->devices[0]) : NULL;
        f->reason = strdup(reason);
        if (!f->reason || (g && g->devices[0] && !f->first_device)) {
                free(f->first_device);
                free(f->reason);
                ops->n_failed--;
                return -ENOMEM;
        }
        return 0;
}

/* The record follows the outcome: kept or settled when the host changed as intended, settled or
 * removed when the transaction was rolled back, left pending (the group FAILED) when the host is in
 * between. Done before the devices are read again below, so that whoever listens to those changes
 * (re-blocking, reconciliation) sees what iommud holds now. */
static void settle_record(Pending *p, Transaction *t, int result) {
        Operations *ops = p->ops;
        bool acquiring = p->request.kind == OPERATION_PREPARE || p->request.kind == OPERATION_BLOCK;

        if (!p->record || p->owns_record)
                return;
        if (t->left_failed)
                return; /* pending; the next start settles it from the journal */
        if (result >= 0 ? !acquiring : acquiring)
                group_records_forget(ops->records, p->record);
        else
                group_records_settle(ops->records, p->record);
        p->record = NULL;
}

/* A failed step's rollback either worked, and the intent record is gone, or it did not, and the
 * record is kept for the next start and for an admin. */
static OperationResult failure_result(const Transaction *t, int error) {
        _cleanup_(freep) char *path = NULL;

        if (error == -ECANCELED)
                return OPERATION_RESULT_CANCELLED;
        path = strprintf("%s/%llu.json", t->journal_dir, (unsigned long long)t->id);
        return path && access(path, F_OK) == 0 ? OPERATION_RESULT_ROLLBACK_FAILED : OPERATION_RESULT_FAILED;
}

static void on_transaction_done(Transaction *t, int result, char *message, void *userdata) {
        Pending *p = userdata;
        Operations *ops = p->ops;
        EventCause cause = {
                .kind = EVENT_CAUSE_OPERATION,
                .operation_id = p->id,
                .operation = operation_kind_to_string(p->request.kind),
                .peer = p->request.client,
        };
        const EventCause *saved = manager_set_cause(ops->manager, &cause);
        const Group *g;

        busy_remove(ops, p->request.group);
        settle_record(p, t, result);
        if (t->left_failed) {
                g = inventory_find_group(manager_get_inventory(ops->manager), p->request.group);
                if (add_failed(ops, g, p->request.group, message ?: "an operation failed and was not undone") < 0)
                        log_oom();
        }

        /* The host changed (or was rolled back): read every member again, publishing the changes. */
        FOREACH_ARRAY(s, t->steps, t->n_steps)
                if (s->device)
                        (void)manager_refresh_device(ops->manager, s->device);
        /* Blocked members that came back while the group was busy. */
        reapply_block(ops, p->request.group);
        if (ops->tracker) {
                status_tracker_mark(ops->tracker, p->request.group);
                status_tracker_flush(ops->tracker);
        }
        manager_set_cause(ops->manager, saved);

        finish(p, result, message, result >= 0 ? OPERATION_RESULT_DONE : failure_result(t, result));
        free(message);
        transaction_free(t);
}

static int new_transaction(Operations *ops, const char *operation, unsigned group, bool volatile_ok,
                           Transaction **ret) {
        uint64_t id;
        int r;

        r = operation_ids_next(ops->ids, volatile_ok, &id);
        if (r < 0)
                return r;
        *ret = transaction_new(id, operation, group);
        if (!*ret)
                return -ENOMEM;
        (*ret)->step_timeout_usec = ops->step_timeout_usec;
        return 0;
}

/* Before the first step: the record says what is about to happen, so that a crash at any point
 * leaves something reconciliation settles correctly (docs/OPERATIONS.md). */
static int record_intent(Pending *p, char **ret_message) {
        Operations *ops = p->ops;
        int r;

        if (!p->record)
                return 0;
        if (p->owns_record) {
                r = group_records_store(ops->records, p->record, p->id, ret_message);
                if (r >= 0)
                        p->owns_record = false;
        } else
                r = group_records_begin_release(ops->records, p->record, p->id, ret_message);
        /* To a client the daemon's own directory not being writable is a precondition, not a
         * permission it lacks. */
        return r == -EACCES || r == -EPERM ? -EROFS : r;
}

static int start_checked(Operations *ops, const OperationRequest *req, uint64_t start_usec,
                         uint64_t start_realtime, OperationDoneFunc done, void *userdata, char **ret_message) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        const Inventory *inv = manager_get_inventory(ops->manager);
        const Group *g = inventory_find_group(inv, req->group);
        _cleanup_(host_uses_done) HostUses uses = {};
        const FailedGroup *failed;
        GroupRecord *record = NULL, *failed_record;
        Pending *p;
        unsigned *busy;
        int r;

        if (ops->read_only_reason) {
                *ret_message = strdup(ops->read_only_reason);
                return -EROFS;
        }
        /* Who may force is decided here, for every transport. */
        if (req->force && req->role < ROLE_ADMIN) {
                *ret_message = strdup("force requires role admin");
                return -EPERM;
        }
        if (!g) {
                *ret_message = strprintf("no IOMMU group %u", req->group);
                return -ENOENT;
        }
        if (group_busy(ops, g->id)) {
                *ret_message = strprintf("group %u is busy: another operation on it is in progress", g->id);
                return -EBUSY;
        }
        failed = find_failed(ops, g);
        failed_record = group_records_find(ops->records, inv, g);
        if (failed || (failed_record && failed_record->pending != RECORD_SETTLED)) {
                *ret_message = strprintf("group %u is FAILED: %s; once its devices are free, restarting iommud rolls "
                                         "it back from its intent record",
                                         g->id,
                                         failed ? failed->reason : "an interrupted operation could not be rolled back");
                return -EBUSY;
        }

        if (req->kind != OPERATION_UNBLOCK) {
                r = judge_group(ops, inv, g, &uses);
                if (r < 0)
                        return r;
        }
        r = check_guest_use(ops, inv, g, req, &uses, ret_message);
        if (r < 0)
                return r;
        r = check_policy(ops, inv, g, req, ret_message);
        if (r < 0)
                return r;

        r = new_transaction(ops, operation_kind_to_string(req->kind), g->id, false, &t);
        if (r < 0) {
                *ret_message = strprintf("cannot store the next operation id in %s: %s", ops->state_dir,
                                         strerror(-r));
                return r == -EACCES || r == -EPERM ? -EROFS : r;
        }
        switch (req->kind) {
        case OPERATION_SET_DOMAIN_TYPE:
                r = build_set_type(ops, inv, g, req, &uses, t, ret_message);
                break;
        case OPERATION_PREPARE:
                r = build_prepare(ops, inv, g, req, &uses, t, &record, ret_message);
                break;
        case OPERATION_RELEASE:
                r = build_release(ops, inv, g, req, &uses, t, &record, ret_message);
                break;
        case OPERATION_BLOCK:
                r = build_block(ops, inv, g, req, &uses, t, &record, ret_message);
                break;
        case OPERATION_UNBLOCK:
                r = build_unblock(ops, inv, g, t, &record, ret_message);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0) {
                if (req->kind == OPERATION_PREPARE || req->kind == OPERATION_BLOCK)
                        group_record_free(record);
                return r;
        }

        p = calloc(1, sizeof(*p));
        if (!p) {
                if (req->kind == OPERATION_PREPARE || req->kind == OPERATION_BLOCK)
                        group_record_free(record);
                return -ENOMEM;
        }
        p->ops = ops;
        p->request = *req;
        p->request.type = strdup_or_null(req->type);
        p->request.owner = strdup_or_null(req->owner);
        p->request.client = strdup_or_null(req->client);
        p->id = t->id;
        p->record = record;
        p->owns_record = req->kind == OPERATION_PREPARE || req->kind == OPERATION_BLOCK;
        p->done = done;
        p->userdata = userdata;
        p->start_usec = start_usec;
        p->start_realtime_usec = start_realtime;
        p->steps = describe_steps(t);
        if (!p->steps) {
                pending_free(p);
                return -ENOMEM;
        }

        if (req->dry_run || t->n_steps == 0) {
                finish(p, 0, NULL, req->dry_run ? OPERATION_RESULT_DRY_RUN : OPERATION_RESULT_DONE);
                return 0;
        }

        busy = realloc(ops->busy, (ops->n_busy + 1) * sizeof(unsigned));
        if (!busy) {
                pending_free(p);
                return -ENOMEM;
        }
        ops->busy = busy;
        t->journal_dir = strdup(ops->journal_dir);
        t->fault_after_step = ops->fault_after_step;
        t->deadline_usec = ops->timeout_sec > 0 ? transaction_now_usec() + (uint64_t)ops->timeout_sec * 1000000 : 0;
        if (!t->journal_dir) {
                pending_free(p);
                return -ENOMEM;
        }
        r = record_intent(p, ret_message);
        if (r < 0) {
                pending_free(p);
                return r;
        }
        /* The start is on disk before the executor can begin. */
        account_start(ops, &p->request, p->id, p->steps, start_realtime);
        p->started = true;
        r = executor_submit(ops->executor, t, on_transaction_done, p);
        if (r < 0) {
                /* Nothing was done: the record goes back to what it said before. */
                if (p->record && !p->owns_record) {
                        if (req->kind == OPERATION_PREPARE || req->kind == OPERATION_BLOCK)
                                group_records_forget(ops->records, p->record);
                        else
                                group_records_settle(ops->records, p->record);
                        p->record = NULL;
                }
                finish(p, r, "too many operations are waiting; try again later", OPERATION_RESULT_REFUSED);
                return 0;
        }
        TAKE_PTR(t);
        ops->busy[ops->n_busy++] = g->id;
        /* Transitioning, by this operation. */
        publish_status(ops, p->id, &p->request, g->id);
        return 0;
}

int operations_start(Operations *ops, const OperationRequest *req, OperationDoneFunc done, void *userdata,
                     char **ret_message) {
        uint64_t start_usec = transaction_now_usec(), start_realtime = realtime_usec();
        int r;

        *ret_message = NULL;
        r = start_checked(ops, req, start_usec, start_realtime, done, userdata, ret_message);
        if (r < 0) {
                uint64_t id = 0;

                /* A refusal changed nothing: its id need not survive a crash. */
                (void)operation_ids_next(ops->ids, true, &id);
                account_end(ops, req, id, NULL, false, start_usec, start_realtime, OPERATION_RESULT_REFUSED,
                            *ret_message ?: strerror(-r));
        }
        return r;
}

/* A block re-applied on its own: accounted like any operation, asked for by iommud itself. */
typedef struct Reapply {
        Operations *ops;
        OperationRequest request;
        uint64_t start_usec, start_realtime_usec;
        char **steps;
} Reapply;

static void on_reapply_done(Transaction *t, int result, char *message, void *userdata) {
        Reapply *ra = userdata;
        Operations *ops = ra->ops;

        account_end(ops, &ra->request, t->id, ra->steps, true, ra->start_usec, ra->start_realtime_usec,
                    result >= 0 ? OPERATION_RESULT_DONE : failure_result(t, result),
                    result < 0 ? message ?: strerror(-result) : NULL);
        strv_free(ra->steps);
        free(ra);
        busy_remove(ops, t->group);
        if (t->left_failed) {
                const Group *g = inventory_find_group(manager_get_inventory(ops->manager), t->group);

                if (add_failed(ops, g, t->group, message ?: "re-applying its block failed and was not undone") < 0)
                        log_oom();
        }
        FOREACH_ARRAY(s, t->steps, t->n_steps)
                if (s->device)
                        (void)manager_refresh_device(ops->manager, s->device);
        if (result < 0)
                log_error("Re-applying the block of group %u failed: %s", t->group, message ?: strerror(-result));
        else {
                log_info("Block of group %u re-applied.", t->group);
                /* Members that came back while this ran. */
                reapply_block(ops, t->group);
        }
        free(message);
        transaction_free(t);
}

/* A blocked member that is bound, or has lost its "none" override. */
static bool needs_block(const Operations *ops, const Device *d) {
        return group_records_find_blocked_member(ops->records, d) &&
               (d->driver || !d->driver_override || !streq(d->driver_override, NO_DRIVER));
}

/* The kernel forgets driver_override when a device goes away, and binds its native driver as soon
 * as it comes back: the blocked members of a group that reappear are blocked again at once, all in
 * one transaction. */
static void reapply_block(Operations *ops, unsigned group) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_(freep) Reapply *ra = NULL;
        const Inventory *inv = manager_get_inventory(ops->manager);
        const Group *g = inventory_find_group(inv, group);
        unsigned *busy;
        uint64_t id;
        int r = 0;

        if (!g || group_busy(ops, group))
                return; /* busy: looked at again when the operation in flight ends */
        t = transaction_new(0, "BlockGroup (re-applied)", group);
        if (!t) {
                log_oom();
                return;
        }
        for (int pass = 0; r >= 0 && pass < 2; pass++)
                for (char **a = g->devices; r >= 0 && *a; a++) {
                        const Device *d = inventory_find_device(inv, *a);

                        if (!d || !needs_block(ops, d))
                                continue;
                        if (pass == 0)
                                r = transaction_add(t, STEP_SET_OVERRIDE, d->address, NO_DRIVER, d->driver_override);
                        else if (d->driver)
                                r = add_unbind(t, d);
                }
        if (r >= 0 && t->n_steps == 0)
                return;
        if (find_failed(ops, g)) {
                log_warning("Group %u is FAILED; its blocked members are not blocked again until an admin has seen "
                            "to it.",
                            group);
                return;
        }
        /* Its journal is in the runtime directory: a state directory that cannot be written does not
         * stop a block that is recorded already. */
        r = r >= 0 ? operation_ids_next(ops->ids, true, &id) : r;
        if (r >= 0) {
                t->id = id;
                t->step_timeout_usec = ops->step_timeout_usec;
                t->journal_dir = strdup(ops->journal_dir);
                if (!t->journal_dir)
                        r = -ENOMEM;
        }
        ra = r >= 0 ? calloc(1, sizeof(*ra)) : NULL;
        if (ra) {
                ra->ops = ops;
                ra->request = (OperationRequest){ .kind = OPERATION_BLOCK,
                                                  .group = group,
                                                  .client = "iommud (a device of a blocked group came back)",
                                                  .force = true };
                ra->start_usec = transaction_now_usec();
                ra->start_realtime_usec = realtime_usec();
                ra->steps = describe_steps(t);
        }
        busy = ra && ra->steps ? realloc(ops->busy, (ops->n_busy + 1) * sizeof(unsigned)) : NULL;
        if (!busy) {
                if (ra)
                        strv_free(ra->steps);
                log_error_errno(r < 0 ? r : -ENOMEM, "Cannot block group %u again; it stays so until the next "
                                                     "rescan: %m",
                                group);
                return;
        }
        ops->busy = busy;
        FOREACH_ARRAY(s, t->steps, t->n_steps)
                if (s->kind == STEP_SET_OVERRIDE)
                        log_event(LOG_NOTICE,
                                  ((LogFields){ .message_id = LOG_ID_BLOCK_REAPPLIED, LOG_GROUP(group),
                                                .device = s->device, .operation = t->id }),
                                  "%s of blocked group %u came back (driver_override %s): blocking it again.",
                                  s->device, group, s->previous ?: "none set");
        account_start(ops, &ra->request, t->id, ra->steps, ra->start_realtime_usec);
        if (executor_submit(ops->executor, t, on_reapply_done, ra) < 0) {
                log_error("Cannot queue the block of group %u; it stays so until the next rescan.", group);
                account_end(ops, &ra->request, t->id, ra->steps, true, ra->start_usec, ra->start_realtime_usec,
                            OPERATION_RESULT_REFUSED, "too many operations are waiting");
                strv_free(ra->steps);
                return;
        }
        ops->busy[ops->n_busy++] = group;
        TAKE_PTR(t);
        TAKE_PTR(ra);
}

static void on_policy_applied(const ApplyOutcome *outcome, void *userdata);

static void on_manager_event(Manager *m, const ManagerEvent *event, void *userdata) {
        Operations *ops = userdata;
        const InventoryChange *c = event->change;
        const Device *d;

        if (!c)
                return; /* a status change */
        d = c->new_device;

        /* A member of a recorded group came back or changed without iommud: the kernel may have
         * forgotten what iommud set, or other hardware may sit at the address now. Not while an
         * operation of iommud's own is changing the group. */
        if ((c->kind == INVENTORY_DEVICE_ADDED || c->kind == INVENTORY_DEVICE_DRIVER_CHANGED ||
             c->kind == INVENTORY_DEVICE_UPDATED) &&
            d && (d->group < 0 || !group_busy(ops, (unsigned)d->group)))
                (void)group_records_reconcile_address(ops->records, manager_get_inventory(m), d->address);

        /* A device that comes back is published before the group it joins (which may have a new
         * number): its group's events re-apply the block too. */
        if ((c->kind == INVENTORY_DEVICE_ADDED || c->kind == INVENTORY_DEVICE_DRIVER_CHANGED) && d && d->group >= 0 &&
            needs_block(ops, d))
                reapply_block(ops, (unsigned)d->group);
        else if ((c->kind == INVENTORY_GROUP_ADDED || c->kind == INVENTORY_GROUP_UPDATED) && c->new_group)
                reapply_block(ops, c->new_group->id);
        else if (c->kind == INVENTORY_DEVICE_ADDED && d->group >= 0 && ops->policy->n_rules > 0)
                (void)operations_apply_policy(ops, d->group, false, on_policy_applied, NULL, NULL);
}

static void reapply_blocks(Operations *ops) {
        const Inventory *inv = manager_get_inventory(ops->manager);

        FOREACH_ARRAY(g, inv->groups, inv->n_groups)
                reapply_block(ops, g->id);
}

/* ---- policy ------------------------------------------------------------------------------------ */

int operations_reload_policy(Operations *ops) {
        PolicyErrors errors = {};
        Policy *policy = NULL;
        int r;

        r = policy_load_dir(ops->policy_dir, &policy, &errors);
        if (r < 0) {
                FOREACH_ARRAY(e, errors.items, errors.n)
                        if (e->line > 0)
                                log_error("%s:%u: %s", e->file, e->line, e->message);
                        else
                                log_error("%s: %s", e->file, e->message);
                policy_errors_done(&errors);
                return log_error_errno(r, "The policy in %s is refused as a whole: %m", ops->policy_dir);
        }
        policy_errors_done(&errors);
        policy_free(ops->policy);
        ops->policy = policy;
        log_info("Policy: %zu rule%s from %s.", policy->n_rules, policy->n_rules == 1 ? "" : "s", ops->policy_dir);
        return 0;
}

const Policy *operations_get_policy(const Operations *ops) {
        return ops->policy;
}

int operations_plan(const Operations *ops, Plan **ret) {
        return plan_compute(ops->policy, manager_get_inventory(ops->manager), ret);
}

typedef struct ApplyRun {
        Operations *ops;
        ApplyOutcome outcome;
        OperationRequest *requests;
        size_t n_requests, next;
        ApplyDoneFunc done;
        void *userdata;
} ApplyRun;

static void apply_next(ApplyRun *run);

static void apply_run_free(ApplyRun *run) {
        FOREACH_ARRAY(o, run->outcome.outcomes, run->outcome.n_outcomes) {
                free((char *)o->message);
                strv_free(o->steps);
        }
        free(run->outcome.outcomes);
        plan_free(run->outcome.plan);
        free(run->requests);
        free(run);
}

static void record_outcome(ApplyRun *run, const OperationOutcome *outcome) {
        OperationOutcome *copy = array_append(&run->outcome.outcomes, &run->outcome.n_outcomes, sizeof(*copy));
        size_t n = 0;

        if (!copy)
                return;
        *copy = *outcome;
        copy->message = outcome->message ? strdup(outcome->message) : NULL;
        copy->steps = calloc(1, sizeof(char *));
        for (char **s = outcome->steps; copy->steps && s && *s; s++)
                (void)strv_push_dup(&copy->steps, &n, *s);
}

static void on_apply_step_done(const OperationOutcome *outcome, void *userdata) {
        ApplyRun *run = userdata;

        record_outcome(run, outcome);
        apply_next(run);
}

static void apply_next(ApplyRun *run) {
        while (run->next < run->n_requests) {
                OperationRequest *req = &run->requests[run->next++];
                _cleanup_(freep) char *message = NULL;
                int r;

                r = operations_start(run->ops, req, on_apply_step_done, run, &message);
                if (r >= 0)
                        return; /* continues in on_apply_step_done */
                record_outcome(run, &(OperationOutcome){ .group = req->group, .error = r, .message = message });
        }
        run->done(&run->outcome, run->userdata);
        apply_run_free(run);
}

int operations_apply_policy(Operations *ops, int group, bool dry_run, ApplyDoneFunc done, void *userdata,
                            char **ret_message) {
        ApplyRun *run;
        int r;

        if (!dry_run && ops->read_only_reason) {
                if (ret_message)
                        *ret_message = strdup(ops->read_only_reason);
                return -EROFS;
        }

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->ops = ops;
        run->done = done ?: on_policy_applied;
        run->userdata = userdata;
        r = operations_plan(ops, &run->outcome.plan);
        if (r < 0) {
                free(run);
                return r;
        }

        /* One operation per step the kernel allows; blocked steps stay in the plan with their reason. */
        FOREACH_ARRAY(pg, run->outcome.plan->groups, run->outcome.plan->n_groups) {
                if (group >= 0 && pg->id != (unsigned)group)
                        continue;
                FOREACH_ARRAY(step, pg->steps, pg->n_steps) {
                        OperationRequest *req;

                        if (dry_run || step->blocked || step->kind == PLAN_STEP_NONE)
                                continue;
                        req = array_append(&run->requests, &run->n_requests, sizeof(*req));
                        if (!req) {
                                apply_run_free(run);
                                return -ENOMEM;
                        }
                        req->group = pg->id;
                        req->client = "policy";
                        if (step->kind == PLAN_STEP_SET_TYPE) {
                                req->kind = OPERATION_SET_DOMAIN_TYPE;
                                req->type = step->argument;
                        } else {
                                req->kind = OPERATION_PREPARE;
                                req->owner = "policy";
                        }
                }
        }
        apply_next(run);
        return 0;
}

static void on_policy_applied(const ApplyOutcome *outcome, void *userdata) {
        size_t failed = 0;

        FOREACH_ARRAY(o, outcome->outcomes, outcome->n_outcomes)
                if (o->error < 0)
                        failed++;
        if (outcome->n_outcomes > 0)
                log_info("Policy applied: %zu operation%s, %zu failed.", outcome->n_outcomes,
                         outcome->n_outcomes == 1 ? "" : "s", failed);
}

static int mkdir_parents(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(copy, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Whether iommud can keep its records in dir: created when missing, then a file written durably and
 * removed, as every record will be. */
static int check_writable(const char *dir) {
        _cleanup_(freep) char *probe = strprintf("%s/.iommud-write-test", dir);
        int r;

        if (!probe)
                return -ENOMEM;
        r = mkdir_parents(dir);
        if (r >= 0)
                r = write_file_durable(probe, "");
        if (r >= 0)
                r = unlink_durable(probe);
        return r;
}

/* What cannot be written makes iommud refuse every change: a change it could not record might be
 * lost to a restart, or left undone by a crash. Reads go on. */
static int check_directories(Operations *ops) {
        const struct {
                const char *what, *path;
        } dirs[] = {
                { "state directory", ops->state_dir },
                { "state directory", ops->records_dir },
                { "runtime directory", ops->journal_dir },
        };

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                int r = check_writable(dirs[i].path);

                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        ops->read_only_reason = strprintf("%s %s is not writable: %s; iommud serves reads only",
                                                          dirs[i].what, dirs[i].path, strerror(-r));
                        if (!ops->read_only_reason)
                                return -ENOMEM;
                        log_error("The %s; every change of the host is refused until it is fixed and iommud "
                                  "restarted.",
                                  ops->read_only_reason);
                        return 0;
                }
        }
        return 0;
}

/* A record the last run left in the journal: what became of it decides the group's state (FAILED
 * when its rollback failed) and closes its history entry. */
static void on_recovered(const RecoveredRecord *rec, void *userdata) {
        Operations *ops = userdata;
        const Group *g = rec->group >= 0 ? inventory_find_group(manager_get_inventory(ops->manager), (unsigned)rec->group)
                                         : NULL;
        Recovered *slot = array_append(&ops->recovered, &ops->n_recovered, sizeof(Recovered));
        OperationResult result = rec->result < 0 ? OPERATION_RESULT_CRASH_KEPT : OPERATION_RESULT_CRASH_ROLLED_BACK;
        const char *message = rec->result < 0 ? rec->message : "the daemon stopped during this operation; what it had "
                                                               "done was undone at the next start";
        _cleanup_(freep) char *reason = NULL;
        size_t n;
        const uint64_t *unfinished = history_unfinished(ops->history, &n);
        bool known = false;
        int r;

        for (size_t i = 0; i < n; i++)
                known = known || unfinished[i] == rec->id;
        if (known)
                r = history_finish(ops->history, rec->id, result, message, 0);
        else {
                /* The history lost its start (rotated, or the state directory was new): keep what the
                 * record tells. */
                HistoryEntry e = {
                        .id = rec->id,
                        .operation = (char *)rec->operation,
                        .group = rec->group >= 0 ? (unsigned)rec->group : 0,
                        .peer = (char *)"?",
                        .started_usec = realtime_usec(),
                        .result = result,
                        .message = (char *)message,
                };

                r = history_add(ops->history, &e);
        }
        if (r < 0)
                log_warning("The recovery of operation %llu is not in the history.", (unsigned long long)rec->id);
        log_event(rec->result < 0 ? LOG_ERR : LOG_NOTICE,
                  ((LogFields){ .message_id = LOG_ID_OPERATION_RECOVERED, .has_group = rec->group >= 0,
                                .group = rec->group >= 0 ? (unsigned)rec->group : 0, .operation = rec->id }),
                  "Operation %llu (%s on group %d) was interrupted by the daemon's end: %s.",
                  (unsigned long long)rec->id, rec->operation ?: "?", rec->group,
                  rec->result < 0 ? "rolling it back failed, its record stays for an admin" : "rolled back");

        if (slot)
                *slot = (Recovered){ .id = rec->id, .rolled_back = rec->result >= 0 };
        if (rec->result >= 0 || rec->group < 0)
                return;
        reason = strprintf("operation %" PRIu64 " (%s) was interrupted, and rolling it back at start failed: %s",
                           rec->id, rec->operation ?: "?", rec->message ?: strerror(-rec->result));
        if (!reason || add_failed(ops, g, (unsigned)rec->group, reason) < 0)
                log_oom();
}

/* Started, never ended, and no intent record left: the run died before the record was written,
 * after it was removed, or the record went with a reboot (it lives in /run). */
static void close_interrupted(Operations *ops) {
        size_t n;

        while (history_unfinished(ops->history, &n), n > 0) {
                uint64_t id = history_unfinished(ops->history, &n)[0];

                log_event(LOG_WARNING, ((LogFields){ .message_id = LOG_ID_OPERATION_INTERRUPTED, .operation = id }),
                          "Operation %llu was interrupted by the daemon's end and left no intent record.",
                          (unsigned long long)id);
                if (history_finish(ops->history, id, OPERATION_RESULT_INTERRUPTED,
                                   "the daemon stopped during this operation and left no intent record: it had not "
                                   "changed the host yet, had finished, or the record was lost with a reboot",
                                   0) < 0)
                        break;
        }
}

static JournalFate journal_fate(uint64_t operation, void *userdata) {
        Operations *ops = userdata;

        FOREACH_ARRAY(r, ops->recovered, ops->n_recovered)
                if (r->id == operation)
                        return r->rolled_back ? JOURNAL_ROLLED_BACK : JOURNAL_KEPT;
        return JOURNAL_ABSENT;
}

int operations_new(struct event_base *base, Manager *manager, const OperationsOptions *options, Operations **ret) {
        _cleanup_(operations_freep) Operations *ops = NULL;
        _cleanup_(freep) char *ids_file = NULL;
        int r;

        ops = calloc(1, sizeof(*ops));
        if (!ops)
                return log_oom();
        ops->manager = manager;
        for (int k = 0; k < _OPERATION_KIND_MAX; k++)
                histogram_init(&ops->stats.duration[k], histogram_seconds_bounds, histogram_seconds_n_bounds);
        ops->timeout_sec = options->timeout_sec;
        ops->step_timeout_usec = (uint64_t)options->kernel_write_timeout_sec * 1000000;
        ops->fault_after_step = options->fault_after_step;
        ops->journal_dir = strdup(options->journal_dir);
        ops->state_dir = strdup(options->state_dir);
        ops->records_dir = strprintf("%s/groups", options->state_dir);
        ops->policy_dir = strdup(options->policy_dir);
        ids_file = strprintf("%s/operation-id", options->state_dir);
        if (!ops->journal_dir || !ops->state_dir || !ops->records_dir || !ops->policy_dir || !ids_file)
                return log_oom();

        /* A policy with errors stops the start, as a bad config does: running without the rules
         * that mark the host's own devices critical would be worse than not running. */
        r = operations_reload_policy(ops);
        if (r < 0)
                return r;

        r = check_directories(ops);
        if (r < 0)
                return log_oom();
        r = host_read_boot_id(manager_get_roots(manager), &ops->boot_id);
        if (r < 0)
                log_warning_errno(r, "Cannot read the boot id; records are judged by their overrides alone: %m");

        r = history_open(options->state_dir, options->history_lines, &ops->history);
        if (r < 0)
                return log_error_errno(r, "Cannot open the operation history in %s: %m", options->state_dir);
        /* Before anyone is served: undo what a crash left half done. */
        r = transaction_recover(ops->journal_dir, manager_get_roots(manager), ops->step_timeout_usec, on_recovered,
                                ops);
        if (r < 0)
                log_error("Some interrupted operations could not be rolled back; their records stay in %s.",
                          ops->journal_dir);
        else if (r > 0)
                log_notice("Rolled back %d interrupted operation%s.", r, r == 1 ? "" : "s");
        if (ops->n_recovered > 0)
                (void)manager_rescan(manager, NULL);
        close_interrupted(ops);

        /* After the journal: ids above every record it keeps, and above every operation in the
         * history, so that neither ever names two operations with one id. */
        r = operation_ids_open(ids_file, ops->journal_dir, &ops->ids);
        if (r < 0)
                return log_oom();
        operation_ids_at_least(ops->ids, history_max_id(ops->history) + 1);

        r = group_records_open(ops->records_dir, ops->boot_id, &ops->records);
        if (r < 0)
                return log_oom();
        /* The host may have moved on without iommud (a reboot, an unplug): records that no longer
         * describe it are reported, and never acted on. */
        group_records_reconcile_all(ops->records, manager_get_inventory(manager), journal_fate, ops);
        free(ops->recovered);
        ops->recovered = NULL;
        ops->n_recovered = 0;

        r = executor_new(base, manager_get_roots(manager), &ops->executor);
        if (r < 0)
                return log_error_errno(r, "Cannot start the operation executor: %m");
        executor_set_max_queued(ops->executor, options->max_queued);

        r = status_tracker_new(ops, manager, base, &ops->tracker);
        if (r < 0)
                return log_error_errno(r, "Cannot judge the groups' statuses: %m");

        /* Blocks persist: after a reboot the devices came up on their native drivers. */
        reapply_blocks(ops);
        r = manager_subscribe_internal(manager, on_manager_event, ops, &ops->subscription);
        if (r < 0)
                return log_error_errno(r, "Cannot follow hot-plug events: %m");

        if (ops->policy->n_rules > 0 && !ops->read_only_reason) {
                r = operations_apply_policy(ops, -1, false, on_policy_applied, NULL, NULL);
                if (r < 0)
                        log_error_errno(r, "Cannot apply the policy at start: %m");
        }

        *ret = TAKE_PTR(ops);
        return 0;
}

Operations *operations_free(Operations *ops) {
        if (!ops)
                return NULL;
        manager_subscription_free(ops->subscription);
        ops->tracker = status_tracker_free(ops->tracker);
        /* Queued operations end here, cancelled: their ends still go to the history. */
        executor_free(ops->executor);
        history_free(ops->history);
        group_records_free(ops->records);
        operation_ids_free(ops->ids);
        FOREACH_ARRAY(f, ops->failed, ops->n_failed) {
                free(f->first_device);
                free(f->reason);
        }
        free(ops->failed);
        free(ops->recovered);
        free(ops->boot_id);
        free(ops->read_only_reason);
        free(ops->busy);
        free(ops->journal_dir);
        free(ops->state_dir);
        free(ops->records_dir);
        free(ops->policy_dir);
        policy_free(ops->policy);
        free(ops);
        return NULL;
}
