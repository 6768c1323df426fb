/* What iommud holds for a group (prepared for VFIO, or blocked), kept in <state_dir>/groups/ so that
 * it survives restarts and reboots: everything needed to give the group back. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "group-state.h"
#include "inventory.h"

typedef struct MemberRecord {
        char *address;
        int32_t vendor_id, device_id;
        char *driver;   /* bound before iommud took it; NULL: none */
        char *override; /* driver_override before; NULL: none */
} MemberRecord;

typedef struct GroupRecord {
        GroupStateKind state; /* GROUP_VFIO_READY or GROUP_BLOCKED */
        unsigned group;
        char *owner;
        MemberRecord *members;
        size_t n_members;
} GroupRecord;

/* A record of every member of g but bridges, which iommud leaves alone. Devices already on a VFIO
 * driver are recorded as having had no driver. */
int group_record_from_group(const Inventory *inv, const Group *g, GroupStateKind state, const char *owner,
                            GroupRecord **ret);
GroupRecord *group_record_free(GroupRecord *r);
static inline void group_record_freep(GroupRecord **r) {
        group_record_free(*r);
}

/* The records in one directory, loaded at start and kept in step with it. */
typedef struct GroupRecords GroupRecords;

/* Loads every record in dir (created when missing); unreadable records are logged and skipped. */
int group_records_open(const char *dir, GroupRecords **ret);
GroupRecords *group_records_free(GroupRecords *rs);
static inline void group_records_freep(GroupRecords **rs) {
        group_records_free(*rs);
}

/* The record whose members are exactly g's devices with the same IDs (a record whose hardware
 * changed matches no group), or NULL. */
GroupRecord *group_records_find(const GroupRecords *rs, const Inventory *inv, const Group *g);
/* The member record of d in a record of a blocked group, or NULL. */
const MemberRecord *group_records_find_blocked_member(const GroupRecords *rs, const Device *d);

/* Stores *r on disk and keeps it; on success the contents of *r are taken over (r is left empty). */
int group_records_add(GroupRecords *rs, GroupRecord *r);
/* Removes r (which must belong to rs) from disk and from the set. */
void group_records_forget(GroupRecords *rs, GroupRecord *r);
