/* Runs an sd_bus connection on the daemon's libevent loop. */
#pragma once

typedef struct sd_bus sd_bus;
struct event_base;

typedef struct BusLibevent BusLibevent;

/* Called once when the connection is lost or processing fails for good; the bus is no longer
 * watched afterwards. */
typedef void (*BusLibeventDisconnectFunc)(BusLibevent *b, int error, void *userdata);

/* Watches the bus's fd and timeout on base and dispatches its messages. Takes a reference on bus. */
int bus_libevent_attach(struct event_base *base, sd_bus *bus, BusLibeventDisconnectFunc on_disconnect,
                        void *userdata, BusLibevent **ret);
BusLibevent *bus_libevent_free(BusLibevent *b);
static inline void bus_libevent_freep(BusLibevent **b) {
        bus_libevent_free(*b);
}

/* To be called after sending on the bus outside of a dispatch (signals emitted from a Manager
 * event): a message that did not fit into the socket needs write readiness watched. */
void bus_libevent_rearm(BusLibevent *b);
