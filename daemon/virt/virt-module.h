/* The virt layer as a module the daemon loads only when it follows libvirt: libvirt and everything it
 * links (GnuTLS, GLib, ICU, ...) cost some 7 MiB of resident memory that a daemon told
 * LibvirtURI=none should not carry. */
#pragma once

#include <stdbool.h>

#include "virt-tracker.h"

struct event_base;
typedef struct VirtTracker VirtTracker;

typedef struct VirtModule {
        int (*tracker_new)(struct event_base *base, const char *uri, VirtTracker **ret);
        VirtTracker *(*tracker_free)(VirtTracker *t);
        bool (*tracker_find_device)(const VirtTracker *t, const char *address, const char **ret_name,
                                    const char **ret_uuid);
        void (*tracker_set_change)(VirtTracker *t, VirtChangeFunc change, void *userdata);
} VirtModule;

/* The symbol the module exports. */
#define VIRT_MODULE_SYMBOL "iommud_virt_module"
/* Its file name, in the directory of the iommud binary's virt/ (a build tree) or VIRT_MODULE_DIR. */
#define VIRT_MODULE_FILE "iommud-virt.so"
