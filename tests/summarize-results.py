#!/usr/bin/env python3
"""Sums up meson's test logs of several build directories; the last line is 'N passed, N failed'.

Exit status 0 only when nothing failed (build failures included)."""
import argparse
import collections
import json
import os
import sys


def read_results(build_dir):
    path = os.path.join(build_dir, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build-failures", type=int, default=0)
    parser.add_argument("build_dirs", nargs="+")
    args = parser.parse_args()

    passed = failed = skipped = 0
    per_suite = collections.Counter()
    for build_dir in args.build_dirs:
        for result in read_results(build_dir):
            # Names read "project:suite / test".
            suite = result["name"].split(" / ")[0].split(":")[-1]
            status = result["result"]
            if status in ("OK", "EXPECTEDFAIL"):
                passed += 1
                per_suite[(build_dir, suite, "passed")] += 1
            elif status == "SKIP":
                skipped += 1
                per_suite[(build_dir, suite, "skipped")] += 1
            else:
                failed += 1
                per_suite[(build_dir, suite, "failed")] += 1
                print(f"FAILED: {build_dir}: {result['name']} ({status})")

    for (build_dir, suite, kind), count in sorted(per_suite.items()):
        print(f"{build_dir:12} {suite:12} {kind:8} {count}")

    failed += args.build_failures
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
