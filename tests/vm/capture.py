#!/usr/bin/env python3
"""Copy the files iommud reads (docs/HOST-FILES.md) from a live root into a fixture tree.

    capture.py ROOT OUT

and check that the kernel truth (sysfs_truth.py) read from OUT equals the one read from ROOT.

Only the whitelisted attributes are read; nothing else is opened (no resource*, rom, remove,
rescan, bind, ...). Symlinks are recreated with the kernel's own (relative) targets, attribute
files are copied byte for byte (config in full when run as root), dev/vfio nodes, dev/iommu and
ACPI tables become empty files. Directories that would be empty hold an empty `.keep` so that
git keeps them; iommud never lists those directories' contents.
"""

import os
import re
import sys
from pathlib import Path

import sysfs_truth

DEVICE_FILES = ['vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision',
                'config', 'driver_override', 'numa_node', 'sriov_totalvfs', 'sriov_numvfs',
                'reset_method', 'boot_vga', 'modalias']
DEVICE_LINKS = ['driver', 'iommu_group', 'iommu', 'physfn']
UNIT_FILES = {
    'intel-iommu': ['cap', 'ecap', 'version', 'address', 'domains_supported', 'domains_used'],
    'amd-iommu': ['cap', 'features'],
}
NET_FILES = ['operstate', 'flags']
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
            self.dir(Path(rel).parent)
            (self.out / rel).write_bytes((self.root / rel).read_bytes())

    def empty(self, rel):
        if os.path.lexists(self.root / rel):
            self.dir(Path(rel).parent)
            (self.out / rel).touch()

    def link(self, rel):
        if os.path.islink(self.root / rel):
            self.dir(Path(rel).parent)
            os.symlink(os.readlink(self.root / rel), self.out / rel)
            return True
        return False

    def names(self, rel):
        return sorted(os.listdir(self.root / rel)) if (self.root / rel).is_dir() else []

    def host(self):
        for rel in ['proc/sys/kernel/osrelease', 'proc/cmdline', 'proc/modules',
                    'sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts']:
            self.file(rel)
        for rel in ['sys/firmware/acpi/tables/DMAR', 'sys/firmware/acpi/tables/IVRS',
                    'dev/vfio/vfio', 'dev/iommu']:
            self.empty(rel)
        for name in self.names('dev/vfio'):
            if name.isdigit():
                self.empty(f'dev/vfio/{name}')
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
                if re.fullmatch(r'card\d+', card):
                    self.keep(dev / 'drm' / card)

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


def capture(root, out):
    c = Capture(root, out)
    c.host()
    c.groups()
    c.units()
    c.devices()


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
