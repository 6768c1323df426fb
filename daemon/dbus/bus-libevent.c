/* sd-bus on libevent: the bus fd watched with the events sd_bus_get_events() asks for, and one
 * timer at the absolute time sd_bus_get_timeout() gives, both re-armed after every dispatch.
 *
 * Not sd_bus_attach_event() plus the sd-event bridge: that bridge only wakes when sd_event's epoll
 * fd is readable, and sd-bus updates its fd interest and timeout in an sd_event prepare callback.
 * Work queued from outside a dispatch (a PropertiesChanged signal emitted from a Manager event that
 * did not fit into the socket, a message re-queued after a polkit answer) would then wait for the
 * next unrelated incoming message. Here every such place re-arms explicitly. */
#include "bus-libevent.h"

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "log.h"
#include "macro.h"

/* Messages dispatched per wakeup before other events get their turn. */
#define DISPATCH_BATCH 64

struct BusLibevent {
        sd_bus *bus;
        struct event_base *base;
        struct event *io, *timer;
        short io_events; /* what io is armed for; 0: not armed */
        BusLibeventDisconnectFunc on_disconnect;
        void *userdata;
        bool dead;
};

static void on_bus_io(evutil_socket_t fd, short what, void *userdata);

static void bus_libevent_stop(BusLibevent *b) {
        event_del(b->io);
        event_del(b->timer);
        b->io_events = 0;
}

static void bus_libevent_fail(BusLibevent *b, int error) {
        b->dead = true;
        bus_libevent_stop(b);
        if (b->on_disconnect)
                b->on_disconnect(b, error, b->userdata);
}

void bus_libevent_rearm(BusLibevent *b) {
        struct timespec now;
        uint64_t until, now_usec;
        short want;
        int events, r;

        if (!b || b->dead)
                return;

        events = sd_bus_get_events(b->bus);
        if (events < 0) {
                bus_libevent_fail(b, events);
                return;
        }
        want = EV_PERSIST | (events & POLLIN ? EV_READ : 0) | (events & POLLOUT ? EV_WRITE : 0);
        if (want != b->io_events) {
                event_del(b->io);
                /* The fd is the same for the bus's lifetime; only the interest changes. */
                if (event_assign(b->io, b->base, sd_bus_get_fd(b->bus), want, on_bus_io, b) < 0 ||
                    event_add(b->io, NULL) < 0) {
                        bus_libevent_fail(b, -ENOMEM);
                        return;
                }
                b->io_events = want;
        }

        r = sd_bus_get_timeout(b->bus, &until);
        if (r < 0) {
                bus_libevent_fail(b, r);
                return;
        }
        if (r == 0 || until == UINT64_MAX) {
                event_del(b->timer);
                return;
        }
        /* sd-bus answers in CLOCK_MONOTONIC, absolute; libevent wants a relative timeout. */
        clock_gettime(CLOCK_MONOTONIC, &now);
        now_usec = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
        until = until > now_usec ? until - now_usec : 0;
        struct timeval tv = {.tv_sec = until / 1000000, .tv_usec = until % 1000000};
        if (event_add(b->timer, &tv) < 0)
                bus_libevent_fail(b, -ENOMEM);
}

static void bus_libevent_dispatch(BusLibevent *b) {
        int r = 0;

        for (unsigned i = 0; i < DISPATCH_BATCH; i++) {
                r = sd_bus_process(b->bus, NULL);
                if (r <= 0)
                        break;
        }
        if (r < 0) {
                /* ECONNRESET/ENOTCONN: the bus went away (dbus-daemon stopped). */
                bus_libevent_fail(b, r);
                return;
        }
        /* After a full batch sd-bus still has queued messages and reports a timeout of 0: the timer
         * brings us back once the loop has served everyone else. */
        bus_libevent_rearm(b);
}

static void on_bus_io(evutil_socket_t fd, short what, void *userdata) {
        bus_libevent_dispatch(userdata);
}

static void on_bus_timer(evutil_socket_t fd, short what, void *userdata) {
        bus_libevent_dispatch(userdata);
}

int bus_libevent_attach(struct event_base *base, sd_bus *bus, BusLibeventDisconnectFunc on_disconnect,
                        void *userdata, BusLibevent **ret) {
        _cleanup_(bus_libevent_freep) BusLibevent *b = NULL;
        int fd;

        fd = sd_bus_get_fd(bus);
        if (fd < 0)
                return fd;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->bus = sd_bus_ref(bus);
        b->base = base;
        b->io = event_new(base, fd, EV_READ | EV_PERSIST, on_bus_io, b);
        b->timer = evtimer_new(base, on_bus_timer, b);
        if (!b->io || !b->timer)
                return -ENOMEM;

        bus_libevent_rearm(b);
        if (b->dead)
                return -ENOTCONN;
        /* Set only now: a failure above is returned, not reported twice. */
        b->on_disconnect = on_disconnect;
        b->userdata = userdata;
        *ret = TAKE_PTR(b);
        return 0;
}

BusLibevent *bus_libevent_free(BusLibevent *b) {
        if (!b)
                return NULL;
        if (b->io)
                event_free(b->io);
        if (b->timer)
                event_free(b->timer);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}
