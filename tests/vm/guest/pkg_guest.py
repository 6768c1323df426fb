"""What the package scenarios (scenarios/package/) share: iommud as installed from the .deb, run by systemd
as PID 1, and called the way users call it: systemctl, iommuctl, busctl, as root or as a user."""
import json
import os
import pwd
import subprocess
import sys
import time

if os.environ.get("GUEST_INIT") != "systemd":
    print("needs systemd as PID 1 (topology key init: systemd)")
    sys.exit(77)

import iommud_guest  # noqa: E402
from iommud_guest import RESULTS  # noqa: E402

UNIT = "iommud.service"
IOMMUCTL = "/usr/bin/iommuctl"
JOURNAL_DIR = "/run/iommud/journal"
# CAP_DAC_OVERRIDE, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_SYS_ADMIN: what the unit grants.
UNIT_CAPS = (1 << 1) | (1 << 16) | (1 << 17) | (1 << 19) | (1 << 21)
START = time.monotonic()


def check(ok, what, detail=""):
    """iommud_guest.check, with what went wrong shown under a failure."""
    if not ok and detail:
        for line in str(detail).splitlines()[-30:]:
            print(f"     | {line}")
    return iommud_guest.check(ok, what)


def log(text):
    print(f"[{time.monotonic() - START:5.1f} s] {text}", flush=True)


def sh(*args, timeout=60, user=None, env=None, stdin=None):
    """(exit status, stdout + stderr). user: run through su -l, so that PAM opens a logind session as
    a real login would (polkit asks logind whether the caller's session is active)."""
    argv = list(args)
    if user:
        argv = ["su", "-l", user, "-s", "/bin/sh", "-c", " ".join(quote(a) for a in args)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin,
                             env=dict(os.environ, **(env or {})))
    except subprocess.TimeoutExpired as e:
        return 124, f"timed out after {timeout} s: {e.stdout or ''}{e.stderr or ''}"
    return out.returncode, (out.stdout + out.stderr).strip()


def quote(s):
    return "'" + str(s).replace("'", "'\\''") + "'"


def show(prop, unit=UNIT):
    return sh("systemctl", "show", "-p", prop, "--value", unit)[1]


def main_pid():
    pid = show("MainPID")
    return int(pid) if pid.isdigit() and pid != "0" else None


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def journal(since_cursor=None, unit=UNIT):
    """The unit's journal (messages only), from a cursor on.

    The unit is matched here, not with journalctl -u: journalctl --after-cursor skips two entries
    from the cursor on the assumption that the cursor's own entry matches, so with -u it drops the
    unit's first message whenever the cursor is another unit's entry (systemd 252)."""
    if not since_cursor:
        return sh("journalctl", "-u", unit, "-o", "cat", "--no-pager")[1]
    out = sh("journalctl", f"--after-cursor={since_cursor}", "-o", "json", "--no-pager")[1]
    lines = []
    for line in out.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        ours = (e.get("_SYSTEMD_UNIT") == unit or e.get("OBJECT_SYSTEMD_UNIT") == unit
                or (e.get("_PID") == "1" and e.get("UNIT") == unit))
        message = e.get("MESSAGE")
        if ours and message is not None:
            lines.append(message if isinstance(message, str) else bytes(message).decode(errors="replace"))
    return "\n".join(lines) + ("\n" if lines else "")


def journal_cursor():
    out = sh("journalctl", "-n", "0", "--show-cursor", "--no-pager")[1]
    return out.split("cursor: ", 1)[1].strip() if "cursor: " in out else None


def add_user(name, groups=()):
    if name not in [p.pw_name for p in pwd.getpwall()]:
        sh("useradd", "--create-home", "--shell", "/bin/sh", name)
    for g in groups:
        sh("usermod", "-a", "-G", g, name)


def save(name, text):
    with open(os.path.join(RESULTS, name), "w") as f:
        f.write(text)


def installed():
    return check(os.path.exists("/usr/sbin/iommud") and show("LoadState") == "loaded",
                 "the package is installed (package/10-install ran)")


def wait_active(timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = show("ActiveState")
        if state in ("active", "failed"):
            return state
        time.sleep(0.2)
    return show("ActiveState")


VT_ACTIVATE, VT_WAITACTIVE = 0x5606, 0x5607


def seat_session(user, commands, vt=7, timeout=120):
    """Runs shell commands as user in a login session on seat0's virtual terminal vt, made the
    foreground one: an active local session, as a console login is (polkit's allow_active applies
    to it; su or ssh sessions have no seat and get allow_any). Returns [(exit status, output)]."""
    import fcntl
    work = "/run/vmtest-session"
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o1777)
    for name in os.listdir(work):
        os.unlink(os.path.join(work, name))
    with open(os.path.join(work, "script"), "w") as f:
        for i, command in enumerate(commands):
            f.write(f"( {command} ) >{work}/{i}.out 2>&1; echo $? >{work}/{i}.rc\n")
    fd = os.open("/dev/tty0", os.O_RDWR)
    try:
        fcntl.ioctl(fd, VT_ACTIVATE, vt)
        fcntl.ioctl(fd, VT_WAITACTIVE, vt)
    finally:
        os.close(fd)
    rc, out = sh("systemd-run", "--wait", "--collect", "--quiet", f"--unit=vmtest-session-{user}",
                 f"--property=User={user}", "--property=PAMName=login", f"--property=TTYPath=/dev/tty{vt}",
                 "--property=StandardInput=tty-fail", f"--property=UtmpIdentifier=tty{vt}",
                 "/bin/sh", f"{work}/script", timeout=timeout)
    results = []
    for i in range(len(commands)):
        try:
            with open(f"{work}/{i}.rc") as f:
                code = int(f.read().strip())
            with open(f"{work}/{i}.out") as f:
                results.append((code, f.read().strip()))
        except (OSError, ValueError):
            results.append((None, f"did not run (systemd-run: {rc} {out})"))
    return results
