/* The tracker against libvirt's test driver in this process: test:///default is shared by every
 * connection of a process, so a second connection starts, changes and stops domains and the
 * tracker has to follow them through events alone. */
#undef NDEBUG
#include <assert.h>
#include <event2/event.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "virt-tracker.h"

#define DOMAIN_XML                                                                                          \
        "<domain type='test'><name>tracked</name><uuid>1c6e5c8e-6f0a-4d55-8b8e-2a0d3a9f7a01</uuid>"         \
        "<memory>65536</memory><os><type>hvm</type></os><devices>"                                          \
        "<hostdev mode='subsystem' type='pci' managed='no'><source>"                                        \
        "<address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></source></hostdev>"               \
        "</devices></domain>"
/* An SR-IOV VF given to the guest as a network interface: assigned through VFIO like a hostdev. */
#define VF_DOMAIN_XML                                                                                       \
        "<domain type='test'><name>vf-net</name><uuid>1c6e5c8e-6f0a-4d55-8b8e-2a0d3a9f7a02</uuid>"          \
        "<memory>65536</memory><os><type>hvm</type></os><devices>"                                          \
        "<interface type='hostdev' managed='no'><mac address='52:54:00:6d:90:02'/><source>"                 \
        "<address type='pci' domain='0x0000' bus='0x18' slot='0x02' function='0x1'/></source></interface>"  \
        "</devices></domain>"
#define HOSTDEV_XML                                                                                         \
        "<hostdev mode='subsystem' type='pci' managed='no'><source>"                                        \
        "<address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></source></hostdev>"

static void on_tick(evutil_socket_t fd, short what, void *userdata) {
        event_base_loopbreak(userdata);
}

/* Runs the loop until the tracker's view of address matches 'want' (NULL: nobody), up to 5 s. */
static bool wait_for(struct event_base *base, VirtTracker *t, const char *address, const char *want) {
        struct event *tick = evtimer_new(base, on_tick, base);
        struct timeval tv = {0, 20000};
        bool ok = false;

        for (int i = 0; i < 250 && !ok; i++) {
                const char *name = NULL, *uuid = NULL;
                bool found = virt_tracker_find_device(t, address, &name, &uuid);

                ok = want ? found && strcmp(name, want) == 0 : !found;
                if (!ok) {
                        evtimer_add(tick, &tv);
                        event_base_dispatch(base);
                }
        }
        event_free(tick);
        return ok;
}

static void check(bool ok, int *n, const char *what) {
        printf("%s %d - %s\n", ok ? "ok" : "not ok", ++*n, what);
        assert(ok);
}

int main(void) {
        struct event_base *base = event_base_new();
        VirtTracker *t = NULL;
        virConnectPtr ctl;
        virDomainPtr dom, vf;
        const char *name, *uuid;
        int n = 0, r;

        assert(base);
        assert(virt_tracker_new(base, "test:///default", &t) >= 0);
        ctl = virConnectOpen("test:///default");
        assert(ctl);

        /* The driver's own running domain "test" has no host devices. */
        for (int i = 0; i < 250 && !virt_tracker_is_connected(t); i++)
                wait_for(base, t, "0000:00:02.0", "never");
        check(virt_tracker_is_connected(t), &n, "connects to test:///default from the loop");
        check(!virt_tracker_find_device(t, "0000:00:02.0", &name, &uuid), &n, "no device in use at first");

        dom = virDomainCreateXML(ctl, DOMAIN_XML, 0);
        assert(dom);
        check(wait_for(base, t, "0000:00:02.0", "tracked"), &n,
              "a started domain's hostdev is tracked (event)");
        assert(virt_tracker_find_device(t, "0000:00:02.0", &name, &uuid));
        check(strcmp(uuid, "1c6e5c8e-6f0a-4d55-8b8e-2a0d3a9f7a01") == 0, &n, "with the domain's UUID");

        r = virDomainAttachDevice(dom, HOSTDEV_XML);
        if (r < 0)
                printf("ok %d - # SKIP device-added: the test driver cannot attach a hostdev (%s)\n", ++n,
                       virGetLastErrorMessage());
        else
                check(wait_for(base, t, "0000:03:00.0", "tracked"), &n,
                      "an attached hostdev is tracked (event)");

        vf = virDomainCreateXML(ctl, VF_DOMAIN_XML, 0);
        assert(vf);
        check(wait_for(base, t, "0000:18:02.1", "vf-net"), &n,
              "a VF given as <interface type='hostdev'> is tracked like a hostdev (event)");
        assert(virDomainDestroy(vf) == 0);
        check(wait_for(base, t, "0000:18:02.1", NULL), &n, "and is free once that domain is destroyed");
        virDomainFree(vf);

        assert(virDomainDestroy(dom) == 0);
        check(wait_for(base, t, "0000:00:02.0", NULL), &n, "a destroyed domain's hostdev is free (event)");
        check(!virt_tracker_find_device(t, "0000:03:00.0", &name, &uuid), &n, "and so are the others");

        virDomainFree(dom);
        virConnectClose(ctl);
        virt_tracker_free(t);
        event_base_free(base);
        printf("1..%d\n", n);
        return 0;
}
