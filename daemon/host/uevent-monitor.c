/* sd-device monitor for the subsystems the inventory depends on, dispatched from libevent. */
#include "uevent-monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-device.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "sd-event-bridge.h"

struct UeventMonitor {
        sd_event *sd_event;
        sd_device_monitor *monitor;
        SdEventBridge *bridge;
        UeventFunc callback;
        void *userdata;
};

static const char *action_to_string(sd_device_action_t a) {
        switch (a) {
        case SD_DEVICE_ADD:
                return "add";
        case SD_DEVICE_REMOVE:
                return "remove";
        case SD_DEVICE_CHANGE:
                return "change";
        case SD_DEVICE_MOVE:
                return "move";
        case SD_DEVICE_ONLINE:
                return "online";
        case SD_DEVICE_OFFLINE:
                return "offline";
        case SD_DEVICE_BIND:
                return "bind";
        case SD_DEVICE_UNBIND:
                return "unbind";
        default:
                return NULL;
        }
}

static int on_device_event(sd_device_monitor *monitor, sd_device *device, void *userdata) {
        UeventMonitor *m = userdata;
        const char *subsystem = NULL, *sysname = NULL, *action;
        sd_device_action_t a;
        UeventSubsystem s;

        if (sd_device_get_action(device, &a) < 0 || !(action = action_to_string(a)))
                return 0;
        if (sd_device_get_subsystem(device, &subsystem) < 0 || sd_device_get_sysname(device, &sysname) < 0)
                return 0;

        if (strcmp(subsystem, "pci") == 0)
                s = UEVENT_PCI;
        else if (strcmp(subsystem, "vfio") == 0)
                s = UEVENT_VFIO;
        else if (strcmp(subsystem, "misc") == 0)
                s = UEVENT_MISC;
        else
                return 0;

        log_debug("uevent: %s %s %s", action, subsystem, sysname);
        m->callback(s, action, sysname, m->userdata);
        return 0;
}

int uevent_monitor_new(struct event_base *base, UeventFunc callback, void *userdata, UeventMonitor **ret) {
        static const char *const subsystems[] = { "pci", "vfio", "misc" };
        _cleanup_(uevent_monitor_freep) UeventMonitor *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->callback = callback;
        m->userdata = userdata;

        r = sd_event_new(&m->sd_event);
        if (r < 0)
                return r;
        r = sd_device_monitor_new(&m->monitor);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(subsystems); i++) {
                r = sd_device_monitor_filter_add_match_subsystem_devtype(m->monitor, subsystems[i], NULL);
                if (r < 0)
                        return r;
        }
        (void)sd_device_monitor_set_description(m->monitor, "iommud");
        r = sd_device_monitor_attach_event(m->monitor, m->sd_event);
        if (r < 0)
                return r;
        r = sd_device_monitor_start(m->monitor, on_device_event, m);
        if (r < 0)
                return r;
        r = sd_event_bridge_new(base, m->sd_event, &m->bridge);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

UeventMonitor *uevent_monitor_free(UeventMonitor *m) {
        if (!m)
                return NULL;
        sd_event_bridge_free(m->bridge);
        if (m->monitor) {
                (void)sd_device_monitor_stop(m->monitor);
                sd_device_monitor_unref(m->monitor);
        }
        sd_event_unref(m->sd_event);
        free(m);
        return NULL;
}
