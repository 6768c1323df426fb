/* The one thread that performs host changes: kernel writes can block for seconds (a driver's
 * remove(), a re-probe), so transactions run here, one at a time, and report back to the loop. */
#pragma once

#include "transaction.h"

struct event_base;

typedef struct Executor Executor;

/* Called on the loop thread when t has run; result is transaction_run()'s, message its message
 * (NULL on success). The callee owns t and message. */
typedef void (*ExecutorDoneFunc)(Transaction *t, int result, char *message, void *userdata);

/* roots must outlive the executor; the thread only reads through its directory fds. */
int executor_new(struct event_base *base, const HostRoots *roots, Executor **ret);
/* Lets the transaction in progress finish, then stops the thread; queued ones, which have not
 * touched the host, get their done callback with -ECANCELED. */
Executor *executor_free(Executor *e);
static inline void executor_freep(Executor **e) {
        executor_free(*e);
}

/* Queues t (ownership passes to the executor). -EAGAIN when max_queued transactions wait. */
int executor_submit(Executor *e, Transaction *t, ExecutorDoneFunc done, void *userdata);
unsigned executor_n_queued(const Executor *e);
void executor_set_max_queued(Executor *e, unsigned max_queued);
