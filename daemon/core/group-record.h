/* What iommud holds for a group (prepared for VFIO, or blocked), kept in <state_dir>/groups/ so that
 * it survives restarts and reboots: everything needed to give the group back, the hardware it was
 * taken from, and the boot it was taken in. Records are written (fsync, rename, directory fsync)
 * before the host change they describe, and compared with the host whenever it may have moved on
 * without iommud: at start, and when a member device appears or changes. docs/OPERATIONS.md has the
 * life cycle and the argument for every crash point. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group-state.h"
#include "inventory.h"

typedef struct MemberRecord {
        char *address;
        /* The hardware at the address when iommud took it; -1 when not recorded (older records). */
        int32_t vendor_id, device_id, subsystem_vendor_id, subsystem_device_id;
        bool serial_recorded; /* false in older records: the serial is not compared */
        bool serial_present;  /* the device has a PCIe Device Serial Number */
        uint64_t serial;
        char *driver;   /* bound before iommud took it; NULL: none */
        char *override; /* driver_override before; NULL: none */
        int sriov_numvfs; /* a PF's SR-IOV VFs iommud disabled to take it, enabled again when it goes
                           * back; 0: none */
        char *target;   /* the driver_override iommud set (the VFIO driver; "none" for a block); NULL:
                         * iommud changed nothing on this member (it was on a VFIO driver already) */
} MemberRecord;

/* An operation that is changing what the record says, recorded before its first step. */
typedef enum RecordPending {
        RECORD_SETTLED,   /* the host is as the record says */
        RECORD_ACQUIRING, /* PrepareGroup or BlockGroup is taking the group */
        RECORD_RELEASING, /* ReleaseGroup or UnblockGroup is giving it back */
} RecordPending;

typedef struct GroupRecord {
        GroupStateKind state; /* GROUP_VFIO_READY or GROUP_BLOCKED */
        unsigned group;
        char *owner;
        char *boot_id; /* the boot in which iommud made the change; NULL: unknown */
        RecordPending pending;
        uint64_t pending_operation; /* its operation (and journal) id */
        MemberRecord *members;
        size_t n_members;
        char *path;          /* its file, once stored */
        bool reported_other; /* a hardware change was logged already */
} GroupRecord;

/* A record of every member of g but bridges, which iommud leaves alone, with target as every
 * member's target (group_record_set_target() changes single ones). Devices already on a VFIO driver
 * are recorded as having had no driver, and no target. */
int group_record_from_group(const Inventory *inv, const Group *g, GroupStateKind state, const char *owner,
                            const char *target, GroupRecord **ret);
int group_record_set_target(GroupRecord *r, const char *address, const char *target);
GroupRecord *group_record_free(GroupRecord *r);
static inline void group_record_freep(GroupRecord **r) {
        group_record_free(*r);
}

/* Whether d is the hardware m was recorded from: vendor, device, subsystem IDs and serial number.
 * IDs that cannot be read now do not match; the serial counts when extended config space can be
 * read now. */
bool member_record_same_hardware(const MemberRecord *m, const Device *d);

/* The records in one directory, loaded at start and kept in step with it. */
typedef struct GroupRecords GroupRecords;

/* Loads every record in dir (a missing directory holds none); unreadable records are logged and
 * left alone. boot_id (NULL: unknown) is the boot the host is in now. */
int group_records_open(const char *dir, const char *boot_id, GroupRecords **ret);
GroupRecords *group_records_free(GroupRecords *rs);
static inline void group_records_freep(GroupRecords **rs) {
        group_records_free(*rs);
}

/* The record whose members are all present in g with the hardware they had (a record whose
 * hardware changed matches no group), or NULL. */
GroupRecord *group_records_find(const GroupRecords *rs, const Inventory *inv, const Group *g);
/* The member record of d in a record of a blocked group, on the same hardware, or NULL. */
const MemberRecord *group_records_find_blocked_member(const GroupRecords *rs, const Device *d);

/* Before the first step of the operation that takes the group: stores *r durably as being acquired
 * by operation, in the boot the host is in now. On success rs owns r. On failure nothing is stored
 * and *ret_message names the file and the error. */
int group_records_store(GroupRecords *rs, GroupRecord *r, uint64_t operation, char **ret_message);
/* Before the first step of the operation that gives the group back: marks r as being released. */
int group_records_begin_release(GroupRecords *rs, GroupRecord *r, uint64_t operation, char **ret_message);
/* The acquisition completed, or the release failed and was rolled back: the record is settled again.
 * A failure is logged; the record on disk then says pending, which the next start settles the same
 * way. */
void group_records_settle(GroupRecords *rs, GroupRecord *r);
/* Removes r (which must belong to rs) from disk and from the set: released, or acquisition rolled
 * back. A file that cannot be removed is logged; the next start finds the host given back and
 * removes it. */
void group_records_forget(GroupRecords *rs, GroupRecord *r);

/* What recovery of the intent journal did with an operation's record. */
typedef enum JournalFate {
        JOURNAL_ABSENT,      /* no record: never written, or removed when the operation ended */
        JOURNAL_ROLLED_BACK, /* rolled back at this start */
        JOURNAL_KEPT,        /* could not be rolled back: kept for an admin */
} JournalFate;
typedef JournalFate (*JournalFateFunc)(uint64_t operation, void *userdata);

/* At start, after the intent journal was recovered: settles each record an interrupted operation
 * left pending (fate tells what became of the operation), then compares every record with the
 * host (group_records_reconcile_address() for each). */
void group_records_reconcile_all(GroupRecords *rs, const Inventory *inv, JournalFateFunc fate, void *userdata);
/* Compares the records holding address with the host, which may have moved on without iommud: a
 * record whose hardware changed is reported and left alone; a record of a prepared group whose
 * driver_override the kernel forgot (a reboot, an unplug and re-plug) is reported and retired
 * (whole, or the members it no longer holds). Call it only when no operation is changing the
 * group. Returns whether any record was retired. */
bool group_records_reconcile_address(GroupRecords *rs, const Inventory *inv, const char *address);

/* What an admin should know about the records of g's members: retired records, records whose
 * hardware changed. *ret is a strv (possibly empty). */
int group_records_findings(const GroupRecords *rs, const Inventory *inv, const Group *g, char ***ret);
