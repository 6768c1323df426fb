/* Rate limits for log lines a client can trigger: a burst per interval, then one summary. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec; /* length of one window */
        unsigned burst;         /* events let through per window */
        uint64_t begin_usec;    /* start of the current window */
        unsigned n;             /* events in the current window */
        uint64_t suppressed;    /* events held back since the last summary */
} RateLimit;

#define RATELIMIT_INIT(interval, burst_)                                                                    \
        { .interval_usec = (interval), .burst = (burst_) }

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* True if this event may be logged; false if it is counted as suppressed instead. */
bool ratelimit_below(RateLimit *rl, uint64_t now);

/* The number of events suppressed since the last call, which resets it; callers log it as one
 * summary line when it is not 0 (for instance from a timer at the end of the window). */
uint64_t ratelimit_take_suppressed(RateLimit *rl);
