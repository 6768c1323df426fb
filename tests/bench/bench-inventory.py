#!/usr/bin/env python3
"""Benchmark: one full read of a host, side by side with the floor and with lspci, and the memory it takes.

On the generated 16,640-device host (bench_hosts.py "large"), in one run, rounds of:
  iommud   `iommud --dump --root TREE` (every file of docs/HOST-FILES.md, names, config space,
           groups, viability, type-change rules, JSON out)
  bare     tests/bench/bare-reader: the same files opened relative to their directories and read
           once, nothing parsed or printed (the floor)
  lspci    `lspci -nnk` over the same tree's sysfs (names, drivers, no groups)
Reported: the best time of each, the ratios, the peak RSS of --dump, and the daemon's RSS once it
serves, on that host and on a captured real-kernel snapshot (tests/fixtures/captured/intel-6.12).
With strace installed, also the syscalls of one --dump per device.

Usage: bench-inventory.py BUILD_DIR [--runs N] [--workdir DIR]
Run it under `flock /work/heavy.lock` on shared machines.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_hosts  # noqa: E402

SOURCE = bench_hosts.SOURCE


def run_once(argv):
    """Wall time and peak RSS (KiB) of one run, output discarded."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{argv[0]} failed with status {status}")
    return elapsed, usage.ru_maxrss


def daemon_rss(iommud, tree, workdir):
    """VmRSS and VmHWM (KiB) of the daemon serving tree, once it listens."""
    state = tempfile.mkdtemp(dir=workdir)
    sock = os.path.join(state, "sock")
    p = subprocess.Popen([iommud, "--config=/dev/null", "--root", tree, "--udev=no", "--rescan-interval=0",
                          "--dbus=none", "--libvirt-uri=none", "--state-directory=" + state,
                          "--runtime-directory=" + state + "/run", "--policy-directory=" + state + "/p",
                          "--unix-socket=" + sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        status = open(f"/proc/{p.pid}/status").read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
        return rss, hwm
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(state, ignore_errors=True)


def syscalls_per_device(iommud, tree, n):
    if not shutil.which("strace"):
        return None
    out = tempfile.mktemp()
    subprocess.run(["strace", "-f", "-c", "-o", out, iommud, "--dump", "--root", tree], check=True,
                   stdout=subprocess.DEVNULL)
    counts = {}
    for line in open(out):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$", line)
        if m:
            counts[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    os.unlink(out)
    return {k: (c / n, e / n) for k, (c, e) in counts.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default=None, help="where generated hosts are kept (default BUILD_DIR/bench)")
    args = parser.parse_args()

    iommud = os.path.join(args.build_dir, "daemon", "iommud")
    bare = os.path.join(args.build_dir, "tests", "bench", "bare-reader")
    workdir = args.workdir or os.path.join(args.build_dir, "bench")
    tree = bench_hosts.host("large", workdir)
    n = bench_hosts.n_devices(tree)
    lspci = ["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={tree}/sys/bus/pci", "-nnk"]
    tools = {"iommud": [iommud, "--dump", "--root", tree], "bare": [bare, tree], "lspci": lspci}

    for argv in tools.values():  # warm the page cache
        run_once(argv)
    best = {k: float("inf") for k in tools}
    peak = {k: 0 for k in tools}
    for _ in range(args.runs):
        for k, argv in tools.items():
            t, rss = run_once(argv)
            best[k] = min(best[k], t)
            peak[k] = max(peak[k], rss)

    print(f"## Inventory: {n} PCI devices, best of {args.runs}, one run, {time.strftime('%Y-%m-%d')}\n")
    print("| tool | time (s) | per device (µs) | peak RSS (MiB) | iommud / tool |")
    print("|---|---:|---:|---:|---:|")
    for k in tools:
        print(f"| {k} | {best[k]:.3f} | {1e6 * best[k] / n:.1f} | {peak[k] / 1024:.1f} | "
              f"{best['iommud'] / best[k]:.2f} |")

    captured = os.path.join(SOURCE, "tests/fixtures/captured/intel-6.12")
    print("\n| daemon serving | devices | RSS (MiB) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, t in (("generated host", tree), ("captured intel-6.12", captured)):
        rss, hwm = daemon_rss(iommud, t, workdir)
        print(f"| {name} | {bench_hosts.n_devices(t)} | {rss / 1024:.1f} | {hwm / 1024:.1f} |")

    per = syscalls_per_device(iommud, tree, n)
    if per:
        print("\n| syscall (one --dump) | per device | failed per device |")
        print("|---|---:|---:|")
        for k in ("openat2", "openat", "read", "pread64", "close", "getdents64", "readlinkat", "newfstatat"):
            if k in per:
                print(f"| {k} | {per[k][0]:.2f} | {per[k][1]:.3f} |")


if __name__ == "__main__":
    main()
