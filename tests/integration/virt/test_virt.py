#!/usr/bin/python3
"""iommud with libvirt: the tracker on libvirt's test driver, and the libvirt hook, on a fixture host.

usage: test_virt.py IOMMUD HOOK SOURCE_ROOT

Builds tests/fixtures/hosts/desktop-gpu.json with gen-host.py and generates Python stubs from proto/
with grpc_tools.protoc. Then:
- iommud with --libvirt-uri=test:///<test-driver.xml> (a running domain 'vm-gpu' with the GPU and its
  audio function, group 1): group 1 is IN_USE, owned by the domain's name and UUID; SetDomainType,
  ReleaseGroup and BlockGroup are refused naming it; the hook will not prepare it for another domain.
  The test driver's state is private to the daemon's process: events from other processes cannot
  reach it, so events are covered by test-virt-tracker (same process) and the vm scenario.
- iommud with a libvirt that is not there: it starts, serves, and reports no group in use.
- the hook (IOMMUD_SOCKET, IOMMUD_HOOK_DRY_RUN=1: a fixture tree has no kernel to bind drivers) on
  sample domain XML: non-PCI hostdevs ignored, two devices of one group prepared once, an unknown
  address refused with iommud's NOT_FOUND message, malformed XML refused, other operations exit 0
  without contacting iommud, release only of groups held for that domain.
- VFs given as network interfaces (<interface type='hostdev'>), on server-sriov.json: a running test
  domain's VF makes its group IN_USE, owned by the domain; the hook prepares the group of each VF
  interface of a domain it starts.
- a prepare that answers after the hook's deadline (IOMMUD_HOOK_TIMEOUT_SEC=2, /dev/vfio/N appears
  after 3 s): the start fails, and the hook waits for the prepare to complete and releases the group
  (the test plays the kernel: the node appears, an unbind removes the driver link).
  without contacting iommud, release only of groups held for that domain; its iommud.conf
  (IOMMUD_CONFIG_FILE): [LibvirtHook] OnUnreachable=start|fail when iommud is not running, a bad
  value refused, the socket taken from [Listen] Unix=.

Needs /usr/bin/python3 with python3-grpcio and python3-grpc-tools. Prints TAP lines, exits 1 if any
check failed.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

# tests/tap.py: the TAP lines every Python test prints.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402

grpc = tap.require("grpc", "python3-grpcio and python3-grpc-tools")

IOMMUD, HOOK, SOURCE_ROOT = (os.path.abspath(a) for a in sys.argv[1:4])
HERE = os.path.join(SOURCE_ROOT, "tests", "integration", "virt")
RPC_TIMEOUT = 5
VM_GPU_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

TMP = tempfile.mkdtemp(prefix="iommud-virt-")
H = tap.Harness(TMP, SOURCE_ROOT)
PB = None  # H.grpc_stubs()
T = tap.Tap()
check = T.check


def start_daemon(name, tree, libvirt_uri):
    return tap.Daemon(H, IOMMUD, name, tree, "--dbus=none", f"--libvirt-uri={libvirt_uri}",
                      rpc_timeout=RPC_TIMEOUT)


def refusal(fn, request):
    """(status name, message) of a call expected to fail; ("OK", "") if it did not."""
    try:
        fn(request, timeout=RPC_TIMEOUT)
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


def hook(daemon_sock, domain, op, subop, xml_file=None, dry_run=True, config=None, timeout_sec=20):
    """Runs the hook; config: the text of its iommud.conf (None: there is none)."""
    config_file = os.path.join(TMP, "hook-iommud.conf")
    if config is not None:
        with open(config_file, "w") as f:
            f.write(config)
    elif os.path.exists(config_file):
        os.unlink(config_file)
    env = dict(os.environ, IOMMUD_HOOK_TIMEOUT_SEC=str(timeout_sec), IOMMUD_CONFIG_FILE=config_file)
    env.pop("IOMMUD_SOCKET", None)
    if daemon_sock:
        env["IOMMUD_SOCKET"] = daemon_sock
    env.pop("IOMMUD_HOOK_DRY_RUN", None)
    if dry_run:
        env["IOMMUD_HOOK_DRY_RUN"] = "1"
    stdin = open(os.path.join(HERE, xml_file)) if xml_file else subprocess.DEVNULL
    try:
        p = subprocess.run([HOOK, domain, op, subop, "-"], stdin=stdin, capture_output=True, text=True,
                           env=env, timeout=30)
    finally:
        if xml_file:
            stdin.close()
    return p.returncode, p.stdout, p.stderr


def stopped(d):
    rc = d.stop()
    check(rc == 0, f"{os.path.basename(d.dir)}: iommud exits 0 on SIGTERM", f"{rc}\n{d.log_text()}")


def test_tracking(tree):
    d = start_daemon("tracked", tree, "test://" + os.path.join(HERE, "test-driver.xml"))
    try:
        g = d.wait_state(1, PB.api.GROUP_STATE_IN_USE)
        check(g.state == PB.api.GROUP_STATE_IN_USE, "group 1 (vm-gpu's hostdevs) is IN_USE",
              f"{PB.api.GroupState.Name(g.state)}\n{d.log_text()}")
        check(g.owner.kind == "libvirt" and g.owner.domain_name == "vm-gpu" and g.owner.domain_uuid == VM_GPU_UUID,
              "owned by libvirt domain vm-gpu with its UUID", str(g.owner))
        g2 = d.group(2)
        check(g2.state == PB.api.GROUP_STATE_HOST and not g2.owner.domain_name,
              "a group no domain uses stays HOST", str(g2))
        listed = d.api.ListGroups(PB.api.ListGroupsRequest(), timeout=RPC_TIMEOUT)
        in_use = [x.id for x in listed.groups if x.state == PB.api.GROUP_STATE_IN_USE]
        check(in_use == [1], "ListGroups shows group 1, and only it, IN_USE", in_use)

        for name, fn, req in (
                ("ReleaseGroup", d.api.ReleaseGroup, PB.api.ReleaseGroupRequest(group=1, dry_run=True)),
                ("BlockGroup", d.api.BlockGroup, PB.api.BlockGroupRequest(group=1, dry_run=True, force=True)),
                ("SetDomainType", d.api.SetDomainType,
                 PB.api.SetDomainTypeRequest(group=1, type="DMA", dry_run=True, force=True))):
            code, msg = refusal(fn, req)
            check(code == "FAILED_PRECONDITION" and "libvirt domain 'vm-gpu'" in msg and VM_GPU_UUID in msg,
                  f"{name} on the in-use group is refused naming the domain", f"{code}: {msg}")
        code, msg = refusal(d.api.SetDomainType, PB.api.SetDomainTypeRequest(group=2, type="DMA", dry_run=True))
        check("in use by libvirt" not in msg, "other groups are not refused for libvirt", f"{code}: {msg}")

        rc, out, err = hook(d.sock, "other-vm", "prepare", "begin", "domain-gpu.xml")
        check(rc == 1 and "in use by libvirt domain 'vm-gpu'" in err,
              "the hook will not prepare vm-gpu's group for another domain", f"{rc}\n{out}\n{err}")
    finally:
        stopped(d)


def test_libvirt_down(tree):
    sock_path = os.path.join(TMP, "no-such-libvirt-sock")
    d = start_daemon("no-libvirt", tree, "qemu:///system?socket=" + sock_path)
    try:
        g = d.group(1)
        check(g.state == PB.api.GROUP_STATE_HOST, "without libvirt the daemon serves, nothing is in use",
              PB.api.GroupState.Name(g.state))
        time.sleep(1.5)  # at least one retry
        check(d.proc.poll() is None and "Cannot follow libvirt" in d.log_text(),
              "an unreachable libvirt is logged and retried, the daemon keeps running", d.log_text())
        # A socket appears that hangs up on every client: the retries go on, and the new reason is
        # logged once (the same reason is not repeated).
        if tap.asan_build(IOMMUD):
            T.skip("a libvirt socket that appears later is tried", "libvirt's RPC client crashes under "
                   "AddressSanitizer (llvm/llvm-project#81470); the other builds run it")
            return
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sock_path)
        listener.listen(16)

        def hang_up():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                conn.close()
        threading.Thread(target=hang_up, daemon=True).start()
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and d.log_text().count("Cannot follow libvirt") < 2:
            time.sleep(0.2)
        lines = [line for line in d.log_text().splitlines() if "Cannot follow libvirt" in line]
        check(len(lines) == 2 and "No such file" in lines[0] and "No such file" not in lines[1],
              "a libvirt socket that appears later is tried (every 10 s at most), and its new failure logged once",
              d.log_text())
        listener.close()
    finally:
        stopped(d)


def test_hook(tree):
    d = start_daemon("hook", tree, "none")
    try:
        rc, out, err = hook(d.sock, "gpu-vm", "prepare", "begin", "domain-gpu.xml")
        check(rc == 0 and out.count("prepared group 1 (dry run)") == 1 and "prepared group" in out
              and out.count("prepared group") == 1,
              "prepare begin: the GPU and its audio function (one group) are prepared once", f"{rc}\n{out}\n{err}")
        check("0000:01:00.1 to vfio-pci" in out and "0000:01:00.0 to vfio-pci" in out,
              "the whole group goes to vfio-pci", out)

        rc, out, err = hook(os.path.join(TMP, "nowhere.sock"), "usb-vm", "prepare", "begin", "domain-no-pci.xml")
        check(rc == 0 and not out and not err, "non-PCI hostdevs (usb, scsi, mdev) are ignored, iommud not asked",
              f"{rc}\n{out}\n{err}")

        rc, out, err = hook(d.sock, "ghost-vm", "prepare", "begin", "domain-unknown.xml")
        check(rc == 1 and "hostdev 0000:05:00.0: no PCI device 0000:05:00.0" in err,
              "an unknown address stops the start with iommud's NOT_FOUND message", f"{rc}\n{err}")

        # A domain name is libvirt's to choose: what the hook prints of it must not reach the terminal raw.
        rc, out, err = hook(d.sock, "ghost\x1b]0;owned\x07\u202evm", "prepare", "begin", "domain-unknown.xml")
        check(rc == 1 and "domain 'ghost\\x1b]0;owned\\x07\\u202evm'" in err and "\x1b" not in err
              and "\x07" not in err and "\u202e" not in err,
              "the hook prints a domain name with control characters escaped", f"{rc}\n{err!r}")

        rc, out, err = hook(d.sock, "broken-vm", "prepare", "begin", "domain-malformed.xml")
        check(rc == 1 and "the domain XML is malformed" in err, "malformed XML stops the start, saying so",
              f"{rc}\n{err}")

        nowhere = os.path.join(TMP, "nowhere.sock")
        results = [hook(nowhere, "gpu-vm", op, sub) for op, sub in
                   (("start", "begin"), ("started", "begin"), ("stopped", "end"), ("prepare", "end"),
                    ("release", "begin"), ("migrate", "begin"), ("restore", "begin"), ("reconnect", "begin"))]
        check(all(r == (0, "", "") for r in results), "other operations exit 0 without reading or calling",
              results)

        # iommud not running: [LibvirtHook] OnUnreachable= decides, and the hook says what it did.
        rc, out, err = hook(nowhere, "gpu-vm", "prepare", "begin", "domain-gpu.xml")
        check(rc == 0 and "iommud is not running" in err and nowhere in err and "OnUnreachable=start" in err,
              "iommud not running, default OnUnreachable=start: the domain starts, saying why", f"{rc}\n{err}")
        rc, out, err = hook(nowhere, "gpu-vm", "prepare", "begin", "domain-gpu.xml",
                            config="[LibvirtHook]\nOnUnreachable=fail\n")
        check(rc == 1 and "iommud is not running" in err and "not starting the domain" in err,
              "iommud not running, OnUnreachable=fail: the start is stopped, saying why", f"{rc}\n{err}")
        rc, out, err = hook(nowhere, "gpu-vm", "release", "end", "domain-gpu.xml",
                            config="[LibvirtHook]\nOnUnreachable=fail\n")
        check(rc == 0 and "stay with vfio-pci" in err, "iommud not running at release end: exit 0, saying what stays",
              f"{rc}\n{err}")
        rc, out, err = hook(d.sock, "gpu-vm", "prepare", "begin", "domain-gpu.xml",
                            config="[LibvirtHook]\nOnUnreachable=sometimes\n")
        check(rc == 1 and "expected start or fail" in err and "cannot use" in err,
              "a bad iommud.conf stops the start with the parser's message", f"{rc}\n{err}")
        rc, out, err = hook(None, "gpu-vm", "prepare", "begin", "domain-gpu.xml",
                            config=f"[Listen]\nUnix={d.sock}\n")
        check(rc == 0 and "prepared group 1 (dry run)" in out,
              "without IOMMUD_SOCKET the hook finds iommud through [Listen] Unix= of iommud.conf", f"{rc}\n{out}\n{err}")

        # Release only what iommud holds for this domain: group 1 was never prepared (dry runs).
        rc, out, err = hook(d.sock, "gpu-vm", "release", "end", "domain-gpu.xml")
        check(rc == 0 and "released" not in out, "release end leaves groups not held for the domain",
              f"{rc}\n{out}\n{err}")
        rc, out, err = hook(d.sock, "ghost-vm", "release", "end", "domain-unknown.xml")
        check(rc == 0, "release end with a device that is gone exits 0", f"{rc}\n{out}\n{err}")
    finally:
        stopped(d)


def device_group(d, address):
    return d.api.GetDevice(PB.api.GetDeviceRequest(address=address), timeout=RPC_TIMEOUT).group


def test_vf_interfaces(tree):
    d = start_daemon("vf-tracked", tree, "test://" + os.path.join(HERE, "test-driver-vf.xml"))
    try:
        gid = device_group(d, "0000:18:02.0")
        g = d.wait_state(gid, PB.api.GROUP_STATE_IN_USE)
        check(g.state == PB.api.GROUP_STATE_IN_USE and g.owner.domain_name == "vm-vf",
              "a VF given as <interface type='hostdev'> makes its group IN_USE, owned by the domain",
              f"{PB.api.GroupState.Name(g.state)} {g.owner}\n{d.log_text()}")
        code, msg = refusal(d.api.ReleaseGroup, PB.api.ReleaseGroupRequest(group=gid, dry_run=True))
        check(code == "FAILED_PRECONDITION" and "libvirt domain 'vm-vf'" in msg,
              "ReleaseGroup of that VF's group is refused naming the domain", f"{code}: {msg}")
        other = d.group(device_group(d, "0000:18:02.1"))
        check(other.state != PB.api.GROUP_STATE_IN_USE, "the other VFs' groups are not in use",
              PB.api.GroupState.Name(other.state))

        groups = sorted({device_group(d, a) for a in ("0000:18:02.1", "0000:18:02.2")})
        rc, out, err = hook(d.sock, "vf-vm", "prepare", "begin", "domain-vf-interface.xml")
        check(rc == 0 and all(f"prepared group {g} (dry run)" in out for g in groups)
              and out.count("prepared group") == 2,
              "the hook prepares the group of each VF interface, and ignores the network interface",
              f"{rc}\n{out}\n{err}")
    finally:
        stopped(d)


def test_late_prepare(pristine):
    """A prepare that answers only after the hook's deadline is undone by the hook: the VF's group
    is already on vfio-pci, so its prepare is "wait for /dev/vfio/N", which the test makes appear
    only after the deadline. The test plays the kernel's two parts that a fixture tree lacks: the
    node appears, and a write of the address to vfio-pci's unbind removes the driver link."""
    tree = os.path.join(TMP, "late-tree")
    shutil.copytree(pristine, tree, symlinks=True)
    address = "0000:18:02.0"
    d = start_daemon("late", tree, "none")
    node = os.path.join(tree, "dev", "vfio", str(device_group(d, address)))
    gid = device_group(d, address)
    saved = node + ".away"
    os.rename(node, saved)
    unbind = os.path.join(tree, "sys", "bus", "pci", "drivers", "vfio-pci", "unbind")
    link = os.path.join(tree, "sys", "bus", "pci", "devices", address, "driver")
    stop = threading.Event()

    def kernel():
        start = time.monotonic()
        while not stop.wait(0.05):
            if os.path.exists(saved) and time.monotonic() - start > 3.0:
                os.rename(saved, node)
            with open(unbind) as f:
                if address in f.read() and os.path.islink(link):
                    os.unlink(link)
    t = threading.Thread(target=kernel, daemon=True)
    t.start()
    try:
        rc, out, err = hook(d.sock, "late-vm", "prepare", "begin", "domain-late.xml", dry_run=False, timeout_sec=2)
        check(rc == 1 and "no answer within the timeout" in err,
              "a prepare without an answer within IOMMUD_HOOK_TIMEOUT_SEC fails the start", f"{rc}\n{out}\n{err}")
        check(f"group {gid} was prepared after all; releasing it" in err and f"released group {gid}" in out,
              "the hook waits for the late prepare to complete, then releases the group", f"{out}\n{err}")
        g = d.group(gid)
        check(g.state == PB.api.GROUP_STATE_HOST and not g.owner.client,
              "after the hook, the group is the host's again, with no owner",
              f"{PB.api.GroupState.Name(g.state)} {g.owner}\n{d.log_text()}")
    finally:
        stop.set()
        t.join()
        stopped(d)


def main():
    global PB
    try:
        PB = H.grpc_stubs()
        tree = H.fixture_tree("desktop-gpu", "desktop-gpu")
        test_tracking(tree)
        test_libvirt_down(tree)
        test_hook(tree)
        sriov = H.fixture_tree("server-sriov", "server-sriov")
        test_vf_interfaces(sriov)
        test_late_prepare(sriov)
    finally:
        H.stop_all()
        shutil.rmtree(TMP, ignore_errors=True)
    return T.plan()


if __name__ == "__main__":
    sys.exit(main())
