#!/usr/bin/env python3
"""Self-test of sysfs_truth.compare on the captured snapshots: a dump built from the kernel's
truth passes, and every wrong, missing or extra field is caught."""

import copy
import sys
import unittest
from pathlib import Path

import sysfs_truth

CAPTURED = Path(__file__).resolve().parent.parent / 'fixtures/captured'


def trees():
    found = sorted(p for p in CAPTURED.iterdir() if (p / 'sys').is_dir())
    if not found:
        raise AssertionError(f'no captured trees in {CAPTURED}')
    return found


def as_dump(truth):
    """The truth in iommud's shape, with the fields the compare only type-checks."""
    dump = copy.deepcopy(truth)
    dump['errors'] = []
    for group in dump['groups']:
        group.update(viable=True, blockers=[], errors=[])
    for device in dump['devices']:
        device['net_interfaces'].reverse()  # member lists may come in any order
    return dump


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.truths = {tree.name: sysfs_truth.gather(tree) for tree in trees()}

    def test_truth_passes(self):
        for name, truth in self.truths.items():
            with self.subTest(name):
                self.assertEqual(sysfs_truth.compare(as_dump(truth), truth), [])

    def test_every_field_is_checked(self):
        for name, truth in self.truths.items():
            fields = [('host', f) for f in truth['host']]
            fields += [(section, f) for section, (_, fs) in sysfs_truth.SECTIONS.items()
                       for f in fs]
            for section, field in fields:
                with self.subTest(f'{name} {section}.{field}'):
                    dump = as_dump(truth)
                    sysfs_truth.corrupt(dump, f'{section}.{field}')
                    diffs = sysfs_truth.compare(dump, truth)
                    self.assertTrue(any(f'.{field}:' in d for d in diffs), diffs)

    def test_missing_and_extra_entries(self):
        for name, truth in self.truths.items():
            for section, (key, _) in sysfs_truth.SECTIONS.items():
                with self.subTest(f'{name} {section}'):
                    dump = as_dump(truth)
                    extra = dump[section].pop()
                    self.assertIn(f'kernel has {key} {extra[key]!r}, the dump does not',
                                  ' '.join(sysfs_truth.compare(dump, truth)))
                    dump[section] += [extra, extra]
                    self.assertIn(f'{section}: the dump repeats a {key}',
                                  sysfs_truth.compare(dump, truth))
                    dump = as_dump(truth)
                    del dump[section][0][next(iter(sysfs_truth.SECTIONS[section][1]))]
                    self.assertTrue(any('<missing>' in d
                                        for d in sysfs_truth.compare(dump, truth)))

    def test_reported_errors_fail(self):
        truth = next(iter(self.truths.values()))
        dump = as_dump(truth)
        dump['devices'][0]['errors'] = [{'file': 'sys/x', 'message': 'bad'}]
        self.assertEqual(len(sysfs_truth.compare(dump, truth)), 1)

    def test_reserved_region_order_matters(self):
        for name, truth in self.truths.items():
            multi = [g for g in truth['groups'] if len(g['reserved_regions']) > 1]
            if multi:
                dump = as_dump(truth)
                group = next(g for g in dump['groups'] if g['id'] == multi[0]['id'])
                group['reserved_regions'].reverse()
                self.assertEqual(len(sysfs_truth.compare(dump, truth)), 1, name)
                return
        self.fail('no captured group has two reserved regions')

    def test_topology_expectations(self):
        truth = next(iter(self.truths.values()))
        kind = truth['units'][0]['kind']
        group = ' '.join(truth['groups'][0]['devices'])
        self.assertEqual(sysfs_truth.expectations(truth, kind, [group]), [])
        self.assertEqual(len(sysfs_truth.expectations(truth, 'arm-smmu', [])), 1)
        self.assertEqual(len(sysfs_truth.expectations(truth, kind, [group + ' 0000:ff:00.0'])), 1)


if __name__ == '__main__':
    sys.exit(unittest.main())
