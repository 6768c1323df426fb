/* Which running libvirt domain uses which PCI device: a full read at connect, then lifecycle and
 * device events. Connection calls (open, list, XML) are blocking RPCs on the loop thread; they are
 * few (at connect, and once per started domain or changed device), and libvirtd answers them from
 * memory over a local socket, so they stay short. Event handlers only note what changed; the reads
 * run from a deferred event, never inside libvirt's own callbacks. */
#include "virt-tracker.h"

#include <errno.h>
#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>

#include "domain-xml.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"
#include "virt-event.h"

#define BACKOFF_MIN_SEC 1
#define BACKOFF_MAX_SEC 30
/* libvirtd restarts or hangs: keepalive notices the latter within interval * (count + 1). */
#define KEEPALIVE_INTERVAL_SEC 5
#define KEEPALIVE_COUNT 3

DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree);
/* No scope cleanup for the connection: the tracker owns it, and closing it must first deregister
 * the callbacks (tracker_disconnect). */

typedef struct TrackedDomain {
        char *name;
        char uuid[VIR_UUID_STRING_BUFLEN];
        char **addresses; /* its PCI hostdevs; a domain without any is not tracked */
} TrackedDomain;

enum {
        CALLBACK_LIFECYCLE,
        CALLBACK_DEVICE_ADDED,
        CALLBACK_DEVICE_REMOVED,
        _CALLBACK_MAX,
};

struct VirtTracker {
        char *uri;
        virConnectPtr conn;
        int callbacks[_CALLBACK_MAX]; /* -1: not registered */
        bool close_callback;
        bool lost;      /* libvirt closed the connection: close our end from the deferred event */
        bool connected; /* the view is current */
        unsigned backoff_sec;
        unsigned failures;
        struct event *connect_timer;
        struct event *deferred;
        TrackedDomain *domains;
        size_t n_domains;
        char **changed; /* UUIDs of domains to read again */
        size_t n_changed;
        VirtChangeFunc change;
        void *change_userdata;
};

void virt_tracker_set_change(VirtTracker *t, VirtChangeFunc change, void *userdata) {
        t->change = change;
        t->change_userdata = userdata;
}

static void notify(const VirtTracker *t, const TrackedDomain *d, bool started) {
        if (t->change)
                t->change(d->name, d->uuid, started, d->addresses, t->change_userdata);
}

/* libvirt's last error as -errno, for the few cases callers tell apart. */
static int virt_last_errno(void) {
        const virError *e = virGetLastError();

        switch (e ? e->code : VIR_ERR_INTERNAL_ERROR) {
        case VIR_ERR_NO_DOMAIN:
                return -ENOENT;
        case VIR_ERR_OPERATION_INVALID: /* e.g. the domain is no longer running */
                return -ESRCH;
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_ACCESS_DENIED:
                return -EACCES;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_NO_SUPPORT:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

/* libvirt would print every error on stderr; the caller of each API logs what matters. */
static void on_libvirt_error(void *userdata, virErrorPtr error) {
        log_debug("libvirt: %s", error && error->message ? error->message : "unknown error");
}

static void tracked_domain_done(TrackedDomain *d) {
        free(d->name);
        strv_free(d->addresses);
        *d = (TrackedDomain){};
}

static void domains_clear(TrackedDomain **domains, size_t *n) {
        FOREACH_ARRAY (d, *domains, *n)
                tracked_domain_done(d);
        free(*domains);
        *domains = NULL;
        *n = 0;
}

static TrackedDomain *domain_find(VirtTracker *t, const char *uuid) {
        FOREACH_ARRAY (d, t->domains, t->n_domains)
                if (streq(d->uuid, uuid))
                        return d;
        return NULL;
}

static void domain_forget(VirtTracker *t, const char *uuid) {
        TrackedDomain *d = domain_find(t, uuid);

        if (!d)
                return;
        log_info("libvirt domain '%s' stopped: its %zu PCI host devices are free.", d->name,
                 strv_length(d->addresses));
        {
                /* Out of the list first: whoever is told asks who uses what now. */
                TrackedDomain gone = *d;

                *d = t->domains[--t->n_domains];
                notify(t, &gone, false);
                tracked_domain_done(&gone);
        }
}

/* Reads a domain's XML. A domain without PCI hostdevs comes back with no addresses. */
static int domain_read(virDomainPtr dom, TrackedDomain *ret) {
        _cleanup_(freep) char *xml = NULL, *message = NULL;
        DomainXml parsed = {};
        const char *name;
        int r;

        xml = virDomainGetXMLDesc(dom, 0);
        name = virDomainGetName(dom);
        if (!xml || !name || virDomainGetUUIDString(dom, ret->uuid) < 0)
                return virt_last_errno();
        r = domain_xml_parse(xml, strlen(xml), &parsed, &message);
        if (r < 0) {
                log_warning("libvirt domain '%s': %s; ignoring it.", name, message ?: strerror(-r));
                return r;
        }
        ret->name = strdup(name);
        ret->addresses = TAKE_PTR(parsed.addresses);
        domain_xml_done(&parsed);
        if (!ret->name) {
                tracked_domain_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static void log_domain(const TrackedDomain *d) {
        for (char **a = d->addresses; *a; a++)
                log_info("libvirt domain '%s' (%s) uses PCI device %s.", d->name, d->uuid, *a);
}

/* ---- connection ----------------------------------------------------------------------------------- */

static void on_connection_closed(virConnectPtr conn, int reason, void *userdata) {
        VirtTracker *t = userdata;

        log_warning("The connection to libvirt (%s) was closed (reason %d); reconnecting.", t->uri, reason);
        t->lost = true;
        t->connected = false;
        event_active(t->deferred, EV_TIMEOUT, 0);
}

static void queue_changed(VirtTracker *t, virDomainPtr dom) {
        char uuid[VIR_UUID_STRING_BUFLEN];

        if (virDomainGetUUIDString(dom, uuid) < 0 || strv_contains(t->changed, uuid))
                return;
        if (strv_push_dup(&t->changed, &t->n_changed, uuid) < 0) {
                /* Without memory the next full read (reconnect) has to set it right. */
                log_oom();
                return;
        }
        event_active(t->deferred, EV_TIMEOUT, 0);
}

static int on_domain_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *userdata) {
        VirtTracker *t = userdata;
        char uuid[VIR_UUID_STRING_BUFLEN];

        if (event == VIR_DOMAIN_EVENT_STOPPED) {
                if (virDomainGetUUIDString(dom, uuid) >= 0)
                        domain_forget(t, uuid);
        } else if (event == VIR_DOMAIN_EVENT_STARTED)
                queue_changed(t, dom);
        return 0;
}

static void on_domain_device(virConnectPtr conn, virDomainPtr dom, const char *alias, void *userdata) {
        queue_changed(userdata, dom);
}

static void tracker_disconnect(VirtTracker *t) {
        if (!t->conn)
                return;
        for (size_t i = 0; i < _CALLBACK_MAX; i++)
                if (t->callbacks[i] >= 0) {
                        (void)virConnectDomainEventDeregisterAny(t->conn, t->callbacks[i]);
                        t->callbacks[i] = -1;
                }
        if (t->close_callback)
                (void)virConnectUnregisterCloseCallback(t->conn, on_connection_closed);
        t->close_callback = false;
        (void)virConnectClose(t->conn);
        t->conn = NULL;
        t->connected = false;
        t->lost = false;
}

/* Every running domain, read again: the view after connecting, complete by construction. */
static int tracker_scan(VirtTracker *t) {
        _cleanup_(freep) virDomainPtr *domains = NULL;
        TrackedDomain *list = NULL;
        size_t n_list = 0;
        int n, r = 0;

        n = virConnectListAllDomains(t->conn, &domains, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        if (n < 0)
                return virt_last_errno();
        for (int i = 0; i < n; i++) {
                TrackedDomain d = {}, *slot;

                if (r >= 0) {
                        int k = domain_read(domains[i], &d);

                        /* Gone since the listing, or XML we cannot read: not ours to track. */
                        if (k < 0 && k != -ENOENT && k != -ESRCH && k != -EINVAL && k != -EBADMSG)
                                r = k;
                }
                (void)virDomainFree(domains[i]);
                if (!d.addresses || !d.addresses[0]) {
                        tracked_domain_done(&d);
                        continue;
                }
                slot = r >= 0 ? array_append(&list, &n_list, sizeof(TrackedDomain)) : NULL;
                if (!slot) {
                        tracked_domain_done(&d);
                        r = r < 0 ? r : -ENOMEM;
                        continue;
                }
                *slot = d;
        }
        if (r < 0) {
                domains_clear(&list, &n_list);
                return r;
        }
        {
                TrackedDomain *old = t->domains;
                size_t n_old = t->n_domains;

                t->domains = list;
                t->n_domains = n_list;
                FOREACH_ARRAY (d, old, n_old)
                        if (!domain_find(t, d->uuid))
                                notify(t, d, false);
                domains_clear(&old, &n_old);
        }
        FOREACH_ARRAY (d, t->domains, t->n_domains) {
                log_domain(d);
                notify(t, d, true);
        }
        return 0;
}

static int tracker_connect(VirtTracker *t) {
        static const int ids[_CALLBACK_MAX] = {
                [CALLBACK_LIFECYCLE] = VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                [CALLBACK_DEVICE_ADDED] = VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                [CALLBACK_DEVICE_REMOVED] = VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
        };
        const virConnectDomainEventGenericCallback callbacks[_CALLBACK_MAX] = {
                [CALLBACK_LIFECYCLE] = VIR_DOMAIN_EVENT_CALLBACK(on_domain_lifecycle),
                [CALLBACK_DEVICE_ADDED] = VIR_DOMAIN_EVENT_CALLBACK(on_domain_device),
                [CALLBACK_DEVICE_REMOVED] = VIR_DOMAIN_EVENT_CALLBACK(on_domain_device),
        };
        int r;

        /* Read-only is all tracking needs. */
        t->conn = virConnectOpenReadOnly(t->uri);
        if (!t->conn)
                return virt_last_errno();
        if (virConnectRegisterCloseCallback(t->conn, on_connection_closed, t, NULL) < 0)
                goto fail;
        t->close_callback = true;
        /* Subscribed before the listing, so that no start falls between the two. */
        for (size_t i = 0; i < _CALLBACK_MAX; i++) {
                t->callbacks[i] =
                        virConnectDomainEventRegisterAny(t->conn, NULL, ids[i], callbacks[i], t, NULL);
                if (t->callbacks[i] < 0)
                        goto fail;
        }
        /* Drivers without keepalive (test:///) answer 1 or fail; the close callback still works. */
        (void)virConnectSetKeepAlive(t->conn, KEEPALIVE_INTERVAL_SEC, KEEPALIVE_COUNT);
        r = tracker_scan(t);
        if (r < 0) {
                tracker_disconnect(t);
                return r;
        }
        strv_free(t->changed);
        t->changed = NULL;
        t->n_changed = 0;
        t->connected = true;
        return 0;

fail:
        r = virt_last_errno();
        tracker_disconnect(t);
        return r;
}

static void schedule_connect(VirtTracker *t) {
        struct timeval tv = {.tv_sec = t->backoff_sec};

        event_add(t->connect_timer, &tv);
        /* The first attempt at once, then after 1, 2, 4, ... and at most 30 s. */
        t->backoff_sec = t->backoff_sec == 0 ? BACKOFF_MIN_SEC : t->backoff_sec * 2;
        if (t->backoff_sec > BACKOFF_MAX_SEC)
                t->backoff_sec = BACKOFF_MAX_SEC;
}

static void on_connect_timer(evutil_socket_t fd, short what, void *userdata) {
        VirtTracker *t = userdata;
        int r;

        r = tracker_connect(t);
        if (r >= 0) {
                log_info("Following libvirt at %s: %zu running domains use PCI host devices.", t->uri,
                         t->n_domains);
                t->backoff_sec = BACKOFF_MIN_SEC;
                t->failures = 0;
                return;
        }
        /* Once, then quietly until it works: iommud starts before libvirtd, which may also simply
         * not be installed. */
        log_full_errno(t->failures++ == 0 ? LOG_NOTICE : LOG_DEBUG, -r,
                       "Cannot follow libvirt at %s yet, retrying: %s", t->uri, virGetLastErrorMessage());
        schedule_connect(t);
}

/* Deferred from libvirt's callbacks: close a lost connection, or read the domains that changed. */
static void on_deferred(evutil_socket_t fd, short what, void *userdata) {
        VirtTracker *t = userdata;
        _cleanup_(strv_freep) char **changed = TAKE_PTR(t->changed);

        t->n_changed = 0;
        if (t->lost) {
                tracker_disconnect(t);
                t->backoff_sec = BACKOFF_MIN_SEC;
                schedule_connect(t);
                return;
        }
        for (char **u = changed; t->conn && u && *u; u++) {
                _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByUUIDString(t->conn, *u);
                TrackedDomain d = {}, *slot;
                int r;

                r = dom ? (virDomainIsActive(dom) == 1 ? domain_read(dom, &d) : -ESRCH) : virt_last_errno();
                if (r == -ENOENT || r == -ESRCH || (r >= 0 && !d.addresses[0])) {
                        domain_forget(t, *u);
                        tracked_domain_done(&d);
                        continue;
                }
                if (r < 0) {
                        log_warning_errno(-r, "Cannot read libvirt domain %s, keeping what was known: %m",
                                          *u);
                        continue;
                }
                slot = domain_find(t, *u);
                if (slot)
                        tracked_domain_done(slot);
                else
                        slot = array_append(&t->domains, &t->n_domains, sizeof(TrackedDomain));
                if (!slot) {
                        tracked_domain_done(&d);
                        log_oom();
                        continue;
                }
                *slot = d;
                log_domain(slot);
                notify(t, slot, true);
        }
}

int virt_tracker_new(struct event_base *base, const char *uri, VirtTracker **ret) {
        _cleanup_(virt_tracker_freep) VirtTracker *t = NULL;
        int r;

        r = virInitialize() < 0 ? virt_last_errno() : virt_event_register(base);
        if (r < 0)
                return r;
        virSetErrorFunc(NULL, on_libvirt_error);

        t = calloc(1, sizeof(*t));
        if (!t) {
                virt_event_unregister();
                return -ENOMEM;
        }
        for (size_t i = 0; i < _CALLBACK_MAX; i++)
                t->callbacks[i] = -1;
        t->uri = strdup(uri);
        t->connect_timer = event_new(base, -1, 0, on_connect_timer, t);
        t->deferred = event_new(base, -1, 0, on_deferred, t);
        if (!t->uri || !t->connect_timer || !t->deferred)
                return -ENOMEM;
        /* From the loop, so that starting the daemon never waits for libvirt. */
        schedule_connect(t);
        *ret = TAKE_PTR(t);
        return 0;
}

VirtTracker *virt_tracker_free(VirtTracker *t) {
        if (!t)
                return NULL;
        tracker_disconnect(t);
        if (t->connect_timer)
                event_free(t->connect_timer);
        if (t->deferred)
                event_free(t->deferred);
        domains_clear(&t->domains, &t->n_domains);
        strv_free(t->changed);
        free(t->uri);
        free(t);
        /* After the connection: closing it removed libvirt's watches, whose frees run here. */
        virt_event_unregister();
        return NULL;
}

bool virt_tracker_find_device(const VirtTracker *t, const char *address, const char **ret_name,
                              const char **ret_uuid) {
        FOREACH_ARRAY (d, t->domains, t->n_domains)
                if (strv_contains(d->addresses, address)) {
                        *ret_name = d->name;
                        *ret_uuid = d->uuid;
                        return true;
                }
        return false;
}

bool virt_tracker_is_connected(const VirtTracker *t) {
        return t->connected;
}
