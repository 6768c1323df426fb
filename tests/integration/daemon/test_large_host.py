#!/usr/bin/python3
"""Any host size: on the generated 16,640-device host (tests/bench/bench_hosts.py "large", every device
in its own group), `iommuctl --json groups` and `iommuctl --json devices` list every group and device.

usage: test_large_host.py IOMMUD IOMMUCTL SOURCE_ROOT WORKDIR

The tree is generated once into WORKDIR (a build directory; it takes most of a minute) and kept.
ListGroups and ListDevices answer in pages (one answer for all of them is over the message limit);
iommuctl fetches every page. Prints TAP lines with the times (docs/PERFORMANCE.md has them), exits 1
if a check failed.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_ROOT = os.path.abspath(sys.argv[3])
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests"))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "bench"))
import bench_hosts  # noqa: E402
import tap  # noqa: E402

IOMMUD, IOMMUCTL, WORKDIR = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[4])
DEVICES = 16640
T = tap.Tap()


def main():
    tree = bench_hosts.host("large", WORKDIR)
    tmp = tempfile.mkdtemp(prefix="iommud-large-", dir=WORKDIR)
    sock = os.path.join(tmp, "iommud.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(tmp, "notify"))
    notify.settimeout(0.5)
    log = open(os.path.join(tmp, "iommud.log"), "w")
    start = time.monotonic()
    daemon = subprocess.Popen([IOMMUD, "--root", tree, "--udev=no", "--rescan-interval=0", "--dbus=none",
                               "--libvirt-uri=none", f"--unix-socket={sock}", f"--state-directory={tmp}/state",
                               f"--runtime-directory={tmp}/run", f"--policy-directory={tmp}/policy"],
                              stdout=log, stderr=log, env=dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify")))
    try:
        ready = False
        while not ready and daemon.poll() is None and time.monotonic() - start < 120:
            try:
                ready = "READY=1" in notify.recv(4096).decode().splitlines()
            except socket.timeout:
                pass
        T.check(ready, f"iommud is ready on the {DEVICES}-device host in {time.monotonic() - start:.2f} s",
                open(log.name).read()[-2000:])
        for verb, key in (("groups", "id"), ("devices", "address")):
            t0 = time.monotonic()
            r = subprocess.run([IOMMUCTL, "--socket", sock, "--json", verb], capture_output=True, text=True,
                               timeout=300)
            took = time.monotonic() - t0
            items = json.loads(r.stdout) if r.returncode == 0 else []
            keys = {x[key] for x in items}
            T.check(r.returncode == 0 and len(items) == DEVICES and len(keys) == DEVICES,
                    f"iommuctl --json {verb} lists all {DEVICES} {verb} ({len(items)} listed) in {took:.2f} s",
                    r.stderr[-2000:])
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["rm", "-rf", tmp])
    return T.plan()


if __name__ == "__main__":
    sys.exit(main())
