/* Running a call that may never return (a kernel write that blocks in a driver) so that the caller
 * can give up on it after a bound and go on. */
#pragma once

#include <errno.h>
#include <stdint.h>

/* What runs on the thread; its return value is the call's result (>= 0 or -errno). */
typedef int (*BoundedFunc)(void *arg);

/* The result run_bounded() gives when the bound passed first: the call goes on by itself. */
#define BOUNDED_PENDING (-EINPROGRESS)

/* Runs fn(arg) on a thread of its own and waits at most timeout_usec (0: without bound, on the
 * caller's thread) for its result. Ownership of arg passes to the call in every case: free_arg(arg)
 * runs once fn has returned, on whichever thread is last. When the bound passes first the result is
 * BOUNDED_PENDING, the thread is left to finish whenever the kernel lets it, and when it does it logs
 * at notice that 'what' returned late, with its result. -errno when the thread cannot be started (fn
 * did not run). */
int run_bounded(BoundedFunc fn, void *arg, void (*free_arg)(void *arg), const char *what, uint64_t timeout_usec);
