/* What one udev event costs the daemon: core's handler (re-read the device and its group, diff,
 * publish) timed on a host tree, with a subscriber like a Watch stream attached. Half the events
 * carry a real change (the endpoint's driver link is taken away, then put back, as an unbind and a
 * bind do), half change nothing. bench-uevent.py runs it on a small and a large host.
 *
 * Usage: bench-uevent ROOT EVENTS */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "manager.h"
#include "uevent-monitor.h"

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static unsigned long n_events;

static void on_event(Manager *m, const ManagerEvent *e, void *userdata) {
        n_events++;
}

static int compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        struct event_base *base;
        ManagerSubscription *sub = NULL;
        ManagerOptions options = {};
        Manager *m = NULL;
        const Inventory *inv;
        uint64_t *times;
        char link[4096], target[4096];
        unsigned events;
        size_t n_endpoints = 0, *endpoints;
        double sum = 0;

        if (argc != 3 || (events = (unsigned)atoi(argv[2])) == 0) {
                fprintf(stderr, "usage: bench-uevent ROOT EVENTS\n");
                return 2;
        }
        options.sysfs_root = options.proc_root = options.dev_root = argv[1];
        base = event_base_new();
        if (!base || manager_new(base, &options, &m) < 0 || manager_subscribe(m, on_event, NULL, &sub) < 0)
                return 1;
        inv = manager_get_inventory(m);
        endpoints = calloc(inv->n_devices, sizeof(size_t));
        times = calloc(events, sizeof(uint64_t));
        if (!endpoints || !times)
                return 1;
        for (size_t i = 0; i < inv->n_devices; i++)
                if (inv->devices[i].header_type == 0 && inv->devices[i].driver)
                        endpoints[n_endpoints++] = i;
        if (n_endpoints == 0)
                return 1;

        for (unsigned i = 0; i < events; i++) {
                /* Event pairs on one endpoint: unbind (link gone), then bind (link back). */
                char address[32];
                bool unbind = i % 2 == 0;
                uint64_t t0;
                ssize_t len;

                snprintf(address, sizeof(address), "%s",
                         manager_get_inventory(m)->devices[endpoints[(i / 2 * 7919) % n_endpoints]].address);
                snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s/driver", argv[1], address);
                if (unbind) {
                        len = readlink(link, target, sizeof(target) - 1);
                        if (len < 0)
                                return 1;
                        target[len] = 0;
                        unlink(link);
                } else if (symlink(target, link) < 0)
                        return 1;
                t0 = now_ns();
                manager_handle_uevent(m, UEVENT_PCI, unbind ? "unbind" : "bind", address);
                times[i] = now_ns() - t0;
                sum += (double)times[i];
        }
        qsort(times, events, sizeof(uint64_t), compare);
        printf("devices=%zu events=%u changes=%lu mean_us=%.1f median_us=%.1f p99_us=%.1f\n",
               manager_get_inventory(m)->n_devices, events, n_events, sum / events / 1000.0,
               (double)times[events / 2] / 1000.0, (double)times[events * 99 / 100] / 1000.0);
        manager_subscription_free(sub);
        manager_free(m);
        event_base_free(base);
        free(endpoints);
        free(times);
        return 0;
}
