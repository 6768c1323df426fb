/* Group records: one JSON file per group iommud holds, named by the group's first member. */
#include "group-record.h"

#include <errno.h>
#include <fcntl.h>
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

struct GroupRecords {
        char *dir;
        GroupRecord *records;
        size_t n_records;
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
        default:
                return "host";
        }
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static void group_record_done(GroupRecord *r) {
        FOREACH_ARRAY(m, r->members, r->n_members) {
                free(m->address);
                free(m->driver);
                free(m->override);
        }
        free(r->members);
        free(r->owner);
        *r = (GroupRecord){};
}

GroupRecord *group_record_free(GroupRecord *r) {
        if (r) {
                group_record_done(r);
                free(r);
        }
        return NULL;
}

int group_record_from_group(const Inventory *inv, const Group *g, GroupStateKind state, const char *owner,
                            GroupRecord **ret) {
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
                MemberRecord *m;

                if (!d || d->header_type != 0)
                        continue; /* bridges are left alone */
                m = array_append(&r->members, &r->n_members, sizeof(MemberRecord));
                if (!m)
                        return -ENOMEM;
                m->address = strdup(d->address);
                m->vendor_id = d->vendor_id;
                m->device_id = d->device_id;
                /* A device already on vfio-pci when we take it goes back to no driver. */
                m->driver = d->vfio_bound ? NULL : strdup_or_null(d->driver);
                m->override = strdup_or_null(d->driver_override);
                if (!m->address || (!d->vfio_bound && d->driver && !m->driver) || (d->driver_override && !m->override))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

/* Records are named by the group's first member: group numbers move, addresses rarely do. */
static char *record_path(const GroupRecords *rs, const GroupRecord *r) {
        return strprintf("%s/%s.json", rs->dir, r->n_members > 0 ? r->members[0].address : "empty");
}

static int record_save(const GroupRecords *rs, const GroupRecord *r) {
        _cleanup_(freep) char *path = record_path(rs, r), *tmp = NULL;
        json_object *o = json_object_new_object(), *members = json_object_new_array();
        int k;

        json_object_object_add(o, "state", json_object_new_string(group_state_to_string(r->state)));
        json_object_object_add(o, "group", json_object_new_int((int)r->group));
        json_object_object_add(o, "owner", json_string_or_null(r->owner));
        FOREACH_ARRAY(m, r->members, r->n_members) {
                json_object *member = json_object_new_object();

                json_object_object_add(member, "address", json_object_new_string(m->address));
                json_object_object_add(member, "vendor_id", json_object_new_int(m->vendor_id));
                json_object_object_add(member, "device_id", json_object_new_int(m->device_id));
                json_object_object_add(member, "driver", json_string_or_null(m->driver));
                json_object_object_add(member, "driver_override", json_string_or_null(m->override));
                json_object_array_add(members, member);
        }
        json_object_object_add(o, "members", members);

        tmp = path ? strprintf("%s.tmp", path) : NULL;
        if (!tmp) {
                json_object_put(o);
                return -ENOMEM;
        }
        k = json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PRETTY);
        json_object_put(o);
        if (k < 0 || rename(tmp, path) < 0)
                return log_error_errno(errno ?: EIO, "Failed to store %s: %m", path);
        return 0;
}

static void record_remove(const GroupRecords *rs, const GroupRecord *r) {
        _cleanup_(freep) char *path = record_path(rs, r);

        if (path && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s, ignoring: %m", path);
}

static int json_get_int(json_object *o, const char *key, int fallback) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_int(v) : fallback;
}

static int record_load(const char *path, GroupRecord *ret) {
        GroupRecord r = {};
        json_object *o, *members;
        const char *state;

        o = json_object_from_file(path);
        if (!o)
                return -EBADMSG;
        state = json_get_string(o, "state");
        r.state = state && streq(state, "blocked") ? GROUP_BLOCKED : GROUP_VFIO_READY;
        r.group = (unsigned)json_get_int(o, "group", 0);
        r.owner = strdup_or_null(json_get_string(o, "owner"));
        if (json_object_object_get_ex(o, "members", &members) && json_object_is_type(members, json_type_array))
                for (size_t i = 0; i < json_object_array_length(members); i++) {
                        json_object *member = json_object_array_get_idx(members, i);
                        MemberRecord *m = array_append(&r.members, &r.n_members, sizeof(MemberRecord));
                        const char *address = json_get_string(member, "address");

                        if (!m || !address) {
                                group_record_done(&r);
                                json_object_put(o);
                                return m ? -EBADMSG : -ENOMEM;
                        }
                        m->address = strdup(address);
                        m->vendor_id = json_get_int(member, "vendor_id", -1);
                        m->device_id = json_get_int(member, "device_id", -1);
                        m->driver = strdup_or_null(json_get_string(member, "driver"));
                        m->override = strdup_or_null(json_get_string(member, "driver_override"));
                }
        json_object_put(o);
        *ret = r;
        return 0;
}

int group_records_open(const char *dir, GroupRecords **ret) {
        _cleanup_(group_records_freep) GroupRecords *rs = calloc(1, sizeof(*rs));
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int fd = -1;

        if (!rs || !(rs->dir = strdup(dir)))
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && read_dir_at(fd, ".", &names, NULL) >= 0)
                for (char **name = names; *name; name++) {
                        _cleanup_(freep) char *path = NULL;
                        GroupRecord r, *slot;

                        if (!strstr(*name, ".json") || strstr(*name, ".tmp"))
                                continue;
                        path = strprintf("%s/%s", dir, *name);
                        if (!path)
                                return -ENOMEM;
                        if (record_load(path, &r) < 0) {
                                log_warning("Ignoring unreadable record %s.", path);
                                continue;
                        }
                        slot = array_append(&rs->records, &rs->n_records, sizeof(GroupRecord));
                        if (!slot) {
                                group_record_done(&r);
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
        FOREACH_ARRAY(r, rs->records, rs->n_records)
                group_record_done(r);
        free(rs->records);
        free(rs->dir);
        free(rs);
        return NULL;
}

GroupRecord *group_records_find(const GroupRecords *rs, const Inventory *inv, const Group *g) {
        FOREACH_ARRAY(r, rs->records, rs->n_records) {
                bool same = r->n_members > 0;

                FOREACH_ARRAY(m, r->members, r->n_members) {
                        const Device *d = inventory_find_device(inv, m->address);

                        if (!d || d->group != (int)g->id || d->vendor_id != m->vendor_id || d->device_id != m->device_id)
                                same = false;
                }
                if (same)
                        return r;
        }
        return NULL;
}

const MemberRecord *group_records_find_blocked_member(const GroupRecords *rs, const Device *d) {
        FOREACH_ARRAY(r, rs->records, rs->n_records) {
                if (r->state != GROUP_BLOCKED)
                        continue;
                FOREACH_ARRAY(m, r->members, r->n_members)
                        if (streq(m->address, d->address) && m->vendor_id == d->vendor_id &&
                            m->device_id == d->device_id)
                                return m;
        }
        return NULL;
}

int group_records_add(GroupRecords *rs, GroupRecord *r) {
        GroupRecord *slot;
        int k;

        k = record_save(rs, r);
        if (k < 0)
                return k;
        slot = array_append(&rs->records, &rs->n_records, sizeof(GroupRecord));
        if (!slot)
                return -ENOMEM;
        *slot = *r;
        *r = (GroupRecord){};
        return 0;
}

void group_records_forget(GroupRecords *rs, GroupRecord *r) {
        size_t i = (size_t)(r - rs->records);

        record_remove(rs, r);
        group_record_done(r);
        memmove(rs->records + i, rs->records + i + 1, (rs->n_records - i - 1) * sizeof(GroupRecord));
        rs->n_records--;
}
