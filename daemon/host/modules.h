/* Loading kernel modules for operations (vfio-pci, a variant driver, a member's original driver)
 * with libkmod, on the machine iommud runs on only: with other roots (a fixture tree, a captured
 * snapshot) nothing is loaded, and a module counts as loaded when the roots show it so. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "roots.h"

/* Whether the three roots are this machine's "/", the only case in which modules may be loaded. */
bool host_roots_are_this_machine(const HostRoots *roots);

/* Makes sure module 'name' (or what the alias 'name' resolves to) is loaded: nothing to do when
 * sys/module/<name> exists below the sysfs root. Otherwise, on this machine, libkmod loads it
 * (insertion bounded by timeout_usec: BOUNDED_PENDING when the kernel did not return); with other
 * roots it fails with -EOPNOTSUPP and *ret_message says what would have been loaded and why it
 * was not. */
int module_load(const HostRoots *roots, const char *name, uint64_t timeout_usec, char **ret_message);

/* Makes sure the PCI driver 'driver' is registered, so that the device 'address' can bind to it:
 * nothing to do when sys/bus/pci/drivers/<driver> exists. Otherwise, on this machine, the modules
 * the device's modalias resolves to are loaded (only the one named like the driver when it is among
 * them), and the driver must then be registered; with other roots -EOPNOTSUPP. *ret_message says
 * what went wrong. */
int module_load_for_driver(const HostRoots *roots, const char *address, const char *driver, uint64_t timeout_usec,
                           char **ret_message);
