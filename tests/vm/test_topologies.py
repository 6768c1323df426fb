#!/usr/bin/env python3
"""The topology files parse, and the harness keys of a realistic host mean what vmtest.py says:
include:, disk:, scenarios: (order, subfolders, the default), reboot:, scenario-timeout:."""

import sys
import tempfile
import unittest
from pathlib import Path

import vmtest

AVAILABLE = ['10-dump', '20-capture', 'hypervisor/10-build', 'hypervisor/30-use', 'facts/host']


def topology(text, extra=None):
    folder = Path(tempfile.mkdtemp())
    for name, content in (extra or {}).items():
        (folder / name).write_text(content)
    (folder / 't.topo').write_text(text)
    return vmtest.Topology(folder / 't.topo')


BASE = 'kernels: 6.12\nkind: intel-vtd\niommu: intel-iommu\n'


class Topologies(unittest.TestCase):
    def test_every_topology_parses_and_selects_scenarios(self):
        for topo in vmtest.topologies():
            self.assertTrue(topo.host.select(vmtest.scenarios()), topo.name)

    def test_default_is_the_top_level_in_name_order(self):
        self.assertEqual(topology(BASE).host.select(AVAILABLE), ['10-dump', '20-capture'])

    def test_patterns_keep_their_order_and_reach_subfolders(self):
        topo = topology(BASE + 'scenarios: hypervisor/1* 10-dump\nscenarios: hypervisor/* nothing-*\n')
        self.assertEqual(topo.host.select(AVAILABLE), ['hypervisor/10-build', '10-dump', 'hypervisor/30-use'])

    def test_patterns_that_match_nothing_at_all_are_an_error(self):
        with self.assertRaises(ValueError):
            topology(BASE + 'scenarios: nothing-*\n').host.select(AVAILABLE)

    def test_disks_become_sparse_images_and_blockdevs(self):
        topo = topology(BASE + 'disk: a,2M\ndisk: b,1G\n')
        self.assertEqual(topo.host.disks, [('a', 2 << 20), ('b', 1 << 30)])
        work = Path(tempfile.mkdtemp())
        args = topo.host.qemu_args(work)
        self.assertEqual((work / 'disks/a.img').stat().st_size, 2 << 20)
        self.assertIn('driver=raw,node-name=b,file=b-file', args)

    def test_bad_values_are_errors(self):
        for line in ('disk: a\n', 'disk: ,1G\n', 'disk: a,1T\n', 'reboot: maybe\n', 'color: red\n'):
            with self.assertRaises(ValueError, msg=line):
                topology(BASE + line)

    def test_include_reads_the_other_file_in_place(self):
        topo = topology('kernels: 6.12\ninclude: m.devices\nreboot: yes\n',
                        {'m.devices': 'kind: amd-vi\niommu: amd-iommu\ndevice: e1000e\n'})
        self.assertEqual((topo.kind, topo.qemu_args, topo.host.reboot), ('amd-vi', ['-device', 'e1000e'], True))

    def test_an_include_loop_is_an_error(self):
        with self.assertRaises(ValueError):
            topology(BASE + 'include: t.topo\n')


if __name__ == '__main__':
    sys.exit(unittest.main())
