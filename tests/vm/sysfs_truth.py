#!/usr/bin/env python3
"""The kernel's own view of IOMMU groups, read straight from sysfs, and its comparison with
`iommud --dump`.

    sysfs_truth.py gather ROOT                  # print the truth as JSON
    sysfs_truth.py compare ROOT IOMMUD          # run iommud --dump, list every difference
    sysfs_truth.py same-dump A.json B.json      # two dumps equal up to list order

ROOT is `/` in a guest or a captured tree (sys/, proc/ below it). The truth is built only from
directory listings, link names and attribute files, never from iommud's code, so the two can
disagree. Every `errors` list in the dump must be empty: a real kernel gives nothing to
complain about. With IOMMUD_VM_CORRUPT=SECTION.FIELD (e.g. groups.type, devices.driver),
compare first changes that field of the dump's first entry, to show that a wrong dump is caught.
"""

import argparse
import difflib
import glob
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

UNIT_KINDS = {'intel-iommu': 'intel-vtd', 'amd-iommu': 'amd-vi'}
PCI_ADDRESS = re.compile(r'^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')


def read(path):
    return Path(path).read_text().strip()


def link_name(path):
    """Last component of a symlink's target, or None when there is no link."""
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else None


def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def reserved_regions(path):
    regions = []
    for line in read(path).splitlines():
        start, end, kind = line.split()
        regions.append({'start': start, 'end': end, 'type': kind})
    return regions


def unit_kind(unit_dir):
    for subdir, kind in UNIT_KINDS.items():
        if os.path.isdir(os.path.join(unit_dir, subdir)):
            return kind
    parent = link_name(os.path.join(unit_dir, 'device')) or ''
    return 'virtio-iommu' if parent.startswith('virtio') else 'unknown'


def unit_pci_device(unit_dir):
    """The PCI function that is the IOMMU: the unit's parent (AMD-Vi) or the parent of its
    virtio device (virtio-iommu); None when the unit has no parent (VT-d)."""
    parent = os.path.join(unit_dir, 'device')
    if not os.path.lexists(parent):
        return None
    path = os.path.realpath(parent)
    for name in (os.path.basename(path), os.path.basename(os.path.dirname(path))):
        if PCI_ADDRESS.match(name):
            return name
    return None


def optional(path):
    return read(path) if os.path.exists(path) else None


def names(device_dir, patterns):
    return sorted({os.path.basename(p) for pattern in patterns
                   for p in glob.glob(os.path.join(glob.escape(str(device_dir)), pattern))})


def block_devices(device_dir):
    nvme = [p for p in names(device_dir, ['nvme/*/nvme*n*']) if re.fullmatch(r'nvme\d+n\d+', p)]
    return sorted(set(nvme + names(device_dir, ['block/*', 'virtio*/block/*',
                                                'ata*/host*/target*/*/block/*'])))


def gather_device(d, address):
    group = link_name(d / 'iommu_group')
    parent = os.path.basename(os.path.dirname(os.path.realpath(d)))
    override = read(d / 'driver_override')
    numa = int(read(d / 'numa_node'))
    reset = optional(d / 'reset_method')
    return {
        'address': address,
        'vendor_id': read(d / 'vendor').removeprefix('0x'),
        'device_id': read(d / 'device').removeprefix('0x'),
        'subsystem_vendor_id': read(d / 'subsystem_vendor').removeprefix('0x'),
        'subsystem_device_id': read(d / 'subsystem_device').removeprefix('0x'),
        'class': read(d / 'class').removeprefix('0x'),
        'revision': read(d / 'revision').removeprefix('0x'),
        'driver': link_name(d / 'driver'),
        'driver_override': None if override == '(null)' else override,
        'group': None if group is None else int(group),
        'iommu_unit': link_name(d / 'iommu'),
        'numa_node': None if numa < 0 else numa,
        'parent': parent if PCI_ADDRESS.match(parent) else None,
        'reset_methods': None if reset is None else reset.split(),
        'net_interfaces': names(d, ['net/*', 'virtio*/net/*']),
        'block_devices': block_devices(d),
    }


def gather(root):
    root = Path(root)
    sysfs = root / 'sys'
    groups = []
    for name in listing(sysfs / 'kernel/iommu_groups'):
        g = sysfs / 'kernel/iommu_groups' / name
        groups.append({
            'id': int(name),
            'type': read(g / 'type'),
            'devices': listing(g / 'devices'),
            'reserved_regions': reserved_regions(g / 'reserved_regions'),
            'vfio_node': os.path.lexists(root / 'dev/vfio' / name),
        })
    units = []
    for name in listing(sysfs / 'class/iommu'):
        u = sysfs / 'class/iommu' / name
        units.append({'name': name, 'kind': unit_kind(u), 'devices': listing(u / 'devices'),
                      'pci_device': unit_pci_device(u)})
    devices = [gather_device(sysfs / 'bus/pci/devices' / a, a)
               for a in listing(sysfs / 'bus/pci/devices')]
    host = {
        'kernel_release': read(root / 'proc/sys/kernel/osrelease'),
        'iommu_enabled': bool(units or groups),
    }
    return {'host': host, 'units': units, 'groups': groups, 'devices': devices}


# What is compared, per section: the key that names an entry, and the fields that must match.
# Lists of members are compared as sets; reserved regions in the kernel's order.
SECTIONS = {
    'units': ('name', ['kind', 'devices', 'pci_device']),
    'groups': ('id', ['type', 'devices', 'reserved_regions', 'vfio_node']),
    'devices': ('address', ['vendor_id', 'device_id', 'subsystem_vendor_id',
                            'subsystem_device_id', 'class', 'revision', 'driver',
                            'driver_override', 'group', 'iommu_unit', 'numa_node', 'parent',
                            'reset_methods', 'net_interfaces', 'block_devices']),
}
UNORDERED = {'devices', 'net_interfaces', 'block_devices'}


def compare(dump, truth):
    """Every difference between an iommud dump and the truth, as sentences."""
    diffs = []
    for field, want in truth['host'].items():
        got = dump.get('host', {}).get(field, '<missing>')
        if got != want:
            diffs.append(f'host.{field}: dump has {got!r}, kernel has {want!r}')
    for section, (key, fields) in SECTIONS.items():
        entries = dump.get(section)
        if not isinstance(entries, list):
            diffs.append(f'{section}: missing from the dump')
            continue
        got_by_key = {e.get(key): e for e in entries}
        want_by_key = {e[key]: e for e in truth[section]}
        if len(got_by_key) != len(entries):
            diffs.append(f'{section}: the dump repeats a {key}')
        for k in sorted(got_by_key.keys() - want_by_key.keys(), key=str):
            diffs.append(f'{section}: dump has {key} {k!r}, the kernel does not')
        for k in sorted(want_by_key.keys() - got_by_key.keys(), key=str):
            diffs.append(f'{section}: kernel has {key} {k!r}, the dump does not')
        for k in sorted(got_by_key.keys() & want_by_key.keys(), key=str):
            for field in fields:
                got = got_by_key[k].get(field, '<missing>')
                want = want_by_key[k][field]
                if field in UNORDERED and isinstance(got, list):
                    got = sorted(got)
                if got != want:
                    diffs.append(f'{section}[{k}].{field}: dump has {got!r}, kernel has {want!r}')
    for g in dump.get('groups') or []:
        if not isinstance(g.get('viable'), bool) or not isinstance(g.get('blockers'), list):
            diffs.append(f'groups[{g.get("id")}]: viable must be a bool and blockers a list')
    if dump.get('errors'):
        diffs.append(f'errors: {dump["errors"]}')
    for section, (key, _) in SECTIONS.items():
        for e in dump.get(section) or []:
            if e.get('errors'):
                diffs.append(f'{section}[{e.get(key)}].errors: {e["errors"]}')
    if dump.get('host', {}).get('errors'):
        diffs.append(f'host.errors: {dump["host"]["errors"]}')
    return diffs


def expectations(truth, kind, groups):
    """What is wrong with the topology itself: no IOMMU of the expected kind, no groups, or
    an expected group (a space-separated list of addresses) not formed exactly."""
    problems = []
    if not any(u['kind'] == kind for u in truth['units']):
        problems.append(f'no IOMMU unit of kind {kind}: {truth["units"]}')
    if not truth['groups']:
        problems.append('no IOMMU groups')
    formed = [sorted(g['devices']) for g in truth['groups']]
    for group in groups:
        if sorted(group.split()) not in formed:
            problems.append(f'expected a group of exactly {group}; groups are {formed}')
    return problems


def wrong_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1000
    if isinstance(value, list):
        return value[:-1] if value else ['corrupted']
    if value is None:
        return 'corrupted'
    return f'{value}-corrupted'


def corrupt(dump, spec):
    """Change SECTION.FIELD of the dump's first entry (or of host); returns a description."""
    section, _, field = spec.partition('.')
    entry = dump['host'] if section == 'host' else dump[section][0]
    old = entry[field]
    entry[field] = wrong_value(old)
    return f'corrupted {section}.{field} of the first entry: {old!r} -> {entry[field]!r}'


def canonical(value):
    """value with every list sorted, for comparing two dumps whose order may differ."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def settled_dump(iommud, root, attempts=3):
    """Run `iommud --dump --root ROOT` while the kernel's view holds still (the truth gathered
    before and after agree, e.g. no driver finished probing meanwhile): (dump, truth)."""
    for _ in range(attempts):
        before = gather(root)
        run = subprocess.run([iommud, '--dump', '--root', root], capture_output=True, text=True)
        sys.stderr.write(run.stderr)
        if run.returncode != 0:
            raise SystemExit(f'{iommud} --dump exited {run.returncode}')
        truth = gather(root)
        if truth == before:
            return json.loads(run.stdout), truth
        print('the kernel changed while iommud ran; running it again')
        time.sleep(2)
    raise SystemExit(f'the kernel did not hold still for {attempts} runs of iommud')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='command', required=True)
    sub.add_parser('gather').add_argument('root')
    p = sub.add_parser('compare')
    p.add_argument('root')
    p.add_argument('iommud')
    p.add_argument('--kind', help='also check the topology: the IOMMU kind it must have')
    p.add_argument('--group', action='append', default=[],
                   help='also check the topology: space-separated addresses forming one group')
    p.add_argument('--save', type=Path, help='folder to write dump.json and truth.json into')
    p = sub.add_parser('same-dump')
    p.add_argument('dumps', type=Path, nargs=2)
    args = ap.parse_args()

    if args.command == 'gather':
        print(json.dumps(gather(args.root), indent=2))
        return 0
    if args.command == 'same-dump':
        a, b = (json.dumps(canonical(json.loads(p.read_text())), indent=1, sort_keys=True)
                for p in args.dumps)
        diff = list(difflib.unified_diff(a.splitlines(), b.splitlines(), *map(str, args.dumps),
                                         lineterm=''))
        print('\n'.join(diff) or 'the dumps are the same')
        return 1 if diff else 0
    dump, truth = settled_dump(args.iommud, args.root)
    if args.save:
        for name, value in (('dump', dump), ('truth', truth)):
            (args.save / f'{name}.json').write_text(json.dumps(value, indent=2) + '\n')
    problems = expectations(truth, args.kind, args.group) if args.kind else []
    for p in problems:
        print(f'TOPOLOGY {p}')
    spec = os.environ.get('IOMMUD_VM_CORRUPT')
    if spec:
        print(corrupt(dump, spec))
    diffs = compare(dump, truth)
    for d in diffs:
        print(f'MISMATCH {d}')
    print(f'{len(diffs)} difference(s) between the dump and the kernel')
    return 1 if diffs or problems else 0


if __name__ == '__main__':
    sys.exit(main())
