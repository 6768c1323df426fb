/* Transactions: steps with undo, an intent journal (fsync, rename, directory fsync), recovery. */
#include "transaction.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "host-usage.h"
#include "inventory.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "modules.h"
#include "string-util.h"
#include "strv.h"
#include "sysfs-write.h"

/* How long a bind or a /dev/vfio node may take to show after the write that causes it (generous:
 * emulated guests are slow, and the operation's own deadline still bounds the whole). */
#define SETTLE_TIMEOUT_MS 10000
#define SETTLE_POLL_MS 10

static const char *const step_kind_names[_STEP_KIND_MAX] = {
        [STEP_SET_OVERRIDE] = "set-override", [STEP_UNBIND] = "unbind",     [STEP_PROBE] = "probe",
        [STEP_WRITE_TYPE] = "write-type",     [STEP_WAIT_VFIO] = "wait-vfio", [STEP_LOAD_MODULE] = "load-module",
        [STEP_SET_NUMVFS] = "set-numvfs",
        [STEP_LOAD_DRIVER] = "load-driver",
};

uint64_t transaction_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

Transaction *transaction_new(uint64_t id, const char *operation, unsigned group) {
        Transaction *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->id = id;
        t->group = group;
        t->operation = strdup(operation);
        if (!t->operation)
                return transaction_free(t);
        return t;
}

Transaction *transaction_free(Transaction *t) {
        if (!t)
                return NULL;
        FOREACH_ARRAY(s, t->steps, t->n_steps) {
                free(s->device);
                free(s->value);
                free(s->previous);
        }
        free(t->steps);
        free(t->operation);
        free(t->journal_dir);
        free(t);
        return NULL;
}

static char *strdup_or_null(const char *s, bool *oom) {
        char *c;

        if (!s)
                return NULL;
        c = strdup(s);
        if (!c)
                *oom = true;
        return c;
}

int transaction_add(Transaction *t, StepKind kind, const char *device, const char *value, const char *previous) {
        bool oom = false;
        Step *s;

        s = array_append(&t->steps, &t->n_steps, sizeof(Step));
        if (!s)
                return -ENOMEM;
        s->kind = kind;
        s->device = strdup_or_null(device, &oom);
        s->value = strdup_or_null(value, &oom);
        s->previous = strdup_or_null(previous, &oom);
        return oom ? -ENOMEM : 0;
}

char *step_describe(const Step *s, unsigned group) {
        switch (s->kind) {
        case STEP_SET_OVERRIDE:
                return s->value ? strprintf("set driver_override of %s to %s", s->device, s->value)
                                : strprintf("clear driver_override of %s", s->device);
        case STEP_UNBIND:
                return strprintf("unbind %s from %s", s->device, s->value);
        case STEP_PROBE:
                return strprintf("probe %s and check it binds to %s", s->device, s->value);
        case STEP_WRITE_TYPE:
                return strprintf("write %s to the type of group %u (was %s)", s->value, group, s->previous ?: "?");
        case STEP_WAIT_VFIO:
                return strprintf("wait for /dev/vfio/%u", group);
        case STEP_LOAD_MODULE:
                return strprintf("load module %s", s->value);
        case STEP_LOAD_DRIVER:
                return strprintf("load the module of driver %s for %s", s->value, s->device);
        case STEP_SET_NUMVFS:
                return streq(s->value, "0")
                               ? strprintf("disable SR-IOV on %s: its %s virtual functions are lost", s->device,
                                           s->previous ?: "?")
                               : strprintf("enable %s SR-IOV virtual functions on %s", s->value, s->device);
        default:
                return NULL;
        }
}

/* ---- journal --------------------------------------------------------------------------------- */

static char *journal_path(const Transaction *t, const char *suffix) {
        return strprintf("%s/%llu.json%s", t->journal_dir, (unsigned long long)t->id, suffix);
}

char *transaction_journal_path(const Transaction *t) {
        return t->journal_dir ? journal_path(t, "") : NULL;
}

/* The record must be on disk before the step it announces touches the host. */
static int journal_write(const Transaction *t) {
        _cleanup_(freep) char *path = NULL;
        json_object *o, *steps;
        int r;

        if (!t->journal_dir)
                return 0;
        path = journal_path(t, "");
        if (!path)
                return -ENOMEM;

        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_uint64(t->id));
        json_object_object_add(o, "operation", json_object_new_string(t->operation));
        json_object_object_add(o, "group", json_object_new_int((int)t->group));
        json_object_object_add(o, "next", json_object_new_int((int)t->next));
        steps = json_object_new_array();
        FOREACH_ARRAY(s, t->steps, t->n_steps) {
                json_object *step = json_object_new_object();

                json_object_object_add(step, "kind", json_object_new_string(step_kind_names[s->kind]));
                json_object_object_add(step, "device", json_string_or_null(s->device));
                json_object_object_add(step, "value", json_string_or_null(s->value));
                json_object_object_add(step, "previous", json_string_or_null(s->previous));
                json_object_array_add(steps, step);
        }
        json_object_object_add(o, "steps", steps);
        r = write_file_durable(path, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return r;
}

static int journal_remove(const Transaction *t) {
        _cleanup_(freep) char *path = NULL;

        if (!t->journal_dir)
                return 0;
        path = journal_path(t, "");
        if (!path)
                return -ENOMEM;
        return unlink_durable(path);
}

/* What each kind of step cannot do without; a journal record that lacks it was not written by
 * iommud (or is damaged) and is not acted on. */
static const struct {
        bool device, value;
} step_needs[_STEP_KIND_MAX] = {
        [STEP_SET_OVERRIDE] = { .device = true },               /* no value: clear the override */
        [STEP_UNBIND] = { .device = true, .value = true },
        [STEP_PROBE] = { .device = true, .value = true },
        [STEP_WRITE_TYPE] = { .value = true },
        [STEP_WAIT_VFIO] = {},
        [STEP_LOAD_MODULE] = { .value = true },
        [STEP_SET_NUMVFS] = { .device = true, .value = true },
        [STEP_LOAD_DRIVER] = { .device = true, .value = true },
};

static int step_kind_from_string(const char *s) {
        for (int k = 0; k < _STEP_KIND_MAX; k++)
                if (s && strcmp(step_kind_names[k], s) == 0)
                        return k;
        return -EINVAL;
}

static int journal_load(const char *dir, const char *path, Transaction **ret) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        json_object *o, *v, *steps;
        int r = -EBADMSG;

        o = json_object_from_file(path);
        if (!o)
                return -EBADMSG;
        if (!json_object_object_get_ex(o, "steps", &steps) || !json_object_is_type(steps, json_type_array))
                goto done;

        t = transaction_new(json_object_object_get_ex(o, "id", &v) ? json_object_get_uint64(v) : 0,
                            json_get_string(o, "operation") ?: "?",
                            json_object_object_get_ex(o, "group", &v) ? (unsigned)json_object_get_int(v) : 0);
        if (!t) {
                r = -ENOMEM;
                goto done;
        }
        t->next = json_object_object_get_ex(o, "next", &v) ? (size_t)json_object_get_int(v) : 0;
        for (size_t i = 0; i < json_object_array_length(steps); i++) {
                json_object *step = json_object_array_get_idx(steps, i);
                int kind = step_kind_from_string(json_get_string(step, "kind"));
                const char *device = json_get_string(step, "device"), *value = json_get_string(step, "value");

                /* Not r of the step before: that was 0, and the caller took it for a record. */
                r = -EBADMSG;
                if (kind < 0 || (step_needs[kind].device && !device) || (step_needs[kind].value && !value))
                        goto done;
                r = transaction_add(t, kind, device, value, json_get_string(step, "previous"));
                if (r < 0)
                        goto done;
        }
        if (t->next > t->n_steps)
                t->next = t->n_steps;
        t->journal_dir = strdup(dir);
        if (!t->journal_dir) {
                r = -ENOMEM;
                goto done;
        }
        *ret = TAKE_PTR(t);
        r = 0;
done:
        json_object_put(o);
        return r;
}

/* "17.json" -> 17; -EINVAL for any other name (".tmp" files, strangers). */
static int journal_name_to_id(const char *name, uint64_t *ret) {
        char *end;
        unsigned long long id;

        if (name[0] < '0' || name[0] > '9')
                return -EINVAL;
        errno = 0;
        id = strtoull(name, &end, 10);
        if (errno != 0 || strcmp(end, ".json") != 0)
                return -EINVAL;
        *ret = id;
        return 0;
}

int transaction_journal_max_id(const char *journal_dir, uint64_t *ret) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int dir_fd = -1;
        uint64_t max = 0;

        dir_fd = open(journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                if (errno != ENOENT)
                        return -errno;
        } else if (read_dir_at(dir_fd, ".", &names, NULL) < 0)
                return -errno ?: -EIO;
        for (char **name = names; name && *name; name++) {
                _cleanup_(freep) char *base = strdup(*name);
                char *tmp = base ? strstr(base, ".json.tmp") : NULL;
                uint64_t id;

                if (!base)
                        return -ENOMEM;
                /* A half-written record's id counts too: its writer may have used it. */
                if (tmp)
                        tmp[strlen(".json")] = 0;
                if (journal_name_to_id(base, &id) >= 0 && id > max)
                        max = id;
        }
        *ret = max;
        return 0;
}

/* ---- steps ----------------------------------------------------------------------------------- */

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

        nanosleep(&ts, NULL);
}

/* Polls until the device's driver is 'expected' (NULL: unbound); the kernel binds synchronously in
 * most cases, but deferred probes and udev rules may take a moment. Any other driver ends the wait
 * at once with -EBUSY when fail_on_other is set: no wait makes the kernel change its mind. */
static int wait_for_driver(const HostRoots *roots, const char *device, const char *expected, bool fail_on_other,
                           char **ret_actual) {
        for (unsigned waited = 0;; waited += SETTLE_POLL_MS) {
                _cleanup_(freep) char *driver = NULL;
                int r;

                r = pci_read_driver(roots, device, &driver);
                if (r < 0)
                        return r;
                if ((!expected && !driver) || (expected && driver && strcmp(expected, driver) == 0))
                        return 0;
                if (fail_on_other && driver) {
                        *ret_actual = TAKE_PTR(driver);
                        return -EBUSY;
                }
                if (waited >= SETTLE_TIMEOUT_MS) {
                        *ret_actual = TAKE_PTR(driver);
                        return -ETIMEDOUT;
                }
                sleep_ms(SETTLE_POLL_MS);
        }
}

/* The kernel takes a new non-zero count only after 0; nothing is written when the count is right. */
static int set_numvfs(const HostRoots *roots, const char *device, const char *count, uint64_t bound) {
        _cleanup_(freep) char *now = NULL;
        int r;

        r = pci_read_sriov_numvfs(roots, device, &now);
        if (r < 0)
                return r;
        if (streq(now, count))
                return 0;
        if (!streq(now, "0") && !streq(count, "0")) {
                r = pci_write_sriov_numvfs(roots, device, "0", bound);
                if (r < 0)
                        return r;
        }
        return pci_write_sriov_numvfs(roots, device, count, bound);
}

static int do_step(Transaction *t, Step *s, const HostRoots *roots, char **ret_detail) {
        _cleanup_(freep) char *driver = NULL, *driver_after = NULL, *vfio = NULL;
        uint64_t bound = t->step_timeout_usec;
        int r;

        switch (s->kind) {
        case STEP_SET_OVERRIDE:
                return pci_write_driver_override(roots, s->device, s->value, bound);

        case STEP_UNBIND:
                r = pci_read_driver(roots, s->device, &driver);
                if (r < 0)
                        return r;
                if (!driver)
                        return 0; /* already unbound: the driver left by itself */
                if (strcmp(driver, s->value) != 0) {
                        *ret_detail = strprintf("%s is bound to %s, not %s", s->device, driver, s->value);
                        return -EBUSY;
                }
                /* Checked before the operation too; a VM may have opened the device since. */
                if (driver_is_vfio(driver)) {
                        int count = pci_device_enable_count(roots, s->device);

                        if (count > 0) {
                                *ret_detail = strprintf("%s is open through VFIO (its PCI enable count is %d): "
                                                        "unbinding it would block until its user lets go",
                                                        s->device, count);
                                return -EBUSY;
                        }
                }
                r = pci_unbind(roots, s->device, s->value, bound);
                if (r < 0)
                        return r;
                r = wait_for_driver(roots, s->device, NULL, false, &driver_after);
                if (r == -ETIMEDOUT)
                        *ret_detail = strprintf("%s is still bound to %s", s->device, driver_after ?: "?");
                return r;

        case STEP_PROBE:
                r = pci_drivers_probe(roots, s->device, bound);
                if (r < 0)
                        return r;
                r = wait_for_driver(roots, s->device, s->value, true, &driver);
                if (r == -EBUSY) {
                        /* Ours to undo: the device was unbound when this step began. */
                        free(s->previous);
                        s->previous = strdup(driver);
                        *ret_detail = strprintf("the kernel bound %s to %s instead of %s", s->device, driver,
                                                s->value);
                } else if (r == -ETIMEDOUT)
                        *ret_detail = strprintf("%s did not bind to %s within %u s (bound: none)", s->device,
                                                s->value, SETTLE_TIMEOUT_MS / 1000);
                return r;

        case STEP_WRITE_TYPE:
                return iommu_group_write_type(roots, t->group, s->value, bound);

        case STEP_WAIT_VFIO:
                vfio = strprintf("dev/vfio/%u", t->group);
                if (!vfio)
                        return -ENOMEM;
                for (unsigned waited = 0; exists_at(roots->dev_fd, vfio) <= 0; waited += SETTLE_POLL_MS) {
                        if (waited >= SETTLE_TIMEOUT_MS) {
                                *ret_detail = strprintf("/dev/vfio/%u did not appear", t->group);
                                return -ETIMEDOUT;
                        }
                        sleep_ms(SETTLE_POLL_MS);
                }
                return 0;

        case STEP_LOAD_MODULE:
                return module_load(roots, s->value, bound, ret_detail);

        case STEP_LOAD_DRIVER:
                return module_load_for_driver(roots, s->device, s->value, bound, ret_detail);

        case STEP_SET_NUMVFS:
                return set_numvfs(roots, s->device, s->value, bound);

        default:
                return -EINVAL;
        }
}

/* Every undo looks at the host first, so undoing a step that never happened (or happened twice) is
 * harmless: recovery cannot know how far an interrupted step got. */
static int undo_step(const Transaction *t, const Step *s, const HostRoots *roots, char **ret_detail) {
        _cleanup_(freep) char *driver = NULL, *type = NULL, *actual = NULL;
        uint64_t bound = t->step_timeout_usec;
        int r;

        switch (s->kind) {
        case STEP_SET_OVERRIDE:
                return pci_write_driver_override(roots, s->device, s->previous, bound);

        case STEP_UNBIND:
                r = pci_read_driver(roots, s->device, &driver);
                if (r < 0)
                        return r;
                /* Bound (to it, or to another driver if the step failed before unbinding): nothing
                 * of ours to undo. */
                if (driver)
                        return 0;
                /* Bind the old driver by naming it in the override; the SET_OVERRIDE step before this
                 * one restores the original override when it is undone next. */
                r = pci_write_driver_override(roots, s->device, s->value, bound);
                if (r < 0)
                        return r;
                r = pci_drivers_probe(roots, s->device, bound);
                if (r < 0)
                        return r;
                r = wait_for_driver(roots, s->device, s->value, false, &actual);
                if (r == -ETIMEDOUT)
                        *ret_detail = strprintf("%s did not bind to %s again", s->device, s->value);
                return r;

        case STEP_PROBE:
                r = pci_read_driver(roots, s->device, &driver);
                if (r < 0)
                        return r;
                if (!driver || !(streq(driver, s->value) || (s->previous && streq(driver, s->previous))))
                        return 0;
                r = pci_unbind(roots, s->device, driver, bound);
                if (r < 0)
                        return r;
                return wait_for_driver(roots, s->device, NULL, false, &actual);

        case STEP_WRITE_TYPE:
                r = iommu_group_read_type(roots, t->group, &type);
                if (r < 0)
                        return r;
                if (!s->previous || streq(type, s->previous))
                        return 0;
                return iommu_group_write_type(roots, t->group, s->previous, bound);

        case STEP_SET_NUMVFS:
                if (!s->previous)
                        return 0;
                return set_numvfs(roots, s->device, s->previous, bound);

        default:
                return 0;
        }
}

/* "30 s", or "250 ms" for bounds that are not whole seconds (tests). */
static char *format_bound(uint64_t usec) {
        return usec % 1000000 == 0 ? strprintf("%llu s", (unsigned long long)(usec / 1000000))
                                   : strprintf("%llu ms", (unsigned long long)(usec / 1000));
}

static char *describe_pending(const Transaction *t, const char *what) {
        _cleanup_(freep) char *bound = format_bound(t->step_timeout_usec), *path = transaction_journal_path(t);

        return strprintf("the kernel did not return from '%s' within %s; the write is still pending; group %u is "
                         "left in state FAILED (its intent record %s is kept for an admin)",
                         what, bound ?: "?", t->group, path ?: "(not journaled)");
}

/* "0000:01:00.0 on e1000e (driver_override none), 0000:01:00.1 unbound (no driver_override)": where
 * every device the transaction touched is now, so that a failure says exactly what is left where. */
static char *describe_devices_now(const Transaction *t, const HostRoots *roots) {
        _cleanup_(strv_freep) char **seen = calloc(1, sizeof(char *));
        char *text = strdup("");
        size_t n = 0;

        if (!seen || !text) {
                free(text);
                return NULL;
        }
        FOREACH_ARRAY(s, t->steps, t->n_steps) {
                _cleanup_(freep) char *driver = NULL, *override = NULL, *item = NULL;
                char *joined;
                int r, k;

                if (!s->device || strv_contains(seen, s->device))
                        continue;
                if (strv_push_dup(&seen, &n, s->device) < 0)
                        break;
                r = pci_read_driver(roots, s->device, &driver);
                k = pci_read_driver_override(roots, s->device, &override);
                item = strprintf("%s %s%s (%s%s)", s->device, r < 0 ? "driver unreadable" : driver ? "on " : "unbound",
                                 r >= 0 && driver ? driver : "", k < 0 ? "driver_override unreadable"
                                                                  : override ? "driver_override "
                                                                             : "no driver_override",
                                 k >= 0 && override ? override : "");
                joined = item ? strprintf("%s%s%s", text, *text ? ", " : "", item) : NULL;
                if (!joined)
                        break;
                free(text);
                text = joined;
        }
        return text;
}

/* Undoes steps next..0; stops at an undo the kernel does not return from, goes on past one that
 * fails (undoing as much as possible). *ret_message says what went wrong. */
static int rollback(Transaction *t, const HostRoots *roots, char **ret_message) {
        size_t last = t->next < t->n_steps ? t->next : t->n_steps - 1;
        int result = 0;

        for (size_t i = last + 1; i-- > 0;) {
                _cleanup_(freep) char *detail = NULL, *what = NULL;
                int r;

                r = undo_step(t, &t->steps[i], roots, &detail);
                if (r == BOUNDED_PENDING) {
                        what = step_describe(&t->steps[i], t->group);
                        free(*ret_message);
                        *ret_message = describe_pending(t, what ?: "?");
                        log_error("Rollback of %s on group %u stopped: %s", t->operation, t->group,
                                  *ret_message ?: "?");
                        t->left_failed = true;
                        return -ETIMEDOUT;
                }
                if (r < 0) {
                        what = step_describe(&t->steps[i], t->group);
                        log_error_errno(r, "Rollback of %s on group %u: undoing '%s' failed: %s", t->operation,
                                        t->group, what ?: "?", detail ?: strerror(-r));
                        if (result == 0) {
                                _cleanup_(freep) char *path = transaction_journal_path(t);

                                *ret_message = strprintf("the rollback failed: undoing '%s' failed: %s; group %u is "
                                                         "left in state FAILED (its intent record %s is kept for "
                                                         "an admin)",
                                                         what ?: "?", detail ?: strerror(-r), t->group,
                                                         path ?: "(not journaled)");
                        }
                        result = r;
                        /* Go on: undo as much as possible; the record stays for the next start. */
                        continue;
                }
                if (result == 0) {
                        t->next = i;
                        (void)journal_write(t);
                }
        }
        if (result < 0) {
                t->left_failed = true;
                return result;
        }
        return journal_remove(t);
}

int transaction_rollback(Transaction *t, const HostRoots *roots, char **ret_message) {
        t->left_failed = false;
        if (t->n_steps == 0)
                return journal_remove(t);
        return rollback(t, roots, ret_message);
}

int transaction_run(Transaction *t, const HostRoots *roots, char **ret_message) {
        _cleanup_(freep) char *path = transaction_journal_path(t);
        int r;

        t->next = 0;
        t->left_failed = false;
        /* Ids never repeat (operation-ids.c); this guards the record of an earlier operation whose
         * rollback failed, whatever happens to the counter. */
        if (path && access(path, F_OK) == 0) {
                *ret_message = strprintf("the intent record %s exists already (an earlier operation's, kept for an "
                                         "admin); nothing was done",
                                         path);
                return -EEXIST;
        }
        r = journal_write(t);
        if (r < 0) {
                *ret_message = strprintf("cannot write the intent journal in %s: %s; nothing was done", t->journal_dir,
                                         strerror(-r));
                (void)journal_remove(t);
                return r;
        }

        for (size_t i = 0; i < t->n_steps; i++) {
                _cleanup_(freep) char *detail = NULL, *what = NULL, *rollback_message = NULL, *now = NULL;
                int k;

                t->next = i;
                r = i > 0 ? journal_write(t) : 0;
                if (r < 0)
                        detail = strprintf("the intent journal cannot be updated: %s", strerror(-r));
                if (r >= 0 && t->deadline_usec > 0 && transaction_now_usec() > t->deadline_usec) {
                        detail = strprintf("the operation ran out of time before this step");
                        r = -ETIMEDOUT;
                }
                if (r >= 0)
                        r = do_step(t, &t->steps[i], roots, &detail);
                if (r == BOUNDED_PENDING) {
                        /* No rollback: undoing around a write the kernel is still doing could fight
                         * it. The record says this step may have happened; recovery undoes it. */
                        what = step_describe(&t->steps[i], t->group);
                        t->left_failed = true;
                        now = describe_devices_now(t, roots);
                        free(detail);
                        detail = describe_pending(t, what ?: "?");
                        *ret_message = strprintf("%s; now: %s", detail ?: "?", now ?: "?");
                        return -ETIMEDOUT;
                }
                if (r < 0) {
                        what = step_describe(&t->steps[i], t->group);
                        /* The other driver a probe bound goes to the record before it is undone. */
                        if (t->steps[i].kind == STEP_PROBE && t->steps[i].previous)
                                (void)journal_write(t);
                        k = rollback(t, roots, &rollback_message);
                        now = describe_devices_now(t, roots);
                        *ret_message = strprintf("step %zu of %zu, '%s', failed: %s; %s; now: %s", i + 1, t->n_steps,
                                                 what ?: "?", detail ?: strerror(-r),
                                                 k < 0 ? rollback_message ?: "the rollback failed"
                                                       : "every step done before it was undone",
                                                 now ?: "?");
                        return r;
                }
                if (t->fault_after_step == i + 1) {
                        t->next = i + 1;
                        (void)journal_write(t);
                        log_notice("Fault injection: killing the daemon after step %zu of %s.", i + 1, t->operation);
                        raise(SIGKILL);
                }
        }

        r = journal_remove(t);
        if (r < 0)
                log_warning_errno(r, "Failed to remove the journal record of operation %llu, ignoring: %m",
                                  (unsigned long long)t->id);
        return 0;
}

int transaction_recover(const char *journal_dir, const HostRoots *roots, uint64_t step_timeout_usec, RecoverFunc cb,
                        void *userdata) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int dir_fd = -1;
        int n = 0, result = 0;

        dir_fd = open(journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (read_dir_at(dir_fd, ".", &names, NULL) < 0)
                return -errno;

        for (char **name = names; *name; name++) {
                _cleanup_(transaction_freep) Transaction *t = NULL;
                _cleanup_(freep) char *path = NULL, *message = NULL;
                RecoveredRecord rec = {};
                int r;

                size_t len = strlen(*name);

                /* Every record, also one whose name is not an id: a stranger is not safe to skip. */
                if (len < 6 || strcmp(*name + len - 5, ".json") != 0)
                        continue;
                path = strprintf("%s/%s", journal_dir, *name);
                if (!path)
                        return -ENOMEM;
                rec.path = path;
                rec.group = -1;
                r = journal_name_to_id(*name, &rec.id) < 0 ? -EBADMSG : journal_load(journal_dir, path, &t);
                if (r < 0) {
                        log_error_errno(r, "Cannot read intent record %s; leaving it for an admin: %m", path);
                        message = strprintf("the intent record %s cannot be read: %s", path, strerror(-r));
                        result = r;
                } else {
                        t->step_timeout_usec = step_timeout_usec;
                        t->id = rec.id; /* the name is what removal uses */
                        rec.group = (int)t->group;
                        rec.operation = t->operation;
                        log_notice("Recovering: rolling back %s on group %u, interrupted at step %zu of %zu.",
                                   t->operation, t->group, t->next + 1, t->n_steps);
                        r = transaction_rollback(t, roots, &message);
                        if (r < 0) {
                                log_error("Recovery of %s on group %u failed: %s", t->operation, t->group,
                                          message ?: "?");
                                result = r;
                        } else
                                n++;
                }
                rec.result = r < 0 ? r : 0;
                rec.message = r < 0 ? message : NULL;
                if (cb)
                        cb(&rec, userdata);
        }
        return result < 0 ? result : n;
}
