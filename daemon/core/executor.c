/* A worker thread with a queue; results come back to the event loop through a pipe. */
#include "executor.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

typedef struct Job {
        Transaction *transaction;
        ExecutorDoneFunc done;
        void *userdata;
        int result;
        char *message;
        struct Job *next;
} Job;

struct Executor {
        const HostRoots *roots;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        Job *queue_head, *queue_tail; /* guarded by lock */
        unsigned n_queued;            /* guarded by lock */
        unsigned max_queued;
        bool stopping;                /* guarded by lock */
        int pipe[2];                  /* finished Job pointers, worker -> loop */
        struct event *pipe_event;
};

static void *worker(void *userdata) {
        Executor *e = userdata;

        for (;;) {
                Job *job;

                pthread_mutex_lock(&e->lock);
                while (!e->queue_head && !e->stopping)
                        pthread_cond_wait(&e->wake, &e->lock);
                if (e->stopping) {
                        pthread_mutex_unlock(&e->lock);
                        return NULL;
                }
                job = e->queue_head;
                e->queue_head = job->next;
                if (!e->queue_head)
                        e->queue_tail = NULL;
                e->n_queued--;
                pthread_mutex_unlock(&e->lock);

                job->result = transaction_run(job->transaction, e->roots, &job->message);

                /* A pointer is written atomically to a pipe (less than PIPE_BUF). */
                if (write(e->pipe[1], &job, sizeof(job)) != sizeof(job))
                        log_error_errno(errno, "Executor: cannot hand a finished operation to the loop: %m");
        }
}

static void on_pipe_readable(evutil_socket_t fd, short what, void *userdata) {
        Job *job;

        while (read(fd, &job, sizeof(job)) == sizeof(job)) {
                job->done(job->transaction, job->result, job->message, job->userdata);
                free(job);
        }
}

int executor_new(struct event_base *base, const HostRoots *roots, Executor **ret) {
        Executor *e;
        int r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->roots = roots;
        e->pipe[0] = e->pipe[1] = -1;
        pthread_mutex_init(&e->lock, NULL);
        pthread_cond_init(&e->wake, NULL);

        if (pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                executor_free(e);
                return r;
        }
        e->pipe_event = event_new(base, e->pipe[0], EV_READ | EV_PERSIST, on_pipe_readable, e);
        if (!e->pipe_event || event_add(e->pipe_event, NULL) < 0) {
                executor_free(e);
                return -ENOMEM;
        }
        r = -pthread_create(&e->thread, NULL, worker, e);
        if (r < 0) {
                executor_free(e);
                return r;
        }
        e->thread_started = true;
        *ret = e;
        return 0;
}

Executor *executor_free(Executor *e) {
        if (!e)
                return NULL;
        if (e->thread_started) {
                pthread_mutex_lock(&e->lock);
                e->stopping = true;
                pthread_cond_signal(&e->wake);
                pthread_mutex_unlock(&e->lock);
                pthread_join(e->thread, NULL);
        }
        /* Queued transactions never touched the host: tell their owners they were cancelled. */
        for (Job *j = e->queue_head, *next; j; j = next) {
                next = j->next;
                j->done(j->transaction, -ECANCELED, NULL, j->userdata);
                free(j);
        }
        if (e->pipe_event)
                event_free(e->pipe_event);
        /* A job that finished after the loop's last look is still in the pipe: hand it over. */
        if (e->pipe[0] >= 0)
                on_pipe_readable(e->pipe[0], EV_READ, e);
        closep(&e->pipe[0]);
        closep(&e->pipe[1]);
        pthread_cond_destroy(&e->wake);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return NULL;
}

int executor_submit(Executor *e, Transaction *t, ExecutorDoneFunc done, void *userdata) {
        Job *job;

        pthread_mutex_lock(&e->lock);
        if (e->max_queued > 0 && e->n_queued >= e->max_queued) {
                pthread_mutex_unlock(&e->lock);
                return -EAGAIN;
        }
        pthread_mutex_unlock(&e->lock);

        job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        job->transaction = t;
        job->done = done;
        job->userdata = userdata;

        pthread_mutex_lock(&e->lock);
        if (e->queue_tail)
                e->queue_tail->next = job;
        else
                e->queue_head = job;
        e->queue_tail = job;
        e->n_queued++;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        return 0;
}

unsigned executor_n_queued(const Executor *e) {
        unsigned n;

        pthread_mutex_lock((pthread_mutex_t *)&e->lock);
        n = e->n_queued;
        pthread_mutex_unlock((pthread_mutex_t *)&e->lock);
        return n;
}

void executor_set_max_queued(Executor *e, unsigned max_queued) {
        e->max_queued = max_queued;
}
