/* The operation history: JSON lines appended to <state>/history.jsonl (one line written at once, then
 * fdatasync), rotated to history.1.jsonl when full. A line torn by a crash fails to parse and is
 * skipped; every other line stands on its own. */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

#define CURRENT "history.jsonl"
#define PREVIOUS "history.1.jsonl"

struct History {
        int dir_fd;
        int fd; /* CURRENT, O_APPEND */
        unsigned n_lines, max_lines;
        uint64_t max_id;
        uint64_t *unfinished;
        size_t n_unfinished;
};

static const char *const result_names[_OPERATION_RESULT_MAX] = {
        [OPERATION_RESULT_DONE] = "done",
        [OPERATION_RESULT_DRY_RUN] = "dry-run",
        [OPERATION_RESULT_REFUSED] = "refused",
        [OPERATION_RESULT_FAILED] = "failed",
        [OPERATION_RESULT_ROLLBACK_FAILED] = "rollback-failed",
        [OPERATION_RESULT_CANCELLED] = "cancelled",
        [OPERATION_RESULT_CRASH_ROLLED_BACK] = "rolled-back-after-crash",
        [OPERATION_RESULT_CRASH_KEPT] = "crashed-rollback-failed",
        [OPERATION_RESULT_INTERRUPTED] = "interrupted",
        [OPERATION_RESULT_RUNNING] = "running",
};

const char *operation_result_to_string(OperationResult r) {
        return (unsigned)r < _OPERATION_RESULT_MAX ? result_names[r] : NULL;
}

int operation_result_from_string(const char *s) {
        for (int r = 0; s && r < _OPERATION_RESULT_MAX; r++)
                if (strcmp(result_names[r], s) == 0)
                        return r;
        return -EINVAL;
}

void history_entry_done(HistoryEntry *e) {
        free(e->operation);
        free(e->argument);
        free(e->peer);
        strv_free(e->steps);
        free(e->message);
        *e = (HistoryEntry){};
}

void history_entries_free(HistoryEntry *entries, size_t n) {
        FOREACH_ARRAY(e, entries, n)
                history_entry_done(e);
        free(entries);
}

/* ---- lines ------------------------------------------------------------------------------------ */

static json_object *entry_to_json(const HistoryEntry *e, const char *event) {
        json_object *o = json_object_new_object(), *steps = json_object_new_array();

        json_object_object_add(o, "event", json_object_new_string(event));
        json_object_object_add(o, "id", json_object_new_uint64(e->id));
        json_object_object_add(o, "time_usec", json_object_new_uint64(e->started_usec));
        json_object_object_add(o, "operation", json_string_or_null(e->operation));
        json_object_object_add(o, "group", json_object_new_int64(e->group));
        json_object_object_add(o, "argument", json_string_or_null(e->argument));
        json_object_object_add(o, "peer", json_string_or_null(e->peer));
        json_object_object_add(o, "dry_run", json_object_new_boolean(e->dry_run));
        json_object_object_add(o, "force", json_object_new_boolean(e->force));
        for (char **s = e->steps; s && *s; s++)
                json_object_array_add(steps, json_object_new_string(*s));
        json_object_object_add(o, "steps", steps);
        return o;
}

static void add_end(json_object *o, OperationResult result, const char *message, uint64_t duration_usec) {
        json_object_object_add(o, "result", json_object_new_string(operation_result_to_string(result)));
        json_object_object_add(o, "message", json_string_or_null(message));
        json_object_object_add(o, "duration_usec", json_object_new_uint64(duration_usec));
}

static int fsync_dir(History *h) {
        return fsync(h->dir_fd) < 0 ? -errno : 0;
}

static int open_current(History *h) {
        h->fd = openat(h->dir_fd, CURRENT, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        return h->fd < 0 ? -errno : 0;
}

/* The current file becomes the previous one (replacing it) and a new one starts. */
static int rotate(History *h) {
        int r;

        if (renameat(h->dir_fd, CURRENT, h->dir_fd, PREVIOUS) < 0)
                return -errno;
        close(h->fd);
        h->n_lines = 0;
        r = open_current(h);
        if (r < 0)
                return r;
        return fsync_dir(h);
}

/* One line in one write(): a crash leaves it whole or torn, never mixed with another. */
static int append(History *h, json_object *o, bool sync) {
        _cleanup_(freep) char *line = NULL;
        const char *text;
        size_t len;
        ssize_t n;
        int r;

        if (h->fd < 0)
                return -EROFS;

        if (h->n_lines >= h->max_lines) {
                r = rotate(h);
                if (r < 0)
                        return log_error_errno(r, "Cannot rotate the operation history: %m");
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        line = strprintf("%s\n", text);
        if (!line)
                return -ENOMEM;
        len = strlen(line);
        n = write(h->fd, line, len);
        if (n < 0)
                return log_error_errno(errno, "Cannot write the operation history: %m");
        if ((size_t)n != len)
                return log_error_errno(EIO, "Short write to the operation history.");
        h->n_lines++;
        if (sync && fdatasync(h->fd) < 0)
                return log_error_errno(errno, "Cannot sync the operation history: %m");
        return 0;
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct Lines {
        json_object **items;
        size_t n;
} Lines;

static void lines_done(Lines *l) {
        FOREACH_ARRAY(o, l->items, l->n)
                json_object_put(*o);
        free(l->items);
}

/* Every parseable line of a file, in order; a missing file has none. */
static int read_lines(int dir_fd, const char *name, Lines *lines, unsigned *ret_n_lines, bool *ret_torn) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0;
        ssize_t n;
        int fd;

        if (dir_fd < 0) /* no state directory: no history */
                return 0;
        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        f = fdopen(fd, "r");
        if (!f) {
                close(fd);
                return -errno;
        }
        while ((n = getline(&buf, &size, f)) > 0) {
                json_object *o, **slot;

                if (ret_n_lines)
                        (*ret_n_lines)++;
                if (ret_torn)
                        *ret_torn = buf[n - 1] != '\n';
                o = json_tokener_parse(buf);
                if (!o || !json_object_is_type(o, json_type_object)) {
                        json_object_put(o);
                        log_debug("Skipping a torn or damaged line of the operation history.");
                        continue;
                }
                slot = array_append(&lines->items, &lines->n, sizeof(*slot));
                if (!slot) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                *slot = o;
        }
        return 0;
}

static uint64_t get_u64(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static char *dup_string(json_object *o, const char *key, bool *oom) {
        const char *s = json_get_string(o, key);
        char *c;

        if (!s)
                return NULL;
        c = strdup(s);
        if (!c)
                *oom = true;
        return c;
}

static void apply_end(HistoryEntry *e, json_object *o, bool *oom) {
        int r = operation_result_from_string(json_get_string(o, "result"));

        e->result = r >= 0 ? (OperationResult)r : OPERATION_RESULT_INTERRUPTED;
        free(e->message);
        e->message = dup_string(o, "message", oom);
        e->duration_usec = get_u64(o, "duration_usec");
}

static int entry_from_json(json_object *o, HistoryEntry *ret) {
        json_object *steps;
        bool oom = false;
        size_t n = 0;
        HistoryEntry e = {
                .id = get_u64(o, "id"),
                .group = (unsigned)get_u64(o, "group"),
                .started_usec = get_u64(o, "time_usec"),
                .dry_run = get_bool(o, "dry_run"),
                .force = get_bool(o, "force"),
                .result = OPERATION_RESULT_RUNNING,
        };

        e.operation = dup_string(o, "operation", &oom);
        e.argument = dup_string(o, "argument", &oom);
        e.peer = dup_string(o, "peer", &oom);
        e.steps = calloc(1, sizeof(char *));
        if (!e.steps)
                oom = true;
        if (json_object_object_get_ex(o, "steps", &steps) && json_object_is_type(steps, json_type_array))
                for (size_t i = 0; !oom && i < json_object_array_length(steps); i++) {
                        const char *s = json_object_get_string(json_object_array_get_idx(steps, i));

                        if (s && strv_push_dup(&e.steps, &n, s) < 0)
                                oom = true;
                }
        if (streq(json_get_string(o, "event") ?: "", "entry"))
                apply_end(&e, o, &oom);
        if (oom) {
                history_entry_done(&e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static int cmp_entry_id(const void *a, const void *b) {
        const HistoryEntry *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

/* Starts and whole entries become entries, ends complete them: sorted by id. */
static int build_entries(const Lines *lines, HistoryEntry **ret, size_t *ret_n) {
        HistoryEntry *entries = NULL;
        size_t n = 0;
        bool oom = false;
        int r;

        FOREACH_ARRAY(o, lines->items, lines->n) {
                const char *event = json_get_string(*o, "event") ?: "";
                HistoryEntry *e;

                if (!streq(event, "start") && !streq(event, "entry"))
                        continue;
                e = array_append(&entries, &n, sizeof(*e));
                if (!e) {
                        history_entries_free(entries, n);
                        return -ENOMEM;
                }
                r = entry_from_json(*o, e);
                if (r < 0) {
                        history_entries_free(entries, n);
                        return r;
                }
        }
        if (n > 1)
                qsort(entries, n, sizeof(*entries), cmp_entry_id);
        FOREACH_ARRAY(o, lines->items, lines->n) {
                HistoryEntry key = { .id = get_u64(*o, "id") }, *e;

                if (!streq(json_get_string(*o, "event") ?: "", "end"))
                        continue;
                /* An end whose start was rotated away has nothing left to complete. */
                e = n ? bsearch(&key, entries, n, sizeof(*entries), cmp_entry_id) : NULL;
                if (e)
                        apply_end(e, *o, &oom);
        }
        if (oom) {
                history_entries_free(entries, n);
                return -ENOMEM;
        }
        *ret = entries;
        *ret_n = n;
        return 0;
}

static int read_entries(int dir_fd, HistoryEntry **ret, size_t *ret_n, unsigned *ret_current_lines,
                        bool *ret_torn) {
        Lines lines = {};
        int r;

        r = read_lines(dir_fd, PREVIOUS, &lines, NULL, NULL);
        if (r >= 0)
                r = read_lines(dir_fd, CURRENT, &lines, ret_current_lines, ret_torn);
        if (r >= 0)
                r = build_entries(&lines, ret, ret_n);
        lines_done(&lines);
        return r;
}

int history_list(const History *h, size_t limit, const unsigned *groups, size_t n_groups, HistoryEntry **ret,
                 size_t *ret_n) {
        HistoryEntry *entries = NULL, *out;
        size_t n = 0, n_out = 0;
        int r;

        r = read_entries(h->dir_fd, &entries, &n, NULL, NULL);
        if (r < 0)
                return r;
        out = calloc(n ?: 1, sizeof(*out));
        if (!out) {
                history_entries_free(entries, n);
                return -ENOMEM;
        }
        /* Newest first; what is not taken is freed with the rest. */
        for (size_t i = n; i-- > 0 && (limit == 0 || n_out < limit);) {
                bool match = n_groups == 0;

                for (size_t k = 0; !match && k < n_groups; k++)
                        match = groups[k] == entries[i].group;
                if (!match)
                        continue;
                out[n_out++] = entries[i];
                entries[i] = (HistoryEntry){};
        }
        history_entries_free(entries, n);
        *ret = out;
        *ret_n = n_out;
        return 0;
}

/* ---- open and write ------------------------------------------------------------------------------ */

int history_open(const char *dir, unsigned max_lines, History **ret) {
        _cleanup_(history_freep) History *h = NULL;
        HistoryEntry *entries = NULL;
        size_t n = 0;
        bool torn = false;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->fd = -1;
        h->max_lines = max_lines ?: HISTORY_MAX_LINES;
        h->dir_fd = -1;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                /* A state directory that does not exist on a file system iommud cannot write: the
                 * daemon serves reads only, with an empty history. */
                if (errno == EROFS || errno == EACCES || errno == EPERM) {
                        *ret = TAKE_PTR(h);
                        return 0;
                }
                return -errno;
        }
        h->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (h->dir_fd < 0)
                return -errno;

        r = read_entries(h->dir_fd, &entries, &n, &h->n_lines, &torn);
        if (r < 0)
                return r;
        FOREACH_ARRAY(e, entries, n) {
                if (e->id > h->max_id)
                        h->max_id = e->id;
                if (e->result == OPERATION_RESULT_RUNNING) {
                        uint64_t *slot = array_append(&h->unfinished, &h->n_unfinished, sizeof(*slot));

                        if (!slot) {
                                history_entries_free(entries, n);
                                return -ENOMEM;
                        }
                        *slot = e->id;
                }
        }
        history_entries_free(entries, n);

        r = open_current(h);
        if (r == -EROFS || r == -EACCES || r == -EPERM) {
                /* A state directory iommud cannot write: it refuses every operation, and the history
                 * is there to be read. */
                *ret = TAKE_PTR(h);
                return 0;
        }
        if (r < 0)
                return r;
        /* The next line must not be glued to the torn end of the last one. */
        if (torn && write(h->fd, "\n", 1) != 1)
                return -errno;
        *ret = TAKE_PTR(h);
        return 0;
}

History *history_free(History *h) {
        if (!h)
                return NULL;
        if (h->fd >= 0)
                close(h->fd);
        if (h->dir_fd >= 0)
                close(h->dir_fd);
        free(h->unfinished);
        free(h);
        return NULL;
}

uint64_t history_max_id(const History *h) {
        return h->max_id;
}

const uint64_t *history_unfinished(const History *h, size_t *ret_n) {
        *ret_n = h->n_unfinished;
        return h->unfinished;
}

int history_start(History *h, const HistoryEntry *e) {
        json_object *o = entry_to_json(e, "start");
        int r;

        if (e->id > h->max_id)
                h->max_id = e->id;
        r = append(h, o, true);
        json_object_put(o);
        return r;
}

int history_finish(History *h, uint64_t id, OperationResult result, const char *message, uint64_t duration_usec) {
        json_object *o = json_object_new_object();
        int r;

        json_object_object_add(o, "event", json_object_new_string("end"));
        json_object_object_add(o, "id", json_object_new_uint64(id));
        add_end(o, result, message, duration_usec);
        r = append(h, o, true);
        json_object_put(o);

        for (size_t i = 0; i < h->n_unfinished; i++)
                if (h->unfinished[i] == id) {
                        h->unfinished[i] = h->unfinished[--h->n_unfinished];
                        break;
                }
        return r;
}

int history_add(History *h, const HistoryEntry *e) {
        json_object *o = entry_to_json(e, "entry");
        int r;

        if (e->id > h->max_id)
                h->max_id = e->id;
        add_end(o, e->result, e->message, e->duration_usec);
        /* Nothing on the host depends on these: a crash may lose the last of them. */
        r = append(h, o, false);
        json_object_put(o);
        return r;
}
