/* A stand-in for the kernel's side of driver binding on a fixture tree, so that unit tests can run
 * whole operations (not only dry runs): sys/bus/pci/drivers_probe and every driver's unbind become
 * FIFOs that a thread reads, answering as Linux does. Real binding is proved on real kernels in the
 * vm suite; this proves what the daemon does with the answers. */
#pragma once

#include "fake-tree.h"

typedef struct FakeKernel FakeKernel;

/* Starts answering for every driver directory in the tree now (add the devices first):
 * - "ADDRESS" to drivers/X/unbind: the device's driver link goes;
 * - "ADDRESS" to drivers_probe: an unbound device binds to its driver_override when that driver is
 *   registered ("none" binds nothing), otherwise to its preferred driver (fake_kernel_prefer());
 *   a device bound to vfio-pci gets dev/vfio/<group>;
 * - the PCI enable count follows: 1 on a host driver, 0 unbound or on vfio-pci (nobody opened it). */
FakeKernel *fake_kernel_start(FakeTree *t);
/* Stops the thread and turns the FIFOs back into plain files. */
void fake_kernel_stop(FakeKernel *k);

/* What drivers_probe binds to address when it has no driver_override (NULL: nothing). */
void fake_kernel_prefer(FakeKernel *k, const char *address, const char *driver);
/* Writes to drivers/<driver>/unbind block in the kernel, as an unbind of vfio-pci does while a VM
 * holds the device on Linux 6.1, until fake_kernel_stop(). */
void fake_kernel_stall_unbind(FakeKernel *k, const char *driver);
