/* Windowed rate limiting of log lines, so a hostile client cannot flood the journal. */
#include "ratelimit.h"

#include <time.h>

uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

bool ratelimit_below(RateLimit *rl, uint64_t now) {
        if (rl->begin_usec == 0 || now - rl->begin_usec >= rl->interval_usec) {
                rl->begin_usec = now;
                rl->n = 0;
        }
        if (rl->n < rl->burst) {
                rl->n++;
                return true;
        }
        rl->suppressed++;
        return false;
}

uint64_t ratelimit_take_suppressed(RateLimit *rl) {
        uint64_t n = rl->suppressed;

        rl->suppressed = 0;
        return n;
}
