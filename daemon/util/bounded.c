/* A call on a detached thread that the caller waits for with a time limit. */
#include "bounded.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"

typedef struct BoundedCall {
        BoundedFunc fn;
        void *arg;
        void (*free_arg)(void *arg);
        char *what;
        uint64_t started_usec;
        pthread_mutex_t lock;
        pthread_cond_t finished; /* CLOCK_MONOTONIC */
        bool done;                /* guarded by lock */
        bool abandoned;           /* guarded by lock: the caller stopped waiting */
        int result;               /* guarded by lock */
        atomic_int refs;          /* the caller and the thread; the last one frees */
} BoundedCall;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void call_unref(BoundedCall *c) {
        if (atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        pthread_cond_destroy(&c->finished);
        pthread_mutex_destroy(&c->lock);
        free(c->what);
        free(c);
}

static void *call_thread(void *userdata) {
        BoundedCall *c = userdata;
        bool late;
        int r;

        r = c->fn(c->arg);
        if (c->free_arg)
                c->free_arg(c->arg);

        pthread_mutex_lock(&c->lock);
        c->done = true;
        c->result = r;
        late = c->abandoned;
        pthread_cond_signal(&c->finished);
        pthread_mutex_unlock(&c->lock);

        if (late)
                log_notice("The kernel returned from '%s' after %.1f s, after iommud had given up on it: %s.",
                           c->what ?: "?", (double)(now_usec() - c->started_usec) / 1e6,
                           r < 0 ? strerror(-r) : "success");
        call_unref(c);
        return NULL;
}

int run_bounded(BoundedFunc fn, void *arg, void (*free_arg)(void *arg), const char *what, uint64_t timeout_usec) {
        pthread_condattr_t attr;
        pthread_attr_t thread_attr;
        pthread_t thread;
        struct timespec deadline;
        BoundedCall *c;
        uint64_t until;
        int r;

        if (timeout_usec == 0) {
                r = fn(arg);
                if (free_arg)
                        free_arg(arg);
                return r;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                if (free_arg)
                        free_arg(arg);
                return -ENOMEM;
        }
        c->fn = fn;
        c->arg = arg;
        c->free_arg = free_arg;
        c->what = what ? strdup(what) : NULL;
        c->started_usec = now_usec();
        atomic_init(&c->refs, 2);
        pthread_mutex_init(&c->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->finished, &attr);
        pthread_condattr_destroy(&attr);

        pthread_attr_init(&thread_attr);
        pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&thread, &thread_attr, call_thread, c);
        pthread_attr_destroy(&thread_attr);
        if (r < 0) {
                if (free_arg)
                        free_arg(arg);
                atomic_store(&c->refs, 1);
                call_unref(c);
                return r;
        }

        until = c->started_usec + timeout_usec;
        deadline = (struct timespec){ .tv_sec = (time_t)(until / 1000000), .tv_nsec = (long)(until % 1000000) * 1000 };
        pthread_mutex_lock(&c->lock);
        while (!c->done)
                if (pthread_cond_timedwait(&c->finished, &c->lock, &deadline) == ETIMEDOUT)
                        break;
        if (c->done)
                r = c->result;
        else {
                c->abandoned = true;
                r = BOUNDED_PENDING;
        }
        pthread_mutex_unlock(&c->lock);
        call_unref(c);
        return r;
}
