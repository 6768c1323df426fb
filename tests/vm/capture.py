#!/usr/bin/env python3
"""Copy the files iommud reads (docs/HOST-FILES.md) from a live root into a fixture tree.

    capture.py ROOT OUT

and check that the kernel truth (sysfs_truth.py) read from OUT equals the one read from ROOT.

Only the whitelisted attributes are read; nothing else is opened (no resource*, rom, remove,
rescan, bind, ...). Symlinks are recreated with the kernel's own (relative) targets, attribute
files are copied byte for byte (config in full when run as root), dev/vfio nodes, dev/iommu,
block device nodes and ACPI tables become empty files. Directories that would be empty hold an
empty `.keep` so that git keeps them; iommud never lists those directories' contents (empty
`holders/` and `slaves/` are left out instead: iommud lists them).

The host-use checks' files (docs/HOST-FILES.md, "Host use") come along: block devices with their
stacking (holders, slaves, dm and md names), network interfaces with their stacking and state,
framebuffers, PID 1's mount table, routes and addresses, swap, and every process's open files
(`proc/<pid>/fd/*` as links with the kernel's targets), `comm` and `status`.
"""

import os
import re
import sys
from pathlib import Path

import sysfs_truth

DEVICE_FILES = ['vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision',
                'config', 'driver_override', 'numa_node', 'sriov_totalvfs', 'sriov_numvfs',
                'reset_method', 'boot_vga', 'modalias', 'enable', 'removable']
DEVICE_LINKS = ['driver', 'iommu_group', 'iommu', 'physfn']
UNIT_FILES = {
    'intel-iommu': ['cap', 'ecap', 'version', 'address', 'domains_supported', 'domains_used'],
    'amd-iommu': ['cap', 'features'],
}
NET_FILES = ['operstate', 'flags']
# Host use (docs/HOST-FILES.md): per block device and per network interface.
BLOCK_FILES = ['dev', 'partition', 'dm/name', 'dm/uuid', 'md/level']
BLOCK_LINK_DIRS = ['holders', 'slaves']
CLASS_NET_FILES = ['flags', 'operstate', 'carrier', 'bonding/slaves']
CLASS_NET_LINKS = ['master']
PROC_HOST_FILES = ['proc/1/mountinfo', 'proc/self/mountinfo', 'proc/swaps', 'proc/1/net/route',
                   'proc/1/net/ipv6_route', 'proc/1/net/if_inet6', 'proc/fb']
PROC_HOST_LINKS = ['proc/1/ns/net', 'proc/self/ns/net']
PCI_ADDRESS = re.compile(r'^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')
# Child directories of a PCI device that lead to its net and block devices (as iommud walks them).
CONTAINER = re.compile(r'^(virtio|ata|host|target|port)|^\d+:\d+:\d+:\d+$')


class Capture:
    def __init__(self, root, out):
        self.root, self.out = Path(root), Path(out)

    def real(self, rel):
        """rel with every symlink resolved, relative to the root."""
        return Path(os.path.realpath(self.root / rel)).relative_to(self.root.resolve())

    def dir(self, rel):
        (self.out / rel).mkdir(parents=True, exist_ok=True)

    def keep(self, rel):
        self.dir(rel)
        (self.out / rel / '.keep').touch()

    def file(self, rel):
        if (self.root / rel).is_file():
            try:
                data = (self.root / rel).read_bytes()
            except OSError:  # e.g. `carrier` of an interface that is down: EINVAL
                return
            self.dir(Path(rel).parent)
            (self.out / rel).write_bytes(data)

    def empty(self, rel):
        if os.path.lexists(self.root / rel):
            self.dir(Path(rel).parent)
            (self.out / rel).touch()

    def link(self, rel):
        if os.path.islink(self.root / rel):
            try:
                target = os.readlink(self.root / rel)
            except OSError:  # a process's fd that closed meanwhile
                return False
            self.dir(Path(rel).parent)
            if not os.path.lexists(self.out / rel):
                os.symlink(target, self.out / rel)
            return True
        return False

    def links(self, rel):
        """Every symlink in a directory (holders/, slaves/, brif/, fd/)."""
        for name in self.names(rel):
            self.link(f'{rel}/{name}')

    def names(self, rel):
        try:
            return sorted(os.listdir(self.root / rel)) if (self.root / rel).is_dir() else []
        except OSError:  # a process that ended meanwhile, a /proc/PID/fd we may not read
            return []

    def host(self):
        for rel in ['proc/sys/kernel/osrelease', 'proc/cmdline', 'proc/modules',
                    'sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts']:
            self.file(rel)
        for rel in ['sys/firmware/acpi/tables/DMAR', 'sys/firmware/acpi/tables/IVRS', 'dev/iommu']:
            self.empty(rel)
        for module in ['vfio', 'vfio_pci']:
            if (self.root / 'sys/module' / module).is_dir():
                self.keep(f'sys/module/{module}')
        for name in self.names('sys/bus/pci/drivers'):
            self.keep(f'sys/bus/pci/drivers/{name}')

    def groups(self):
        for name in self.names('sys/kernel/iommu_groups'):
            g = f'sys/kernel/iommu_groups/{name}'
            self.file(f'{g}/type')
            self.file(f'{g}/reserved_regions')
            for dev in self.names(f'{g}/devices'):
                self.link(f'{g}/devices/{dev}')

    def units(self):
        for name in self.names('sys/class/iommu'):
            self.link(f'sys/class/iommu/{name}')
            unit = self.real(f'sys/class/iommu/{name}')
            self.link(unit / 'device')
            for dev in self.names(unit / 'devices'):
                self.link(unit / 'devices' / dev)
            for subdir, files in UNIT_FILES.items():
                for f in files:
                    self.file(unit / subdir / f)

    def devices(self):
        for address in self.names('sys/bus/pci/devices'):
            self.link(f'sys/bus/pci/devices/{address}')
            dev = self.real(f'sys/bus/pci/devices/{address}')
            self.dir(dev)
            for f in DEVICE_FILES:
                self.file(dev / f)
            for name in DEVICE_LINKS + [n for n in self.names(dev) if n.startswith('virtfn')]:
                self.link(dev / name)
            self.interfaces(dev, 0)
            for ctrl in self.names(dev / 'nvme'):
                for ns in self.names(dev / 'nvme' / ctrl):
                    if re.fullmatch(re.escape(ctrl) + r'n\d+', ns):
                        self.keep(dev / 'nvme' / ctrl / ns)
            for card in self.names(dev / 'drm'):
                if re.fullmatch(r'(card|renderD)\d+', card):
                    self.keep(dev / 'drm' / card)
            for name in self.names(dev / 'vfio-dev'):
                self.keep(dev / 'vfio-dev' / name)

    def interfaces(self, rel, depth):
        for ifname in self.names(rel / 'net'):
            for f in NET_FILES:
                self.file(rel / 'net' / ifname / f)
        for disk in self.names(rel / 'block'):
            self.keep(rel / 'block' / disk)
        if depth >= 5:
            return
        for name in self.names(rel):
            child = rel / name
            if (CONTAINER.match(name) and not PCI_ADDRESS.match(name)
                    and not os.path.islink(self.root / child)):
                self.interfaces(child, depth + 1)


    def block(self):
        """Block devices: class links, numbers, stacking, dm and md names; their /dev nodes."""
        for name in self.names('sys/class/block'):
            if not self.link(f'sys/class/block/{name}'):
                continue
            disk = self.real(f'sys/class/block/{name}')
            self.dir(disk)
            for f in BLOCK_FILES:
                self.file(disk / f)
            for d in BLOCK_LINK_DIRS:
                self.links(disk / d)
            self.empty(f'dev/{name}')
        for fsid in self.names('sys/fs/btrfs'):
            self.links(f'sys/fs/btrfs/{fsid}/devices')
            self.file(f'sys/fs/btrfs/{fsid}/label')
        for name in self.names('sys/devices/virtual/nvme-subsystem'):
            subsystem = f'sys/devices/virtual/nvme-subsystem/{name}'
            for head in self.names(subsystem):
                self.links(f'{subsystem}/{head}/multipath')

    def net(self):
        """Network interfaces: class links, state, what they are stacked on and under."""
        for name in self.names('sys/class/net'):
            if not self.link(f'sys/class/net/{name}'):
                continue
            iface = self.real(f'sys/class/net/{name}')
            self.dir(iface)
            for f in CLASS_NET_FILES:
                self.file(iface / f)
            for entry in CLASS_NET_LINKS + [n for n in self.names(iface)
                                            if n.startswith(('upper_', 'lower_'))]:
                self.link(iface / entry)
            self.links(iface / 'brif')

    def graphics(self):
        for name in self.names('sys/class/graphics'):
            if name.startswith('fb') and self.link(f'sys/class/graphics/{name}'):
                self.link(self.real(f'sys/class/graphics/{name}') / 'device')

    def proc_host(self):
        """PID 1's mount table, routes and addresses, swap, framebuffers, namespaces; ours."""
        for rel in PROC_HOST_FILES:
            self.file(rel)
        for rel in PROC_HOST_LINKS:
            self.link(rel)
        for gpu in self.names('proc/driver/nvidia/gpus'):
            self.file(f'proc/driver/nvidia/gpus/{gpu}/information')

    def processes(self):
        """Every process's open files (links with the kernel's targets), comm and status; not
        this capture's own process."""
        for pid in self.names('proc'):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            fds = self.names(f'proc/{pid}/fd')
            if not fds:  # kernel threads, processes we may not look into
                continue
            for fd in fds:
                self.link(f'proc/{pid}/fd/{fd}')
            self.file(f'proc/{pid}/comm')
            self.file(f'proc/{pid}/status')

    def vfio_nodes(self):
        """Every node below dev/vfio (group nodes, the container, cdevs in dev/vfio/devices)."""
        for dirpath, _, files in os.walk(self.root / 'dev/vfio'):
            rel = Path(dirpath).relative_to(self.root)
            for name in files:
                self.empty(rel / name)


def capture(root, out):
    c = Capture(root, out)
    c.host()
    c.groups()
    c.units()
    c.devices()
    c.block()
    c.net()
    c.graphics()
    c.proc_host()
    c.processes()
    c.vfio_nodes()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, out = sys.argv[1:]
    capture(root, out)
    live, captured = sysfs_truth.gather(root), sysfs_truth.gather(out)
    if live != captured:
        print(f'the kernel truth read from {out} differs from the one read from {root}')
        for d in sysfs_truth.compare(captured, live):
            print(f'MISMATCH {d}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
