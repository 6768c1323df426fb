/* Follows libvirt's running domains and the PCI host devices they use. */
#pragma once

#include <stdbool.h>

struct event_base;

typedef struct VirtTracker VirtTracker;

/* Registers the libvirt event loop on base (virt-event.h) and connects to uri from the loop, soon
 * after this returns; an unreachable libvirt is retried with backoff, and a lost connection (libvirtd
 * restarted) is reopened the same way. Never fails because libvirt is down. */
int virt_tracker_new(struct event_base *base, const char *uri, VirtTracker **ret);
VirtTracker *virt_tracker_free(VirtTracker *t);
static inline void virt_tracker_freep(VirtTracker **t) {
        virt_tracker_free(*t);
}

/* The running domain that has the PCI device address ("0000:00:02.0") as a <hostdev>. The strings
 * stay valid until the loop runs again. While libvirt is unreachable this is the last known view. */
bool virt_tracker_find_device(const VirtTracker *t, const char *address, const char **ret_name,
                              const char **ret_uuid);

/* Told when a domain with PCI hostdevs starts (or is first seen) and when it stops, with the
 * addresses it uses; the strings are valid during the call. NULL: nobody. */
typedef void (*VirtChangeFunc)(const char *name, const char *uuid, bool started, char *const *addresses,
                               void *userdata);
void virt_tracker_set_change(VirtTracker *t, VirtChangeFunc change, void *userdata);

/* True while connected to libvirt and the view is current. */
bool virt_tracker_is_connected(const VirtTracker *t);
