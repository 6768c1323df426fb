#!/usr/bin/env python3
"""`iommud --dump --root TREE` on every captured snapshot (tests/fixtures/captured/) equals the
kernel's truth read from the same tree. Output is TAP.

    test_captured.py IOMMUD
"""

import json
import subprocess
import sys

import sysfs_truth
from test_compare import trees


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    found = trees()
    print(f'1..{len(found)}')
    failed = 0
    for i, tree in enumerate(found, 1):
        run = subprocess.run([sys.argv[1], '--dump', '--root', tree], capture_output=True,
                             text=True)
        if run.returncode != 0:
            diffs = [f'iommud exited {run.returncode}: {run.stderr.strip()}']
        else:
            diffs = sysfs_truth.compare(json.loads(run.stdout), sysfs_truth.gather(tree))
        failed += bool(diffs)
        print(f'{"not ok" if diffs else "ok"} {i} - {tree.name}')
        for d in diffs:
            print(f'#   {d}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
