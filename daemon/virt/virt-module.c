/* The entry point of the loadable virt layer: its functions, by table. */
#include "virt-module.h"
#include "virt-tracker.h"

extern const VirtModule iommud_virt_module;

__attribute__((visibility("default"))) const VirtModule iommud_virt_module = {
        .tracker_new = virt_tracker_new,
        .tracker_free = virt_tracker_free,
        .tracker_find_device = virt_tracker_find_device,
        .tracker_set_change = virt_tracker_set_change,
};
