/* Runs an sd_event loop (needed by sd-device monitors) inside the daemon's one libevent loop. */
#pragma once

typedef struct sd_event sd_event;
struct event_base;

typedef struct SdEventBridge SdEventBridge;

/* Watches the sd_event's epoll fd on base and dispatches its sources when it becomes readable.
 * Takes a reference on e. */
int sd_event_bridge_new(struct event_base *base, sd_event *e, SdEventBridge **ret);
SdEventBridge *sd_event_bridge_free(SdEventBridge *b);
static inline void sd_event_bridge_freep(SdEventBridge **b) {
        sd_event_bridge_free(*b);
}
