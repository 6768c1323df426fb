#!/usr/bin/python3
"""Runs inside iommud.service's sandbox, as an ExecStartPost= of a runtime drop-in that
package/20-sandbox adds: tries for real what the unit must let iommud do (and a few things it must not)
and writes the outcome as JSON to /run/iommud/sandbox-probe.json. Always exits 0: the scenario
judges."""
import json
import os
import socket


def attempt(action):
    try:
        return action() or "ok"
    except OSError as e:
        return f"errno {e.errno} ({os.strerror(e.errno)})"


def read(path):
    with open(path, "rb") as f:
        return f"ok, {len(f.read())} bytes"


def read_fds(pid):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        os.readlink(f"/proc/{pid}/fd/{fd}")


def open_excl(path):
    os.close(os.open(path, os.O_RDONLY | os.O_EXCL))


def status(key):
    with open("/proc/self/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(key + ":"))


def write_outside():
    with open("/etc/iommud/probe-was-here", "w") as f:
        f.write("x")


def main():
    out = {"uid": os.getuid(), "euid": os.geteuid(), "cap_eff": status("CapEff")}
    pids = sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int)
    out["pids"] = pids
    out["fds"] = {pid: attempt(lambda pid=pid: read_fds(pid)) for pid in pids}
    out["block"] = {name: attempt(lambda name=name: open_excl(f"/dev/{name}"))
                    for name in os.listdir("/sys/class/block")}
    release = os.uname().release
    out["read"] = {path: attempt(lambda path=path: read(path))
                   for path in ("/proc/1/mountinfo", "/proc/1/net/route", "/proc/1/net/if_inet6",
                                "/proc/swaps", "/proc/cmdline", "/proc/modules",
                                f"/lib/modules/{release}/modules.alias")}
    out["closed"] = {
        "socket AF_INET": attempt(lambda: socket.socket(socket.AF_INET).close()),
        "write /etc": attempt(write_outside),
    }
    tmp = "/run/iommud/sandbox-probe.json.tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.rename(tmp, "/run/iommud/sandbox-probe.json")


if __name__ == "__main__":
    main()
