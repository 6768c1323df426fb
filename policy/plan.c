/* The planner: merges the rules that match a group's members, reports disagreement as a conflict,
 * and turns the agreed settings into steps the kernel permits (or blocked steps saying why not). */
#include "plan.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "json-util.h"
#include "macro.h"
#include "match.h"
#include "string-util.h"
#include "strv.h"

/* A rule that matched a member and sets a given action. */
typedef struct Candidate {
        const Device *device;
        const Rule *rule;
} Candidate;

typedef struct Candidates {
        Candidate *items;
        size_t n;
} Candidates;

static const char *const step_kind_names[_PLAN_STEP_KIND_MAX] = {
        [PLAN_STEP_NONE] = "none",
        [PLAN_STEP_SET_TYPE] = "set-type",
        [PLAN_STEP_PREPARE] = "prepare",
};

const char *plan_step_kind_to_string(PlanStepKind k) {
        return k >= 0 && k < _PLAN_STEP_KIND_MAX ? step_kind_names[k] : NULL;
}

static void origin_done(PlanOrigin *o) {
        free(o->device);
        free(o->file);
        free(o->setting);
        *o = (PlanOrigin){};
}

static void step_done(PlanStep *s) {
        free(s->argument);
        free(s->reason);
        free(s->blocked_reason);
}

static void plan_group_done(PlanGroup *g) {
        free(g->bind_at_boot);
        for (size_t i = 0; i < _POLICY_ACTION_MAX; i++)
                origin_done(&g->origins[i]);
        free(g->passthrough_refusal);
        FOREACH_ARRAY(s, g->steps, g->n_steps)
                step_done(s);
        free(g->steps);
}

static void conflict_done(PlanConflict *c) {
        free(c->message);
        FOREACH_ARRAY(o, c->origins, c->n_origins)
                origin_done(o);
        free(c->origins);
}

Plan *plan_free(Plan *plan) {
        if (!plan)
                return NULL;
        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                plan_group_done(g);
        free(plan->groups);
        FOREACH_ARRAY(c, plan->conflicts, plan->n_conflicts)
                conflict_done(c);
        free(plan->conflicts);
        free(plan);
        return NULL;
}

const PlanGroup *plan_find_group(const Plan *plan, unsigned id) {
        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                if (g->id == id)
                        return g;
        return NULL;
}

static const char *value_of(const Candidate *c, PolicyAction a) {
        return c->rule->action[a].value;
}

static int origin_init(PlanOrigin *o, const Candidate *c, PolicyAction a) {
        *o = (PlanOrigin){
                .action = a,
                .device = strdup(c->device->address),
                .file = strdup(c->rule->file),
                .line = c->rule->action[a].line,
                .setting = strprintf("%s=%s", policy_action_to_string(a), value_of(c, a)),
        };
        if (!o->device || !o->file || !o->setting) {
                origin_done(o);
                return -ENOMEM;
        }
        return 0;
}

/* "0000:01:00.0 matches /etc/iommud/policy.d/10-gpus.conf:2 (Vendor=10de) -> DomainType=identity
 * (line 5)": the member, the rule's [Match] and the setting with its line. */
static char *reason_of(const Candidate *c, PolicyAction a) {
        _cleanup_(freep) char *match = rule_match_to_string(c->rule);

        if (!match)
                return NULL;
        return strprintf("%s matches %s:%u (%s) -> %s=%s (line %u)", c->device->address, c->rule->file,
                         c->rule->line, match, policy_action_to_string(a), value_of(c, a),
                         c->rule->action[a].line);
}

/* Every rule setting of every member, per action, in member then rule order. */
static int collect(const Policy *p, const Inventory *inv, const Group *g,
                   Candidates c[static _POLICY_ACTION_MAX]) {
        for (char **address = g->devices; address && *address; address++) {
                const Device *d = inventory_find_device(inv, *address);

                if (!d)
                        continue;
                FOREACH_ARRAY(r, p->rules, p->n_rules) {
                        if (!rule_matches_device(r, d))
                                continue;
                        for (PolicyAction a = 0; a < _POLICY_ACTION_MAX; a++) {
                                Candidate *slot;

                                if (r->action[a].line == 0)
                                        continue;
                                slot = array_append(&c[a].items, &c[a].n, sizeof(Candidate));
                                if (!slot)
                                        return -ENOMEM;
                                *slot = (Candidate){ .device = d, .rule = r };
                        }
                }
        }
        return 0;
}

/* One setting involved in a conflict. */
typedef struct Party {
        const Candidate *candidate;
        PolicyAction action;
} Party;

typedef struct Parties {
        Party *items;
        size_t n;
} Parties;

static void parties_done(Parties *parties) {
        free(parties->items);
}

static int parties_add(Parties *parties, const Candidates *c, PolicyAction a, const char *only_value) {
        FOREACH_ARRAY(i, c->items, c->n) {
                Party *slot;

                if (only_value && strcmp(value_of(i, a), only_value) != 0)
                        continue;
                slot = array_append(&parties->items, &parties->n, sizeof(Party));
                if (!slot)
                        return -ENOMEM;
                *slot = (Party){ .candidate = i, .action = a };
        }
        return 0;
}

static int add_conflict(Plan *plan, PlanGroup *pg, const char *what, const Parties *parties) {
        _cleanup_(freep) char *message = strprintf("group %u: %s:", pg->id, what);
        PlanConflict *c;

        pg->conflict = true;
        c = array_append(&plan->conflicts, &plan->n_conflicts, sizeof(PlanConflict));
        if (!c)
                return -ENOMEM;
        c->group = pg->id;

        FOREACH_ARRAY(party, parties->items, parties->n) {
                PlanOrigin *o = array_append(&c->origins, &c->n_origins, sizeof(PlanOrigin));
                char *m;

                if (!o || !message || origin_init(o, party->candidate, party->action) < 0)
                        return -ENOMEM;
                m = strprintf("%s%s %s %s (%s:%u)", message, party == parties->items ? "" : ",", o->device,
                              o->setting, o->file, o->line);
                free(message);
                message = m;
        }
        if (!message)
                return -ENOMEM;
        c->message = TAKE_PTR(message);
        return 0;
}

/* Two settings that cannot both hold for one group; the parties are only the rules that set them. */
static int check_exclusive(Plan *plan, PlanGroup *pg, const Candidates c[static _POLICY_ACTION_MAX],
                           PolicyAction a, const char *a_value, PolicyAction b, const char *b_value) {
        _cleanup_(parties_done) Parties parties = {};
        _cleanup_(freep) char *what = NULL;
        int r;

        /* Only agreed settings: a disagreement within one action is already a conflict of its own. */
        if (!pg->origins[a].device || !pg->origins[b].device)
                return 0;
        if (strcmp(value_of(&c[a].items[0], a), a_value) != 0 ||
            (b_value && strcmp(value_of(&c[b].items[0], b), b_value) != 0))
                return 0;

        r = parties_add(&parties, &c[a], a, a_value);
        if (r >= 0)
                r = parties_add(&parties, &c[b], b, b_value);
        if (r < 0)
                return r;
        what = strprintf("%s=%s conflicts with %s=%s", policy_action_to_string(a), a_value,
                         policy_action_to_string(b), b_value ?: "");
        if (!what)
                return -ENOMEM;
        return add_conflict(plan, pg, what, &parties);
}

/* Merges one action over the members: the agreed value, or a conflict. */
static int merge(Plan *plan, PlanGroup *pg, const Candidates *c, PolicyAction a) {
        int r;

        if (c->n == 0)
                return 0;
        FOREACH_ARRAY(i, c->items, c->n)
                if (strcmp(value_of(i, a), value_of(&c->items[0], a)) != 0) {
                        _cleanup_(parties_done) Parties parties = {};
                        _cleanup_(freep) char *what =
                                strprintf("rules disagree on %s=", policy_action_to_string(a));

                        if (!what || parties_add(&parties, c, a, NULL) < 0)
                                return -ENOMEM;
                        return add_conflict(plan, pg, what, &parties);
                }

        r = origin_init(&pg->origins[a], &c->items[0], a);
        if (r < 0)
                return r;
        switch (a) {
        case POLICY_DOMAIN_TYPE:
                pg->domain_type = c->items[0].rule->domain_type;
                break;
        case POLICY_PASSTHROUGH:
                pg->passthrough = c->items[0].rule->passthrough;
                break;
        case POLICY_BIND_AT_BOOT:
                pg->bind_at_boot = strdup(c->items[0].rule->bind_at_boot);
                if (!pg->bind_at_boot)
                        return -ENOMEM;
                break;
        case POLICY_CRITICAL:
                pg->critical = c->items[0].rule->critical;
                break;
        case _POLICY_ACTION_MAX:
                break;
        }
        return 0;
}

/* Takes ownership of note. */
static int note_add(char ***notes, size_t *n_notes, char *note) {
        if (!note || strv_push(notes, n_notes, note) < 0) {
                free(note);
                return -ENOMEM;
        }
        return 0;
}

static PlanStep *step_add(PlanGroup *pg, PlanStepKind kind, const char *argument, char *reason) {
        PlanStep *s = reason ? array_append(&pg->steps, &pg->n_steps, sizeof(PlanStep)) : NULL;

        if (!s) {
                free(reason);
                return NULL;
        }
        s->kind = kind;
        s->reason = reason;
        if (argument) {
                s->argument = strdup(argument);
                if (!s->argument)
                        return NULL;
        }
        return s;
}

static int plan_set_type(PlanGroup *pg, const Inventory *inv, const Group *g, const Candidate *c,
                         char ***notes, size_t *n_notes) {
        _cleanup_(freep) char *reason = reason_of(c, POLICY_DOMAIN_TYPE);
        const char *current = g->type_raw ?: "an unreadable type";
        DomainType want;
        const TypeRefusal *refusal;
        PlanStep *s;

        if (!reason)
                return -ENOMEM;

        if (strcmp(pg->domain_type, "auto") == 0) {
                /* "auto" is the kernel's default (KERNEL.md §1.5). We know it only when the command line
                 * decides it, and changing a group on a guess would unbind its drivers for nothing. */
                want = inv->host.cmdline_default_type;
                if (want == DOMAIN_TYPE_UNKNOWN)
                        return note_add(notes, n_notes,
                                        strprintf("%s; the kernel's default type is not known from its "
                                                  "command line, so group %u keeps %s",
                                                  reason, g->id, current));
        } else
                want = domain_type_from_string(pg->domain_type);

        if (g->type == want)
                return note_add(notes, n_notes,
                                strprintf("%s; group %u already has %s", reason, g->id, current));

        s = step_add(pg, PLAN_STEP_SET_TYPE, pg->domain_type,
                     strprintf("%s; group %u has %s", reason, g->id, current));
        if (!s)
                return -ENOMEM;
        /* Judged the way SetDomainType performs it: drivers in the way are unbound around the write
         * and bound again, so only what the kernel refuses whatever is bound blocks the step. */
        refusal = type_change_refusal(&g->type_change, pg->domain_type);
        if (!g->type_change.writable || refusal) {
                s->blocked = true;
                s->blocked_reason =
                        refusal && refusal->reason ? strdup(refusal->reason)
                        : g->type_change.reason    ? strdup(g->type_change.reason)
                                                   : strprintf("the kernel does not allow writing %s to group %u",
                                                               pg->domain_type, g->id);
                if (!s->blocked_reason)
                        return -ENOMEM;
        } else if (!strv_contains(g->type_change.allowed, pg->domain_type)) {
                char *more = strprintf("%s; iommud unbinds the members' drivers around the write and binds them "
                                       "again (%s)",
                                       s->reason, g->type_change.reason ?: "the kernel takes it only so");

                if (!more)
                        return -ENOMEM;
                free(s->reason);
                s->reason = more;
        }
        return 0;
}

static int plan_prepare(PlanGroup *pg, const Inventory *inv, const Group *g, const Candidate *c,
                        char ***notes, size_t *n_notes) {
        _cleanup_(freep) char *reason = reason_of(c, POLICY_BIND_AT_BOOT);

        if (!reason)
                return -ENOMEM;

        /* Bridges may keep pcieport (or no driver): VFIO does not need them (KERNEL.md §4.6). */
        for (char **address = g->devices; address && *address; address++) {
                const Device *d = inventory_find_device(inv, *address);

                if (!d || d->header_type > 0 || d->vfio_bound)
                        continue;
                return step_add(pg, PLAN_STEP_PREPARE, pg->bind_at_boot,
                                d->driver ? strprintf("%s; %s is bound to %s", reason, d->address, d->driver)
                                          : strprintf("%s; %s has no driver", reason, d->address))
                               ? 0
                               : -ENOMEM;
        }

        return note_add(notes, n_notes,
                        strprintf("%s; every member of group %u is bound to a VFIO driver", reason, g->id));
}

/* The conflict in group id that involves action a, if any. */
static const PlanConflict *find_conflict(const Plan *plan, unsigned id, PolicyAction a) {
        FOREACH_ARRAY(c, plan->conflicts, plan->n_conflicts)
                if (c->group == id)
                        FOREACH_ARRAY(o, c->origins, c->n_origins)
                                if (o->action == a)
                                        return c;
        return NULL;
}

/* Told to refuse, or told both ways: refusing is the safe side of a conflict. */
static int plan_refusal(const Plan *plan, const Candidates c[static _POLICY_ACTION_MAX], PlanGroup *pg) {
        const PlanConflict *conflict;

        if (pg->critical)
                pg->passthrough_refusal = reason_of(&c[POLICY_CRITICAL].items[0], POLICY_CRITICAL);
        else if (pg->passthrough == PASSTHROUGH_DENY)
                pg->passthrough_refusal = reason_of(&c[POLICY_PASSTHROUGH].items[0], POLICY_PASSTHROUGH);
        else if ((conflict = find_conflict(plan, pg->id, POLICY_CRITICAL)) ||
                 (conflict = find_conflict(plan, pg->id, POLICY_PASSTHROUGH)))
                pg->passthrough_refusal = strdup(conflict->message);
        else
                return 0;
        return pg->passthrough_refusal ? 0 : -ENOMEM;
}

static int plan_group(Plan *plan, const Policy *p, const Inventory *inv, const Group *g, PlanGroup *pg) {
        Candidates c[_POLICY_ACTION_MAX] = {};
        _cleanup_(strv_freep) char **notes = NULL;
        size_t n_notes = 0;
        bool matched = false;
        int r;

        pg->id = g->id;

        r = collect(p, inv, g, c);
        for (PolicyAction a = 0; r >= 0 && a < _POLICY_ACTION_MAX; a++) {
                matched = matched || c[a].n > 0;
                r = merge(plan, pg, &c[a], a);
        }
        if (r >= 0)
                r = check_exclusive(plan, pg, c, POLICY_CRITICAL, "yes", POLICY_DOMAIN_TYPE, NULL);
        if (r >= 0)
                r = check_exclusive(plan, pg, c, POLICY_CRITICAL, "yes", POLICY_BIND_AT_BOOT, NULL);
        if (r >= 0)
                r = check_exclusive(plan, pg, c, POLICY_CRITICAL, "yes", POLICY_PASSTHROUGH, "allow");
        if (r >= 0)
                r = check_exclusive(plan, pg, c, POLICY_PASSTHROUGH, "deny", POLICY_BIND_AT_BOOT, NULL);
        if (r >= 0)
                r = plan_refusal(plan, c, pg);
        if (r < 0 || pg->critical || pg->conflict)
                goto finish;

        if (pg->domain_type)
                r = plan_set_type(pg, inv, g, &c[POLICY_DOMAIN_TYPE].items[0], &notes, &n_notes);
        if (r >= 0 && pg->bind_at_boot)
                r = plan_prepare(pg, inv, g, &c[POLICY_BIND_AT_BOOT].items[0], &notes, &n_notes);
        /* Settings that need no step still explain a "none" step. */
        if (r >= 0 && pg->origins[POLICY_PASSTHROUGH].device)
                r = note_add(&notes, &n_notes,
                             reason_of(&c[POLICY_PASSTHROUGH].items[0], POLICY_PASSTHROUGH));
        if (r >= 0 && pg->origins[POLICY_CRITICAL].device)
                r = note_add(&notes, &n_notes, reason_of(&c[POLICY_CRITICAL].items[0], POLICY_CRITICAL));
        if (r >= 0 && pg->n_steps == 0) {
                char *reason;

                if (!matched)
                        reason = strprintf("no rule matches a member of group %u", g->id);
                else {
                        /* The notes joined: why each setting needs nothing done. */
                        reason = strdup(notes[0]);
                        for (size_t i = 1; reason && i < n_notes; i++) {
                                char *t = strprintf("%s; %s", reason, notes[i]);

                                free(reason);
                                reason = t;
                        }
                }
                if (!step_add(pg, PLAN_STEP_NONE, NULL, reason))
                        r = -ENOMEM;
        }

finish:
        for (size_t a = 0; a < _POLICY_ACTION_MAX; a++)
                free(c[a].items);
        return r;
}

int plan_compute(const Policy *p, const Inventory *inv, Plan **ret) {
        _cleanup_(plan_freep) Plan *plan = calloc(1, sizeof(Plan));
        int r;

        if (!plan)
                return -ENOMEM;
        plan->groups = calloc(inv->n_groups ?: 1, sizeof(PlanGroup));
        if (!plan->groups)
                return -ENOMEM;

        for (size_t i = 0; i < inv->n_groups; i++) {
                plan->n_groups++;
                r = plan_group(plan, p, inv, &inv->groups[i], &plan->groups[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(plan);
        return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

static json_object *origin_to_json(const PlanOrigin *o) {
        json_object *j = json_object_new_object();

        json_object_object_add(j, "setting", json_object_new_string(o->setting));
        json_object_object_add(j, "device", json_object_new_string(o->device));
        json_object_object_add(j, "file", json_object_new_string(o->file));
        json_object_object_add(j, "line", json_object_new_int64(o->line));
        return j;
}

static json_object *step_to_json(const PlanStep *s) {
        json_object *j = json_object_new_object();

        json_object_object_add(j, "step", json_object_new_string(plan_step_kind_to_string(s->kind)));
        json_object_object_add(j, "argument", json_string_or_null(s->argument));
        json_object_object_add(j, "reason", json_object_new_string(s->reason));
        json_object_object_add(j, "blocked", json_object_new_boolean(s->blocked));
        json_object_object_add(j, "blocked_reason", json_string_or_null(s->blocked_reason));
        return j;
}

static json_object *plan_group_to_json(const PlanGroup *g) {
        static const char *const passthrough[] = {
                [PASSTHROUGH_UNSET] = NULL,
                [PASSTHROUGH_ALLOW] = "allow",
                [PASSTHROUGH_DENY] = "deny",
        };
        json_object *j = json_object_new_object(), *origins = json_object_new_array(),
                    *steps = json_object_new_array();

        json_object_object_add(j, "group", json_object_new_int64(g->id));
        json_object_object_add(j, "domain_type", json_string_or_null(g->domain_type));
        json_object_object_add(j, "passthrough", json_string_or_null(passthrough[g->passthrough]));
        json_object_object_add(j, "bind_at_boot", json_string_or_null(g->bind_at_boot));
        json_object_object_add(j, "critical", json_object_new_boolean(g->critical));
        json_object_object_add(j, "passthrough_refusal", json_string_or_null(g->passthrough_refusal));
        json_object_object_add(j, "conflict", json_object_new_boolean(g->conflict));
        for (size_t a = 0; a < _POLICY_ACTION_MAX; a++)
                if (g->origins[a].device)
                        json_object_array_add(origins, origin_to_json(&g->origins[a]));
        json_object_object_add(j, "origins", origins);
        FOREACH_ARRAY(s, g->steps, g->n_steps)
                json_object_array_add(steps, step_to_json(s));
        json_object_object_add(j, "steps", steps);
        return j;
}

json_object *plan_to_json(const Plan *plan) {
        json_object *j = json_object_new_object(), *groups = json_object_new_array(),
                    *conflicts = json_object_new_array();

        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                json_object_array_add(groups, plan_group_to_json(g));
        FOREACH_ARRAY(c, plan->conflicts, plan->n_conflicts) {
                json_object *o = json_object_new_object(), *origins = json_object_new_array();

                json_object_object_add(o, "group", json_object_new_int64(c->group));
                json_object_object_add(o, "message", json_object_new_string(c->message));
                FOREACH_ARRAY(origin, c->origins, c->n_origins)
                        json_object_array_add(origins, origin_to_json(origin));
                json_object_object_add(o, "origins", origins);
                json_object_array_add(conflicts, o);
        }
        json_object_object_add(j, "groups", groups);
        json_object_object_add(j, "conflicts", conflicts);
        return j;
}
