#!/usr/bin/env python3
"""Benchmark: how long one full inventory read takes, next to what operators run today.

Builds synthetic hosts of several sizes with tests/fixtures/gen-host.py and times, on each, in one run:
  iommud     `iommud --dump --root TREE` (every file of docs/HOST-FILES.md, names, config space)
  lspci      `lspci -nn -D -xxxx` over the same tree's sysfs (names, all config space; no groups)
  loop       the shell loop from distribution wikis: for each group, `lspci -nns` per member
             (run on the smallest tree only, it is slow; reported per device)
Machines here are noisy, so the results are ratios between tools measured side by side.

Usage: bench-inventory.py BUILD_DIR [--runs N] [--sizes 64,1024,4096]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHELL_LOOP = r'''
for g in $(ls "$ROOT/sys/kernel/iommu_groups" | sort -n); do
    echo "IOMMU group $g:"
    for d in "$ROOT/sys/kernel/iommu_groups/$g/devices/"*; do
        echo "    $(lspci -A linux-sysfs -O sysfs.path="$ROOT/sys/bus/pci" -nns "${d##*/}")"
    done
done
'''


def make_tree(endpoints, workdir):
    with open(os.path.join(SOURCE, "tests/fixtures/hosts/synthetic-4096.json")) as f:
        description = json.load(f)
    synthetic = description["synthetic"]
    # 8 functions per downstream port, 8 downstream ports per root port: scale domains and root ports.
    per_root_port = synthetic["downstream_ports"] * synthetic["functions"]
    root_ports = max(1, endpoints // per_root_port)
    synthetic["domains"] = max(1, root_ports // 16)
    synthetic["root_ports"] = min(16, root_ports)
    description["units"] = description["units"][: synthetic["domains"]]
    path = os.path.join(workdir, f"desc-{endpoints}.json")
    with open(path, "w") as f:
        json.dump(description, f)
    tree = os.path.join(workdir, f"tree-{endpoints}")
    subprocess.run([sys.executable, os.path.join(SOURCE, "tests/fixtures/gen-host.py"), path, tree], check=True)
    return tree


def timed(argv, runs, env=None):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="64,1024,4096")
    args = parser.parse_args()

    iommud = os.path.join(args.build_dir, "daemon", "iommud")
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = tempfile.mkdtemp(prefix="iommud-bench-")
    try:
        print(f"{'endpoints':>9} {'devices':>8} {'iommud s':>9} {'lspci s':>8} {'iommud/lspci':>13} {'per device ms':>14}")
        loop_result = None
        for size in sizes:
            tree = make_tree(size, workdir)
            dump = json.loads(subprocess.run([iommud, "--dump", "--root", tree], check=True,
                                             capture_output=True, text=True).stdout)
            n_devices = len(dump["devices"])
            problems = sum(len(d["errors"]) for d in dump["devices"] + dump["groups"]) + len(dump["errors"])
            if problems:
                sys.exit(f"{tree}: {problems} read errors; the benchmark needs a clean tree")
            t_iommud = timed([iommud, "--dump", "--root", tree], args.runs)
            t_lspci = timed(["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={tree}/sys/bus/pci", "-nn", "-D", "-xxxx"],
                            args.runs)
            print(f"{size:>9} {n_devices:>8} {t_iommud:>9.3f} {t_lspci:>8.3f} {t_iommud / t_lspci:>13.2f} "
                  f"{1000 * t_iommud / n_devices:>14.3f}")
            if loop_result is None:
                t_loop = timed(["bash", "-c", SHELL_LOOP], 1, env=dict(os.environ, ROOT=tree))
                loop_result = (size, n_devices, t_loop, t_iommud)
        size, n_devices, t_loop, t_iommud = loop_result
        print(f"\nshell loop on {n_devices} devices: {t_loop:.2f} s ({1000 * t_loop / n_devices:.1f} ms per device); "
              f"iommud is {t_loop / t_iommud:.0f}x faster and also reports types, reserved regions and viability")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
