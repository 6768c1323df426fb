/* A group's status as iommud knows it beyond the kernel's files, computed once, here, for every
 * transport: state, owner, users, host uses, viability, the type-change verdicts judged the way
 * SetDomainType would perform them, findings, and whether the kernel shows it empty. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group-state.h"
#include "host-use.h"
#include "inventory.h"

typedef struct Operations Operations;

typedef enum GroupOwnerKind {
        GROUP_OWNER_NONE,
        GROUP_OWNER_LIBVIRT, /* a running libvirt domain has a member as hostdev */
        GROUP_OWNER_CLIENT,  /* the API client it was prepared for */
} GroupOwnerKind;

const char *group_owner_kind_to_string(GroupOwnerKind k); /* "", "libvirt", "client" */

typedef struct GroupStatusUser {
        bool process; /* false: a libvirt domain */
        char *domain_name, *domain_uuid;
        int pid;
        char *command;
        char *text;
} GroupStatusUser;

typedef struct GroupTypeVerdict {
        const char *type; /* static: "identity", "DMA", "DMA-FQ", "auto" */
        bool allowed;     /* SetDomainType would do it now (maybe with force, see host_uses) */
        bool current;     /* nothing to do */
        char *text;       /* what iommud does, or why not */
} GroupTypeVerdict;

#define GROUP_TYPE_VERDICTS 4

typedef struct GroupStatus {
        unsigned group;
        GroupStateKind state;
        GroupOwnerKind owner_kind;
        char *owner_client; /* who it was prepared for; NULL: nobody */
        char *domain_name, *domain_uuid;
        GroupStatusUser *users;
        size_t n_users;
        HostUses host_uses;
        bool viable;
        char **type_allowed; /* strv: the types SetDomainType can change it to */
        GroupTypeVerdict verdicts[GROUP_TYPE_VERDICTS];
        char **findings; /* strv */
        bool empty;
        char *empty_reason; /* NULL when it cannot be told */
} GroupStatus;

void group_status_done(GroupStatus *s);

/* The parts of a status, for change events (bit i = 1 << i). */
typedef enum GroupStatusField {
        GROUP_STATUS_STATE,
        GROUP_STATUS_OWNER,
        GROUP_STATUS_USERS,
        GROUP_STATUS_HOST_USES,
        GROUP_STATUS_VIABLE,
        GROUP_STATUS_TYPE_CHANGE,
        GROUP_STATUS_FINDINGS,
        _GROUP_STATUS_FIELD_MAX,
} GroupStatusField;

const char *group_status_field_to_string(GroupStatusField f); /* "state", "owner", ... */

/* One hash per field, to tell which changed without keeping the status. */
typedef struct GroupStatusDigest {
        uint64_t field[_GROUP_STATUS_FIELD_MAX];
} GroupStatusDigest;

void group_status_digest(const GroupStatus *s, GroupStatusDigest *ret);
/* Bit mask of the fields that differ. */
unsigned group_status_digest_diff(const GroupStatusDigest *a, const GroupStatusDigest *b);

/* Facts about the host read once for many groups (what its processes hold open, its mounts,
 * links...). NULL where a function takes one: read on demand. */
typedef struct HostUsage HostUsage;

typedef enum GroupStatusFlags {
        GROUP_STATUS_ALL = 0,
        /* Only state, owner, the libvirt user and findings: no host facts are read. */
        GROUP_STATUS_OWNER_ONLY = 1 << 0,
} GroupStatusFlags;

/* g's status now. usage may be NULL (read here when needed). */
int group_status_compute(Operations *ops, const HostUsage *usage, const Group *g, GroupStatusFlags flags,
                         GroupStatus *ret);

typedef struct GroupFilter GroupFilter;
/* group_filter_match() and core's state among f->states. */
bool group_status_filter_match(Operations *ops, const GroupFilter *f, const Group *g);

/* Follows every group's status and publishes each change on the manager's bus with its cause: after
 * the inventory changes that touch a group, after each rescan (every group), and when told. */
typedef struct StatusTracker StatusTracker;
typedef struct Manager Manager;

/* Takes the statuses of now as known (no events). Statuses that hot-plug events may have changed
 * are judged once per turn of the loop on base, after a burst of udev events. */
struct event_base;
int status_tracker_new(Operations *ops, Manager *m, struct event_base *base, StatusTracker **ret);
StatusTracker *status_tracker_free(StatusTracker *t);
static inline void status_tracker_freep(StatusTracker **t) {
        status_tracker_free(*t);
}
/* The group's status may have changed: judged at the next flush. */
void status_tracker_mark(StatusTracker *t, unsigned group);
/* Judges the marked groups now and publishes what changed, with the manager's current cause. */
void status_tracker_flush(StatusTracker *t);
