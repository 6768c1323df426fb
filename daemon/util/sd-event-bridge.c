/* sd_event on libevent: sd_event keeps all its sources (sockets, timerfds, signalfds) in one epoll
 * fd, so watching that fd for readability is enough to know when it has work. */
#include "sd-event-bridge.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"

struct SdEventBridge {
        sd_event *sd_event;
        struct event *fd_event;
};

static void on_sd_event_fd_readable(evutil_socket_t fd, short what, void *userdata) {
        SdEventBridge *b = userdata;
        int r;

        /* Dispatch everything that is pending, without ever blocking the loop. */
        do {
                r = sd_event_run(b->sd_event, 0);
        } while (r > 0);
        if (r < 0)
                log_warning_errno(r, "sd-event dispatch failed, ignoring: %m");
}

int sd_event_bridge_new(struct event_base *base, sd_event *e, SdEventBridge **ret) {
        SdEventBridge *b;
        int fd;

        fd = sd_event_get_fd(e);
        if (fd < 0)
                return fd;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->sd_event = sd_event_ref(e);
        b->fd_event = event_new(base, fd, EV_READ | EV_PERSIST, on_sd_event_fd_readable, b);
        if (!b->fd_event || event_add(b->fd_event, NULL) < 0) {
                sd_event_bridge_free(b);
                return -ENOMEM;
        }

        *ret = b;
        return 0;
}

SdEventBridge *sd_event_bridge_free(SdEventBridge *b) {
        if (!b)
                return NULL;
        if (b->fd_event)
                event_free(b->fd_event);
        sd_event_unref(b->sd_event);
        free(b);
        return NULL;
}
