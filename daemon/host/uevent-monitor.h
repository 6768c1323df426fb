/* udev events for PCI devices, VFIO groups and misc devices (/dev/vfio/vfio, /dev/iommu). */
#pragma once

struct event_base;

typedef enum UeventSubsystem {
        UEVENT_PCI,  /* sysname is a PCI address */
        UEVENT_VFIO, /* sysname is a group number (the /dev/vfio/<N> node) */
        UEVENT_MISC, /* sysname is "vfio", "iommu", ... */
} UeventSubsystem;

/* action: "add", "remove", "bind", "unbind", "change", "move", ... */
typedef void (*UeventFunc)(UeventSubsystem subsystem, const char *action, const char *sysname, void *userdata);

typedef struct UeventMonitor UeventMonitor;

/* Listens to udev's (not the kernel's) events, so systemd-udevd must run: the events arrive after
 * udev rules have run and device nodes are in place. */
int uevent_monitor_new(struct event_base *base, UeventFunc callback, void *userdata, UeventMonitor **ret);
UeventMonitor *uevent_monitor_free(UeventMonitor *m);
static inline void uevent_monitor_freep(UeventMonitor **m) {
        uevent_monitor_free(*m);
}
