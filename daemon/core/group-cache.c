/* A uid's groups (getpwuid_r + getgrouplist) on a worker thread, answers cached on the loop thread. */
#include "group-cache.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authorize.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"

/* Bounds the cache against a flood of distinct uids; the least recently used entry goes first. */
#define MAX_ENTRIES 4096

typedef struct Entry {
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
        bool known;  /* an answer came back */
        bool queued; /* a lookup is queued or running */
        uint64_t used_usec;
} Entry;

/* One answer from the worker. */
typedef struct Answer {
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
        int error; /* 0, or the lookup failed (then the old answer stays, if any) */
} Answer;

struct GroupCache {
        struct event_base *base;
        GroupCacheChanged changed;
        void *userdata;
        Entry *entries;
        size_t n_entries;
        unsigned refresh_sec;
        struct event *refresh_timer;

        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        uid_t *queue; /* guarded by lock */
        size_t n_queue, alloc_queue;
        bool stopping;
        int pipe[2]; /* Answer pointers, worker -> loop */
        struct event *pipe_event;
};

static int lookup_groups(uid_t uid, gid_t **ret, size_t *ret_n) {
        _cleanup_(freep) char *buf = NULL;
        _cleanup_(freep) gid_t *gids = NULL;
        struct passwd pw, *found = NULL;
        size_t size = 1024;
        int r, n = 32;

        for (;;) {
                free(buf);
                buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                r = getpwuid_r(uid, &pw, buf, size, &found);
                if (r != ERANGE || size >= 1024 * 1024)
                        break;
                size *= 4;
        }
        if (r != 0)
                return -r;
        if (!found) {
                /* No user entry (a container's uid, say): it has no groups but its own gid. */
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        for (;;) {
                gid_t *t = reallocarray(gids, (size_t)n, sizeof(gid_t));
                int have = n;

                if (!t)
                        return -ENOMEM;
                gids = t;
                if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &have) >= 0) {
                        *ret = TAKE_PTR(gids);
                        *ret_n = (size_t)have;
                        return 0;
                }
                if (have <= n || have > 65536)
                        return -EIO;
                n = have;
        }
}

static void *worker(void *userdata) {
        GroupCache *c = userdata;

        for (;;) {
                pthread_mutex_lock(&c->lock);
                while (c->n_queue == 0 && !c->stopping)
                        pthread_cond_wait(&c->wake, &c->lock);
                if (c->stopping) {
                        pthread_mutex_unlock(&c->lock);
                        return NULL;
                }
                uid_t uid = c->queue[0];
                memmove(c->queue, c->queue + 1, (c->n_queue - 1) * sizeof(uid_t));
                c->n_queue--;
                pthread_mutex_unlock(&c->lock);

                Answer *a = calloc(1, sizeof(Answer));
                if (!a)
                        continue; /* the entry stays queued and unknown: it denies, never grants */
                a->uid = uid;
                a->error = lookup_groups(uid, &a->gids, &a->n_gids);
                /* A pointer is written atomically to a pipe (less than PIPE_BUF). */
                if (write(c->pipe[1], &a, sizeof(a)) != sizeof(a)) {
                        free(a->gids);
                        free(a);
                }
        }
}

static Entry *entry_find(GroupCache *c, uid_t uid) {
        FOREACH_ARRAY(e, c->entries, c->n_entries)
                if (e->uid == uid)
                        return e;
        return NULL;
}

static void entry_remove(GroupCache *c, Entry *e) {
        free(e->gids);
        *e = c->entries[--c->n_entries];
}

static int queue_lookup(GroupCache *c, Entry *e) {
        int r = 0;

        if (e->queued)
                return 0;
        pthread_mutex_lock(&c->lock);
        if (c->n_queue == c->alloc_queue) {
                size_t a = c->alloc_queue ? c->alloc_queue * 2 : 16;
                uid_t *t = reallocarray(c->queue, a, sizeof(uid_t));
                if (t) {
                        c->queue = t;
                        c->alloc_queue = a;
                } else
                        r = -ENOMEM;
        }
        if (r == 0) {
                c->queue[c->n_queue++] = e->uid;
                pthread_cond_signal(&c->wake);
                e->queued = true;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Takes the worker's answers; apply false only frees them (the cache is going away). */
static bool take_answers(GroupCache *c, bool apply) {
        bool any = false;
        Answer *a;

        while (read(c->pipe[0], &a, sizeof(a)) == sizeof(a)) {
                Entry *e = apply ? entry_find(c, a->uid) : NULL;
                if (e) {
                        e->queued = false;
                        if (a->error == 0) {
                                free(e->gids);
                                e->gids = TAKE_PTR(a->gids);
                                e->n_gids = a->n_gids;
                        } else
                                /* Unknown is never safe: a failed first lookup means no groups. */
                                log_warning_errno(a->error, "Cannot look up the groups of uid %u%s: %m",
                                                  (unsigned)a->uid, e->known ? ", keeping the last answer" : "");
                        e->known = true;
                        any = true;
                }
                free(a->gids);
                free(a);
        }
        return any;
}

static void on_answers(evutil_socket_t fd, short what, void *userdata) {
        GroupCache *c = userdata;

        if (take_answers(c, true) && c->changed)
                c->changed(c->userdata);
}

static void on_refresh(evutil_socket_t fd, short what, void *userdata) {
        GroupCache *c = userdata;
        uint64_t now = now_usec(), stale = 2 * (uint64_t)c->refresh_sec * 1000000;

        for (size_t i = c->n_entries; i > 0; i--) {
                Entry *e = &c->entries[i - 1];
                if (!e->queued && now - e->used_usec > stale)
                        entry_remove(c, e);
                else
                        (void)queue_lookup(c, e);
        }
        group_cache_set_interval(c, c->refresh_sec);
}

void group_cache_set_interval(GroupCache *c, unsigned refresh_sec) {
        struct timeval tv = {.tv_sec = refresh_sec > 0 ? refresh_sec : 1};

        c->refresh_sec = (unsigned)tv.tv_sec;
        evtimer_add(c->refresh_timer, &tv);
}

void group_cache_refresh(GroupCache *c) {
        FOREACH_ARRAY(e, c->entries, c->n_entries)
                (void)queue_lookup(c, e);
}

static Entry *entry_add(GroupCache *c, uid_t uid) {
        if (c->n_entries >= MAX_ENTRIES) {
                Entry *oldest = NULL;
                FOREACH_ARRAY(e, c->entries, c->n_entries)
                        if (!e->queued && (!oldest || e->used_usec < oldest->used_usec))
                                oldest = e;
                if (!oldest)
                        return NULL;
                entry_remove(c, oldest);
        }
        Entry *e = array_append(&c->entries, &c->n_entries, sizeof(Entry));
        if (e)
                *e = (Entry){.uid = uid};
        return e;
}

int group_cache_fill(GroupCache *c, Peer *p) {
        if (p->kind != PEER_UNIX)
                return 0;

        Entry *e = entry_find(c, p->uid);
        if (!e) {
                e = entry_add(c, p->uid);
                if (!e)
                        return 0; /* groups_known stays false: group principals do not match */
        }
        e->used_usec = now_usec();
        if (!e->known) {
                (void)queue_lookup(c, e);
                return 1;
        }
        p->groups = e->gids;
        p->n_groups = e->n_gids;
        p->groups_known = true;
        return 0;
}

GroupCache *group_cache_free(GroupCache *c) {
        if (!c)
                return NULL;
        if (c->thread_started) {
                /* A lookup in progress finishes first (NSS cannot be interrupted). */
                pthread_mutex_lock(&c->lock);
                c->stopping = true;
                pthread_cond_signal(&c->wake);
                pthread_mutex_unlock(&c->lock);
                pthread_join(c->thread, NULL);
        }
        if (c->pipe_event) {
                (void)take_answers(c, false);
                event_free(c->pipe_event);
        }
        if (c->refresh_timer)
                event_free(c->refresh_timer);
        for (int i = 0; i < 2; i++)
                if (c->pipe[i] >= 0)
                        close(c->pipe[i]);
        FOREACH_ARRAY(e, c->entries, c->n_entries)
                free(e->gids);
        free(c->entries);
        free(c->queue);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        free(c);
        return NULL;
}

int group_cache_new(struct event_base *base, unsigned refresh_sec, GroupCacheChanged changed, void *userdata,
                    GroupCache **ret) {
        _cleanup_(group_cache_freep) GroupCache *c = NULL;

        c = calloc(1, sizeof(GroupCache));
        if (!c)
                return -ENOMEM;
        c->base = base;
        c->changed = changed;
        c->userdata = userdata;
        c->pipe[0] = c->pipe[1] = -1;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->wake, NULL);

        if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        c->pipe_event = event_new(base, c->pipe[0], EV_READ | EV_PERSIST, on_answers, c);
        c->refresh_timer = evtimer_new(base, on_refresh, c);
        if (!c->pipe_event || !c->refresh_timer || event_add(c->pipe_event, NULL) < 0)
                return -ENOMEM;
        int r = pthread_create(&c->thread, NULL, worker, c);
        if (r != 0)
                return -r;
        c->thread_started = true;
        group_cache_set_interval(c, refresh_sec);

        *ret = TAKE_PTR(c);
        return 0;
}
