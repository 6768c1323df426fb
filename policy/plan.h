/* The planner: from the rules and an inventory, each group's desired state, the steps to reach it
 * and the rule behind each step; conflicting rules are reported, never resolved by guessing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

typedef struct Inventory Inventory;
typedef struct json_object json_object;

typedef enum PlanStepKind {
        PLAN_STEP_NONE,     /* nothing to do; the reason says why */
        PLAN_STEP_SET_TYPE, /* write the group's default domain type */
        PLAN_STEP_PREPARE,  /* bind the whole group to a VFIO driver */
        _PLAN_STEP_KIND_MAX,
} PlanStepKind;

/* "none", "set-type", "prepare" */
const char *plan_step_kind_to_string(PlanStepKind k);

typedef struct PlanStep {
        PlanStepKind kind;
        char *argument; /* set-type: the type ("identity", …, "auto"); prepare: the driver; none: NULL */
        /* "0000:01:00.0 matches /etc/iommud/policy.d/10-gpus.conf:2 (Vendor=10de) -> DomainType=identity
         * (line 5)", plus what makes the step necessary or unnecessary. */
        char *reason;
        bool blocked;         /* the kernel refuses the step now */
        char *blocked_reason; /* the kernel's reason (TypeChangeRules.reason), when blocked */
} PlanStep;

/* Where one of a group's settings comes from: a member and the rule line that set it. */
typedef struct PlanOrigin {
        PolicyAction action;
        char *device;  /* the member the rule matched */
        char *file;    /* the rule's file */
        unsigned line; /* the line of the setting */
        char *setting; /* "DomainType=identity" */
} PlanOrigin;

typedef struct PlanConflict {
        unsigned group;
        /* "group 12: rules disagree on DomainType=: 0000:01:00.0 DomainType=identity (a.conf:5),
         * 0000:01:00.1 DomainType=DMA (b.conf:4)", or "group 12: Critical=yes conflicts with
         * BindAtBoot=: …" */
        char *message;
        PlanOrigin *origins; /* every setting involved */
        size_t n_origins;
} PlanConflict;

typedef struct PlanGroup {
        unsigned id;

        /* The desired state, merged over the members; unset where no rule says anything. */
        const char *domain_type; /* "identity", "DMA", "DMA-FQ" or "auto"; NULL: leave the type alone */
        Passthrough passthrough; /* see passthrough_refusal */
        char *bind_at_boot;      /* the VFIO driver to bind the group to at boot, or NULL */
        bool critical;           /* never touched: no steps */
        PlanOrigin origins[_POLICY_ACTION_MAX]; /* who set each of the above; device NULL: unset */

        /* Non-NULL when preparing the group for VFIO must be refused, saying why: Passthrough=deny,
         * Critical=yes, or rules that disagree on either (refusing is the safe side of a conflict). */
        char *passthrough_refusal;

        bool conflict;   /* rules disagree (see Plan.conflicts): the group gets no steps */
        PlanStep *steps; /* in order; none for conflicting and critical groups */
        size_t n_steps;
} PlanGroup;

typedef struct Plan {
        PlanGroup *groups; /* one per inventory group, by id */
        size_t n_groups;
        PlanConflict *conflicts;
        size_t n_conflicts;
} Plan;

/* Computes the plan; it copies what it needs, so p and inv may go away afterwards. -ENOMEM. */
int plan_compute(const Policy *p, const Inventory *inv, Plan **ret);
Plan *plan_free(Plan *plan);
static inline void plan_freep(Plan **plan) {
        plan_free(*plan);
}

const PlanGroup *plan_find_group(const Plan *plan, unsigned id);

json_object *plan_to_json(const Plan *plan);
