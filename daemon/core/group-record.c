/* Group records: one JSON file per group iommud holds, and their reconciliation with the host. */
#include "group-record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

#define RECORD_VERSION 2

/* Something an admin should know about a record iommud retired, kept until the member is taken
 * again or the daemon restarts (the log keeps it longer). */
typedef struct Finding {
        char *address;
        char *message;
} Finding;

struct GroupRecords {
        char *dir;
        char *boot_id;
        GroupRecord **records; /* pointers: operations in flight hold them */
        size_t n_records;
        Finding *findings;
        size_t n_findings;
};

const char *group_state_to_string(GroupStateKind s) {
        switch (s) {
        case GROUP_VFIO_READY:
                return "vfio-ready";
        case GROUP_BLOCKED:
                return "blocked";
        case GROUP_TRANSITIONING:
                return "transitioning";
        case GROUP_IN_USE:
                return "in-use";
        case GROUP_FAILED:
                return "failed";
        default:
                return "host";
        }
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static void member_record_done(MemberRecord *m) {
        free(m->address);
        free(m->driver);
        free(m->override);
        free(m->target);
}

GroupRecord *group_record_free(GroupRecord *r) {
        if (!r)
                return NULL;
        FOREACH_ARRAY(m, r->members, r->n_members)
                member_record_done(m);
        free(r->members);
        free(r->owner);
        free(r->boot_id);
        free(r->path);
        free(r);
        return NULL;
}

int group_record_from_group(const Inventory *inv, const Group *g, GroupStateKind state, const char *owner,
                            const char *target, GroupRecord **ret) {
        _cleanup_(group_record_freep) GroupRecord *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->state = state;
        r->group = g->id;
        r->owner = strdup_or_null(owner);
        if (owner && !r->owner)
                return -ENOMEM;
        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);
                const char *t;
                MemberRecord *m;

                if (!d || d->header_type != 0)
                        continue; /* bridges are left alone */
                m = array_append(&r->members, &r->n_members, sizeof(MemberRecord));
                if (!m)
                        return -ENOMEM;
                m->address = strdup(d->address);
                m->vendor_id = d->vendor_id;
                m->device_id = d->device_id;
                m->subsystem_vendor_id = d->subsystem_vendor_id;
                m->subsystem_device_id = d->subsystem_device_id;
                m->serial_recorded = true;
                m->serial_present = d->serial_present;
                m->serial = d->serial;
                m->sriov_numvfs = d->sriov_role == SRIOV_PF && d->sriov_numvfs > 0 && !d->vfio_bound ? d->sriov_numvfs : 0;
                /* A device already on vfio-pci when we take it goes back to no driver, and iommud
                 * sets nothing on it. */
                t = d->vfio_bound && state == GROUP_VFIO_READY ? NULL : target;
                m->driver = d->vfio_bound ? NULL : strdup_or_null(d->driver);
                m->override = strdup_or_null(d->driver_override);
                m->target = strdup_or_null(t);
                if (!m->address || (!d->vfio_bound && d->driver && !m->driver) ||
                    (d->driver_override && !m->override) || (t && !m->target))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

int group_record_set_target(GroupRecord *r, const char *address, const char *target) {
        FOREACH_ARRAY(m, r->members, r->n_members)
                if (streq(m->address, address)) {
                        char *copy = strdup_or_null(target);

                        if (target && !copy)
                                return -ENOMEM;
                        free(m->target);
                        m->target = copy;
                        return 0;
                }
        return -ENOENT;
}

bool member_record_same_hardware(const MemberRecord *m, const Device *d) {
        if (d->vendor_id < 0 || d->vendor_id != m->vendor_id || d->device_id < 0 || d->device_id != m->device_id)
                return false;
        if (m->subsystem_vendor_id >= 0 && d->subsystem_vendor_id != m->subsystem_vendor_id)
                return false;
        if (m->subsystem_device_id >= 0 && d->subsystem_device_id != m->subsystem_device_id)
                return false;
        /* The serial lives in extended config space. When that cannot be read now (a device in
         * D3cold reads all ones), the IDs alone decide: taking the same model at the same address
         * for other hardware costs less than losing the way back for a held group. */
        if (!m->serial_recorded || !d->config_extended)
                return true;
        return m->serial_present == d->serial_present && (!m->serial_present || m->serial == d->serial);
}

/* "8086:10d3 (subsystem 8086:a01f, serial 0011223344556677)" */
static char *describe_hardware(int32_t vendor, int32_t device, int32_t sub_vendor, int32_t sub_device,
                               bool serial_present, uint64_t serial) {
        char serial_text[32] = "no serial";

        if (serial_present)
                snprintf(serial_text, sizeof(serial_text), "serial %016" PRIx64, serial);
        return strprintf("%04x:%04x (subsystem %04x:%04x, %s)", (unsigned)vendor & 0xffff, (unsigned)device & 0xffff,
                         (unsigned)sub_vendor & 0xffff, (unsigned)sub_device & 0xffff, serial_text);
}

/* ---- files ------------------------------------------------------------------------------------ */

static const char *pending_to_string(RecordPending p) {
        return p == RECORD_ACQUIRING ? "acquire" : p == RECORD_RELEASING ? "release" : NULL;
}

static json_object *int_or_null(int32_t v) {
        return v >= 0 ? json_object_new_int(v) : NULL;
}

static char *record_to_text(const GroupRecord *r) {
        json_object *o = json_object_new_object(), *members = json_object_new_array(), *pending = NULL;
        char *text;

        json_object_object_add(o, "version", json_object_new_int(RECORD_VERSION));
        json_object_object_add(o, "state", json_object_new_string(group_state_to_string(r->state)));
        json_object_object_add(o, "group", json_object_new_int((int)r->group));
        json_object_object_add(o, "owner", json_string_or_null(r->owner));
        json_object_object_add(o, "boot_id", json_string_or_null(r->boot_id));
        if (r->pending != RECORD_SETTLED) {
                pending = json_object_new_object();
                json_object_object_add(pending, "operation", json_object_new_uint64(r->pending_operation));
                json_object_object_add(pending, "action", json_object_new_string(pending_to_string(r->pending)));
        }
        json_object_object_add(o, "pending", pending);
        FOREACH_ARRAY(m, r->members, r->n_members) {
                json_object *member = json_object_new_object();
                char serial[32];

                snprintf(serial, sizeof(serial), "%016" PRIx64, m->serial);
                json_object_object_add(member, "address", json_object_new_string(m->address));
                json_object_object_add(member, "vendor_id", int_or_null(m->vendor_id));
                json_object_object_add(member, "device_id", int_or_null(m->device_id));
                json_object_object_add(member, "subsystem_vendor_id", int_or_null(m->subsystem_vendor_id));
                json_object_object_add(member, "subsystem_device_id", int_or_null(m->subsystem_device_id));
                json_object_object_add(member, "serial", m->serial_present ? json_object_new_string(serial) : NULL);
                json_object_object_add(member, "driver", json_string_or_null(m->driver));
                json_object_object_add(member, "driver_override", json_string_or_null(m->override));
                json_object_object_add(member, "target", json_string_or_null(m->target));
                if (m->sriov_numvfs > 0)
                        json_object_object_add(member, "sriov_numvfs", json_object_new_int(m->sriov_numvfs));
                json_object_array_add(members, member);
        }
        json_object_object_add(o, "members", members);
        text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
        json_object_put(o);
        return text;
}

/* Writes r to its file (chosen on first store), durably. */
static int record_write(const GroupRecord *r) {
        _cleanup_(freep) char *text = record_to_text(r);

        if (!text)
                return -ENOMEM;
        return write_file_durable(r->path, text);
}

static int json_get_int(json_object *o, const char *key, int fallback) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int(v)
                                                                                               : fallback;
}

static int record_load(const char *path, GroupRecord **ret) {
        _cleanup_(group_record_freep) GroupRecord *r = calloc(1, sizeof(*r));
        json_object *o, *members, *pending, *v;
        const char *state, *action;
        int version, k = 0;

        if (!r)
                return -ENOMEM;
        o = json_object_from_file(path);
        if (!o)
                return -EBADMSG;
        version = json_get_int(o, "version", 1);
        state = json_get_string(o, "state");
        r->state = state && streq(state, "blocked") ? GROUP_BLOCKED : GROUP_VFIO_READY;
        r->group = (unsigned)json_get_int(o, "group", 0);
        r->owner = strdup_or_null(json_get_string(o, "owner"));
        r->boot_id = strdup_or_null(json_get_string(o, "boot_id"));
        r->path = strdup(path);
        if (json_object_object_get_ex(o, "pending", &pending) && json_object_is_type(pending, json_type_object)) {
                action = json_get_string(pending, "action");
                r->pending = action && streq(action, "release") ? RECORD_RELEASING : RECORD_ACQUIRING;
                r->pending_operation =
                        json_object_object_get_ex(pending, "operation", &v) ? json_object_get_uint64(v) : 0;
        }
        if (!json_object_object_get_ex(o, "members", &members) || !json_object_is_type(members, json_type_array))
                k = -EBADMSG;
        for (size_t i = 0; k == 0 && i < json_object_array_length(members); i++) {
                json_object *member = json_object_array_get_idx(members, i);
                MemberRecord *m = array_append(&r->members, &r->n_members, sizeof(MemberRecord));
                const char *address = json_get_string(member, "address"), *serial;

                if (!m) {
                        k = -ENOMEM;
                        break;
                }
                if (!address) {
                        k = -EBADMSG;
                        break;
                }
                m->address = strdup(address);
                m->vendor_id = json_get_int(member, "vendor_id", -1);
                m->device_id = json_get_int(member, "device_id", -1);
                m->subsystem_vendor_id = json_get_int(member, "subsystem_vendor_id", -1);
                m->subsystem_device_id = json_get_int(member, "subsystem_device_id", -1);
                m->serial_recorded = version >= 2;
                serial = json_get_string(member, "serial");
                if (serial) {
                        char *end;

                        m->serial_present = true;
                        m->serial = strtoull(serial, &end, 16);
                        if (*end)
                                k = -EBADMSG;
                }
                m->driver = strdup_or_null(json_get_string(member, "driver"));
                m->override = strdup_or_null(json_get_string(member, "driver_override"));
                m->sriov_numvfs = json_get_int(member, "sriov_numvfs", 0);
                /* Records before version 2 name no target: what iommud always set then. */
                m->target = strdup_or_null(version >= 2 ? json_get_string(member, "target")
                                           : r->state == GROUP_BLOCKED ? "none"
                                                                       : "vfio-pci");
                if (!m->address)
                        k = -ENOMEM;
        }
        json_object_put(o);
        if (k < 0)
                return k;
        if (!r->path)
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

int group_records_open(const char *dir, const char *boot_id, GroupRecords **ret) {
        _cleanup_(group_records_freep) GroupRecords *rs = calloc(1, sizeof(*rs));
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int fd = -1;

        if (!rs || !(rs->dir = strdup(dir)) || (boot_id && !(rs->boot_id = strdup(boot_id))))
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && read_dir_at(fd, ".", &names, NULL) >= 0)
                for (char **name = names; *name; name++) {
                        _cleanup_(freep) char *path = NULL;
                        GroupRecord *r = NULL, **slot;
                        size_t len = strlen(*name);
                        int k;

                        if (len < 6 || !streq(*name + len - 5, ".json"))
                                continue;
                        path = strprintf("%s/%s", dir, *name);
                        if (!path)
                                return -ENOMEM;
                        k = record_load(path, &r);
                        if (k == -ENOMEM)
                                return k;
                        if (k < 0) {
                                log_error("Cannot read the record %s; leaving it for an admin.", path);
                                continue;
                        }
                        slot = array_append(&rs->records, &rs->n_records, sizeof(GroupRecord *));
                        if (!slot) {
                                group_record_free(r);
                                return -ENOMEM;
                        }
                        *slot = r;
                }
        *ret = TAKE_PTR(rs);
        return 0;
}

GroupRecords *group_records_free(GroupRecords *rs) {
        if (!rs)
                return NULL;
        for (size_t i = 0; i < rs->n_records; i++)
                group_record_free(rs->records[i]);
        free(rs->records);
        FOREACH_ARRAY(f, rs->findings, rs->n_findings) {
                free(f->address);
                free(f->message);
        }
        free(rs->findings);
        free(rs->dir);
        free(rs->boot_id);
        free(rs);
        return NULL;
}

GroupRecord *group_records_find(const GroupRecords *rs, const Inventory *inv, const Group *g) {
        for (size_t i = 0; i < rs->n_records; i++) {
                GroupRecord *r = rs->records[i];
                bool same = r->n_members > 0;

                FOREACH_ARRAY(m, r->members, r->n_members) {
                        const Device *d = inventory_find_device(inv, m->address);

                        if (!d || d->group != (int)g->id || !member_record_same_hardware(m, d))
                                same = false;
                }
                if (same)
                        return r;
        }
        return NULL;
}

const MemberRecord *group_records_find_blocked_member(const GroupRecords *rs, const Device *d) {
        for (size_t i = 0; i < rs->n_records; i++) {
                const GroupRecord *r = rs->records[i];

                /* Pending: an operation is changing it, or one was left for an admin. */
                if (r->state != GROUP_BLOCKED || r->pending != RECORD_SETTLED)
                        continue;
                FOREACH_ARRAY(m, r->members, r->n_members)
                        if (streq(m->address, d->address) && member_record_same_hardware(m, d))
                                return m;
        }
        return NULL;
}

/* ---- the life cycle of a record --------------------------------------------------------------- */

static void findings_forget_address(GroupRecords *rs, const char *address) {
        for (size_t i = 0; i < rs->n_findings;)
                if (streq(rs->findings[i].address, address)) {
                        free(rs->findings[i].address);
                        free(rs->findings[i].message);
                        rs->findings[i] = rs->findings[--rs->n_findings];
                } else
                        i++;
}

static void findings_add(GroupRecords *rs, const char *address, const char *message) {
        Finding *f = array_append(&rs->findings, &rs->n_findings, sizeof(Finding));

        if (!f)
                return;
        f->address = strdup(address);
        f->message = strdup(message);
        if (!f->address || !f->message) {
                free(f->address);
                free(f->message);
                rs->n_findings--;
        }
}

static char *describe_store_failure(const GroupRecord *r, int error) {
        return strprintf("cannot store the record of group %u in %s: %s; nothing was changed", r->group,
                         r->path ?: "?", strerror(-error));
}

int group_records_store(GroupRecords *rs, GroupRecord *r, uint64_t operation, char **ret_message) {
        GroupRecord **slot;
        int k;

        /* Named by the group's first member (group numbers move, addresses rarely do) and the
         * operation: a record left alone at the same address (other hardware) is never overwritten. */
        free(r->path);
        r->path = strprintf("%s/%s-%" PRIu64 ".json", rs->dir, r->n_members > 0 ? r->members[0].address : "empty",
                            operation);
        free(r->boot_id);
        r->boot_id = strdup_or_null(rs->boot_id);
        if (!r->path || (rs->boot_id && !r->boot_id))
                return -ENOMEM;
        r->pending = RECORD_ACQUIRING;
        r->pending_operation = operation;
        slot = array_append(&rs->records, &rs->n_records, sizeof(GroupRecord *));
        if (!slot)
                return -ENOMEM;
        k = record_write(r);
        if (k < 0) {
                rs->n_records--;
                *ret_message = describe_store_failure(r, k);
                return k;
        }
        *slot = r;
        FOREACH_ARRAY(m, r->members, r->n_members)
                findings_forget_address(rs, m->address);
        return 0;
}

int group_records_begin_release(GroupRecords *rs, GroupRecord *r, uint64_t operation, char **ret_message) {
        int k;

        r->pending = RECORD_RELEASING;
        r->pending_operation = operation;
        k = record_write(r);
        if (k < 0) {
                r->pending = RECORD_SETTLED;
                r->pending_operation = 0;
                *ret_message = describe_store_failure(r, k);
        }
        return k;
}

void group_records_settle(GroupRecords *rs, GroupRecord *r) {
        int k;

        r->pending = RECORD_SETTLED;
        r->pending_operation = 0;
        k = record_write(r);
        if (k < 0)
                log_warning_errno(k, "Cannot update %s, ignoring (the next start settles it the same way): %m",
                                  r->path);
}

static void records_remove(GroupRecords *rs, GroupRecord *r) {
        for (size_t i = 0; i < rs->n_records; i++)
                if (rs->records[i] == r) {
                        memmove(rs->records + i, rs->records + i + 1, (rs->n_records - i - 1) * sizeof(GroupRecord *));
                        rs->n_records--;
                        break;
                }
        group_record_free(r);
}

void group_records_forget(GroupRecords *rs, GroupRecord *r) {
        int k = unlink_durable(r->path);

        if (k < 0)
                log_warning_errno(k, "Cannot remove %s, ignoring (the next start finds the group given back and "
                                  "removes it): %m",
                                  r->path);
        records_remove(rs, r);
}

/* ---- reconciliation --------------------------------------------------------------------------- */

static bool different_boot(const GroupRecords *rs, const GroupRecord *r) {
        /* An unknown boot on either side proves nothing: the overrides are judged alone then. */
        return rs->boot_id && r->boot_id && !streq(rs->boot_id, r->boot_id);
}

/* Whether the member is as the record says iommud left it: its override is ours and, for a block,
 * no driver is bound. Members iommud did not change (target NULL) say nothing. */
static int member_held(const GroupRecord *r, const MemberRecord *m, const Device *d) {
        if (!m->target || !d)
                return -1;
        if (!d->driver_override || !streq(d->driver_override, m->target))
                return 0;
        if (r->state == GROUP_BLOCKED && d->driver)
                return 0;
        return 1;
}

/* "0000:01:00.0 on e1000e (no driver_override)" */
static char *describe_member_now(const MemberRecord *m, const Device *d) {
        if (!d)
                return strprintf("%s gone", m->address);
        return strprintf("%s %s%s (%s%s)", m->address, d->driver ? "on " : "unbound", d->driver ?: "",
                         d->driver_override ? "driver_override " : "no driver_override", d->driver_override ?: "");
}

static char *describe_members_now(const GroupRecord *r, const Inventory *inv) {
        char *text = strdup("");

        FOREACH_ARRAY(m, r->members, r->n_members) {
                _cleanup_(freep) char *item = describe_member_now(m, inventory_find_device(inv, m->address));
                char *joined = item && text ? strprintf("%s%s%s", text, *text ? ", " : "", item) : NULL;

                free(text);
                text = joined;
        }
        return text;
}

/* Retires the whole record: reported, kept as a finding on each member, removed. A file that
 * cannot be removed stays on disk; the next start judges it the same way. */
static void retire(GroupRecords *rs, GroupRecord *r, const char *why, const Inventory *inv) {
        _cleanup_(freep) char *now = describe_members_now(r, inv), *message = NULL;
        int k;

        message = strprintf("the record of group %u (%s%s%s) was retired: %s; now: %s; iommud no longer holds the "
                            "group and gives nothing back for it",
                            r->group, group_state_to_string(r->state), r->owner ? ", owner " : "", r->owner ?: "", why,
                            now ?: "?");
        if (!message)
                message = strdup(why);
        log_notice("Retiring a record: %s.", message ?: why);
        FOREACH_ARRAY(m, r->members, r->n_members)
                if (message)
                        findings_add(rs, m->address, message);
        k = unlink_durable(r->path);
        if (k < 0)
                log_warning_errno(k, "Cannot remove the retired record %s, ignoring: %m", r->path);
        records_remove(rs, r);
}

/* An interrupted operation left r pending: the journal (or the host) tells how far it got. Returns
 * false when r was removed. */
static bool settle_interrupted(GroupRecords *rs, GroupRecord *r, const Inventory *inv, JournalFate fate) {
        size_t held = 0, judged = 0;
        const char *what = r->pending == RECORD_ACQUIRING ? (r->state == GROUP_BLOCKED ? "BlockGroup" : "PrepareGroup")
                                                          : (r->state == GROUP_BLOCKED ? "UnblockGroup"
                                                                                       : "ReleaseGroup");

        if (fate == JOURNAL_KEPT) {
                log_error("Operation %" PRIu64 " (%s) on group %u could not be rolled back; its record %s stays as "
                          "it is for an admin.",
                          r->pending_operation, what, r->group, r->path);
                return true;
        }
        if (different_boot(rs, r)) {
                log_notice("Operation %" PRIu64 " (%s) on group %u was interrupted by a reboot, which made the "
                           "kernel forget every driver_override; its record %s is removed.",
                           r->pending_operation, what, r->group, r->path);
                group_records_forget(rs, r);
                return false;
        }
        FOREACH_ARRAY(m, r->members, r->n_members) {
                int h = member_held(r, m, inventory_find_device(inv, m->address));

                if (h >= 0) {
                        judged++;
                        held += (size_t)h;
                }
        }
        if (r->pending == RECORD_ACQUIRING) {
                /* Rolled back now, or its journal already gone: the host shows whether every step
                 * ran (then the journal was removed after the last one) or none did. */
                if (fate == JOURNAL_ABSENT && judged > 0 && held == judged) {
                        log_notice("Operation %" PRIu64 " (%s) on group %u completed before iommud stopped; its "
                                   "record stays.",
                                   r->pending_operation, what, r->group);
                        group_records_settle(rs, r);
                        return true;
                }
                log_notice("Operation %" PRIu64 " (%s) on group %u did not complete before iommud stopped%s; its "
                           "record %s is removed.",
                           r->pending_operation, what, r->group,
                           fate == JOURNAL_ROLLED_BACK ? " and was rolled back" : "", r->path);
                group_records_forget(rs, r);
                return false;
        }
        /* Releasing: rolled back means held again; otherwise the release either completed (nothing
         * is held any more) or never began (the checks below judge every member). */
        if (fate == JOURNAL_ABSENT && held == 0) {
                log_notice("Operation %" PRIu64 " (%s) on group %u completed before iommud stopped; its record %s "
                           "is removed.",
                           r->pending_operation, what, r->group, r->path);
                group_records_forget(rs, r);
                return false;
        }
        log_notice("Operation %" PRIu64 " (%s) on group %u did not complete before iommud stopped%s; iommud holds "
                   "the group as before.",
                   r->pending_operation, what, r->group, fate == JOURNAL_ROLLED_BACK ? " and was rolled back" : "");
        group_records_settle(rs, r);
        return true;
}

/* Compares r with the host; only the member at 'only' when it is not NULL (after a device event the
 * other members' entries may not have caught up with udev yet), every member otherwise. Returns
 * false when r was retired (and freed). */
static bool reconcile_record(GroupRecords *rs, GroupRecord *r, const Inventory *inv, const char *only) {
        _cleanup_(freep) char *why = NULL;
        size_t n_forgotten = 0, n_kept = 0;

        if (r->pending != RECORD_SETTLED)
                return true; /* an operation in flight, or one kept for an admin */

        FOREACH_ARRAY(m, r->members, r->n_members) {
                const Device *d = inventory_find_device(inv, m->address);
                _cleanup_(freep) char *was = NULL, *is = NULL;

                if ((only && !streq(only, m->address)) || !d || member_record_same_hardware(m, d))
                        continue;
                /* Other hardware at a recorded address: the record describes something else. */
                if (!r->reported_other) {
                        was = describe_hardware(m->vendor_id, m->device_id, m->subsystem_vendor_id,
                                                m->subsystem_device_id, m->serial_present, m->serial);
                        is = describe_hardware(d->vendor_id, d->device_id, d->subsystem_vendor_id,
                                               d->subsystem_device_id, d->serial_present, d->serial);
                        log_notice("The record %s (group %u, %s) describes other hardware than %s holds now (was %s, "
                                   "is %s); it is left alone: it matches no group and nothing is done with it.",
                                   r->path, r->group, group_state_to_string(r->state), m->address, was ?: "?",
                                   is ?: "?");
                        r->reported_other = true;
                }
                return true;
        }
        if (!only)
                r->reported_other = false;
        if (r->state != GROUP_VFIO_READY)
                return true; /* blocks are re-applied by operations, not retired */

        if (different_boot(rs, r)) {
                why = strprintf("it was made in an earlier boot (boot id %s, now %s), and a reboot makes the "
                                "kernel forget every driver_override",
                                r->boot_id, rs->boot_id);
                retire(rs, r, why ?: "the host rebooted", inv);
                return false;
        }
        FOREACH_ARRAY(m, r->members, r->n_members) {
                bool judged = !only || streq(only, m->address);
                int h = member_held(r, m, inventory_find_device(inv, m->address));

                if (judged && h == 0)
                        n_forgotten++;
                else if (m->target)
                        n_kept++;
        }
        if (n_forgotten == 0)
                return true;
        if (n_kept == 0) {
                retire(rs, r,
                       "the kernel forgot the driver_override iommud set on every member (the device was "
                       "removed and came back, or someone cleared it)",
                       inv);
                return false;
        }

        /* Some members only: iommud lets go of those and keeps holding the others. */
        for (size_t i = 0; i < r->n_members;) {
                MemberRecord *m = &r->members[i];
                const Device *d = inventory_find_device(inv, m->address);
                _cleanup_(freep) char *now = NULL, *message = NULL;

                if ((only && !streq(only, m->address)) || member_held(r, m, d) != 0) {
                        i++;
                        continue;
                }
                now = describe_member_now(m, d);
                message = strprintf("the kernel forgot the driver_override %s iommud set on %s of group %u (the "
                                    "device was removed and came back, or someone cleared it); now: %s; iommud no "
                                    "longer holds it and gives nothing back for it",
                                    m->target, m->address, r->group, now ?: "?");
                if (message) {
                        log_notice("Retiring a member of a record: %s.", message);
                        findings_add(rs, m->address, message);
                }
                member_record_done(m);
                memmove(r->members + i, r->members + i + 1, (r->n_members - i - 1) * sizeof(MemberRecord));
                r->n_members--;
        }
        group_records_settle(rs, r);
        return true;
}

bool group_records_reconcile_address(GroupRecords *rs, const Inventory *inv, const char *address) {
        bool retired = false;

        for (size_t i = 0; i < rs->n_records;) {
                GroupRecord *r = rs->records[i];
                bool holds = false;

                FOREACH_ARRAY(m, r->members, r->n_members)
                        holds = holds || streq(m->address, address);
                if (holds && !reconcile_record(rs, r, inv, address)) {
                        retired = true;
                        continue; /* removed: the next one moved to i */
                }
                i++;
        }
        return retired;
}

void group_records_reconcile_all(GroupRecords *rs, const Inventory *inv, JournalFateFunc fate, void *userdata) {
        for (size_t i = 0; i < rs->n_records;) {
                GroupRecord *r = rs->records[i];

                if (r->pending != RECORD_SETTLED &&
                    !settle_interrupted(rs, r, inv, fate ? fate(r->pending_operation, userdata) : JOURNAL_ABSENT))
                        continue;
                if (!reconcile_record(rs, r, inv, NULL))
                        continue;
                i++;
        }
}

int group_records_findings(const GroupRecords *rs, const Inventory *inv, const Group *g, char ***ret) {
        _cleanup_(strv_freep) char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (char **a = g->devices; *a; a++) {
                const Device *d = inventory_find_device(inv, *a);

                FOREACH_ARRAY(f, rs->findings, rs->n_findings)
                        if (streq(f->address, *a) && !strv_contains(l, f->message) && strv_push_dup(&l, &n, f->message) < 0)
                                return -ENOMEM;
                for (size_t i = 0; d && i < rs->n_records; i++) {
                        const GroupRecord *r = rs->records[i];

                        FOREACH_ARRAY(m, r->members, r->n_members) {
                                _cleanup_(freep) char *was = NULL, *is = NULL, *message = NULL;

                                if (!streq(m->address, *a) || member_record_same_hardware(m, d))
                                        continue;
                                was = describe_hardware(m->vendor_id, m->device_id, m->subsystem_vendor_id,
                                                        m->subsystem_device_id, m->serial_present, m->serial);
                                is = describe_hardware(d->vendor_id, d->device_id, d->subsystem_vendor_id,
                                                       d->subsystem_device_id, d->serial_present, d->serial);
                                message = strprintf("the record %s (%s, group %u) was made for other hardware at %s "
                                                    "(was %s, is %s): it is left alone and matches no group",
                                                    r->path, group_state_to_string(r->state), r->group, m->address,
                                                    was ?: "?", is ?: "?");
                                if (!message || strv_push(&l, &n, TAKE_PTR(message)) < 0)
                                        return -ENOMEM;
                        }
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}
