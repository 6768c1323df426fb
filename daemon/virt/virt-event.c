/* The libvirt event loop implementation (virEventRegisterImpl) on libevent. libvirt may remove a
 * watch or timer from inside its own callback, and requires that the free callback it passed does
 * not run inside the remove call (it may take locks the caller holds): removed entries are
 * disarmed at once and freed from a deferred event. */
#include "virt-event.h"

#include <errno.h>
#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"

typedef struct VirtWatch {
        int id;
        bool timer;
        bool removed;
        struct event *event;
        int fd;
        virEventHandleCallback on_handle;
        virEventTimeoutCallback on_timeout;
        void *opaque;
        virFreeCallback free_opaque;
} VirtWatch;

/* libvirt's implementation is process-global, so is this. */
static struct {
        struct event_base *base;
        VirtWatch **watches;
        size_t n_watches;
        int last_id;
        struct event *reap; /* deferred: frees removed entries */
} loop;

static VirtWatch *watch_find(int id, bool timer) {
        for (size_t i = 0; i < loop.n_watches; i++)
                if (loop.watches[i]->id == id && loop.watches[i]->timer == timer &&
                    !loop.watches[i]->removed)
                        return loop.watches[i];
        return NULL;
}

static void watch_free(VirtWatch *w) {
        if (w->free_opaque)
                w->free_opaque(w->opaque);
        if (w->event)
                event_free(w->event);
        free(w);
}

static void on_reap(evutil_socket_t fd, short what, void *userdata) {
        _cleanup_(freep) VirtWatch **removed = calloc(loop.n_watches + 1, sizeof(VirtWatch *));
        size_t kept = 0, n_removed = 0;

        if (!removed) {
                event_active(loop.reap, EV_TIMEOUT, 0);
                return;
        }
        /* Out of the list first: a free callback may add or remove entries. */
        for (size_t i = 0; i < loop.n_watches; i++) {
                if (loop.watches[i]->removed)
                        removed[n_removed++] = loop.watches[i];
                else
                        loop.watches[kept++] = loop.watches[i];
        }
        loop.n_watches = kept;
        for (size_t i = 0; i < n_removed; i++)
                watch_free(removed[i]);
}

static VirtWatch *watch_new(bool timer) {
        VirtWatch **watches, *w;

        if (!loop.reap)
                return NULL;
        watches = realloc(loop.watches, (loop.n_watches + 1) * sizeof(VirtWatch *));
        if (!watches)
                return NULL;
        loop.watches = watches;
        w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        /* Ids stay positive and are not reused soon: libvirt treats -1 as failure. */
        loop.last_id = loop.last_id == INT32_MAX ? 1 : loop.last_id + 1;
        w->id = loop.last_id;
        w->timer = timer;
        loop.watches[loop.n_watches++] = w;
        return w;
}

static int watch_remove(int id, bool timer) {
        VirtWatch *w = watch_find(id, timer);

        if (!w)
                return -1;
        event_del(w->event);
        w->removed = true;
        event_active(loop.reap, EV_TIMEOUT, 0);
        return 0;
}

/* ---- file descriptors ----------------------------------------------------------------------------- */

static short handle_to_libevent(int events) {
        return (events & VIR_EVENT_HANDLE_READABLE ? EV_READ : 0) |
               (events & VIR_EVENT_HANDLE_WRITABLE ? EV_WRITE : 0);
}

static void on_handle_ready(evutil_socket_t fd, short what, void *userdata) {
        VirtWatch *w = userdata;
        int events = (what & EV_READ ? VIR_EVENT_HANDLE_READABLE : 0) |
                     (what & EV_WRITE ? VIR_EVENT_HANDLE_WRITABLE : 0);

        /* Hangups and errors show as readable: libvirt's read then sees them. */
        w->on_handle(w->id, w->fd, events, w->opaque);
}

static int handle_arm(VirtWatch *w, int events) {
        short what = handle_to_libevent(events);

        event_del(w->event);
        if (event_assign(w->event, loop.base, w->fd, what | EV_PERSIST, on_handle_ready, w) < 0)
                return -1;
        return what ? event_add(w->event, NULL) : 0;
}

static int on_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        VirtWatch *w = watch_new(false);

        if (!w)
                return -1;
        w->fd = fd;
        w->on_handle = cb;
        w->event = event_new(loop.base, fd, EV_PERSIST, on_handle_ready, w);
        if (!w->event || handle_arm(w, events) < 0) {
                /* Not handed to libvirt: it must not free opaque, and neither may we. */
                w->removed = true;
                event_active(loop.reap, EV_TIMEOUT, 0);
                return -1;
        }
        w->opaque = opaque;
        w->free_opaque = ff;
        return w->id;
}

static void on_update_handle(int id, int events) {
        VirtWatch *w = watch_find(id, false);

        if (w && handle_arm(w, events) < 0)
                log_error("Failed to watch libvirt's file descriptor %d, ignoring.", w->fd);
}

static int on_remove_handle(int id) {
        return watch_remove(id, false);
}

/* ---- timers --------------------------------------------------------------------------------------- */

static void on_timer_fired(evutil_socket_t fd, short what, void *userdata) {
        VirtWatch *w = userdata;

        w->on_timeout(w->id, w->opaque);
}

/* -1 disables; 0 fires on every turn of the loop until changed, as libvirt expects. */
static int timer_arm(VirtWatch *w, int timeout_ms) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

        event_del(w->event);
        return timeout_ms >= 0 ? event_add(w->event, &tv) : 0;
}

static int on_add_timeout(int timeout_ms, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        VirtWatch *w = watch_new(true);

        if (!w)
                return -1;
        w->on_timeout = cb;
        w->event = event_new(loop.base, -1, EV_PERSIST, on_timer_fired, w);
        if (!w->event || timer_arm(w, timeout_ms) < 0) {
                w->removed = true;
                event_active(loop.reap, EV_TIMEOUT, 0);
                return -1;
        }
        w->opaque = opaque;
        w->free_opaque = ff;
        return w->id;
}

static void on_update_timeout(int id, int timeout_ms) {
        VirtWatch *w = watch_find(id, true);

        if (w && timer_arm(w, timeout_ms) < 0)
                log_error("Failed to arm a libvirt timer, ignoring.");
}

static int on_remove_timeout(int id) {
        return watch_remove(id, true);
}

int virt_event_register(struct event_base *base) {
        if (loop.base)
                return loop.base == base ? 0 : -EBUSY;
        loop.reap = event_new(base, -1, 0, on_reap, NULL);
        if (!loop.reap)
                return -ENOMEM;
        loop.base = base;
        virEventRegisterImpl(on_add_handle, on_update_handle, on_remove_handle, on_add_timeout,
                             on_update_timeout, on_remove_timeout);
        return 0;
}

void virt_event_unregister(void) {
        if (!loop.base)
                return;
        for (size_t i = 0; i < loop.n_watches; i++)
                watch_free(loop.watches[i]);
        free(loop.watches);
        event_free(loop.reap);
        /* libvirt keeps the functions: a call after this (none is expected) fails, and a new base
         * may be registered (tests run several). */
        loop = (typeof(loop)){};
}
