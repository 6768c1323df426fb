#!/usr/bin/python3
"""Holds a VFIO group open the way a VM does, until killed: opens /dev/vfio/GROUP and, with
--device, attaches it to a type1 container and opens the device fd too (what QEMU does for
`-device vfio-pci,host=BDF`). Prints "holding" on stdout once everything is open.

    vfio-hold.py GROUP [--device BDF]

Exit status 1 with the failing step on stderr when an open or ioctl fails."""
import argparse
import ctypes
import os
import signal
import sys

# <linux/vfio.h>: _IO(VFIO_TYPE, VFIO_BASE + n), VFIO_TYPE ';', VFIO_BASE 100
VFIO_GET_API_VERSION = 0x3B64
VFIO_CHECK_EXTENSION = 0x3B65
VFIO_SET_IOMMU = 0x3B66
VFIO_GROUP_SET_CONTAINER = 0x3B68
VFIO_GROUP_GET_DEVICE_FD = 0x3B6A
VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU = 1, 3

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


def ioctl(fd, request, arg, what):
    r = libc.ioctl(fd, request, arg)
    if r < 0:
        e = ctypes.get_errno()
        sys.exit(f"vfio-hold: {what}: {os.strerror(e)}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("group", type=int)
    ap.add_argument("--device")
    args = ap.parse_args()
    fds = []
    try:
        group = os.open(f"/dev/vfio/{args.group}", os.O_RDWR)
    except OSError as e:
        sys.exit(f"vfio-hold: open /dev/vfio/{args.group}: {e.strerror}")
    fds.append(group)
    if args.device:
        container = os.open("/dev/vfio/vfio", os.O_RDWR)
        fds.append(container)
        ioctl(container, VFIO_GET_API_VERSION, None, "VFIO_GET_API_VERSION")
        container_fd = ctypes.c_int(container)  # the ioctl takes a pointer to it
        ioctl(group, VFIO_GROUP_SET_CONTAINER, ctypes.addressof(container_fd),
              "VFIO_GROUP_SET_CONTAINER")
        kind = (VFIO_TYPE1v2_IOMMU if ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU,
                                            "VFIO_CHECK_EXTENSION") else VFIO_TYPE1_IOMMU)
        ioctl(container, VFIO_SET_IOMMU, kind, "VFIO_SET_IOMMU")
        name = ctypes.create_string_buffer(args.device.encode())
        fds.append(ioctl(group, VFIO_GROUP_GET_DEVICE_FD, ctypes.addressof(name),
                         f"VFIO_GROUP_GET_DEVICE_FD {args.device}"))
    print("holding", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
