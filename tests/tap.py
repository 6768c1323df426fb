"""TAP output for the Python tests: numbered ok / not ok lines, the detail of a failure as comments.

And what the integration tests start, shared (Harness): processes that die with the test, fixture
trees, a private D-Bus bus and a monitor of it, gRPC stubs generated from proto/, and iommud serving
gRPC on a Unix socket."""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types


class Tap:
    def __init__(self, detail_head=False):
        """A failure's detail is shown as its last 40 lines (a log), or its first 40 (a sorted diff)."""
        self.count = 0
        self.failed = 0
        self.detail_head = detail_head

    def check(self, ok, what, detail=""):
        self.count += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.count} - {what}")
        if not ok and detail:
            lines = str(detail).splitlines()
            for line in lines[:40] if self.detail_head else lines[-40:]:
                print(f"#   {line}")
        sys.stdout.flush()
        return ok

    def skip(self, what, why):
        self.count += 1
        print(f"ok {self.count} - {what} # SKIP {why}")
        sys.stdout.flush()

    def plan(self):
        """Prints the plan, last; returns the exit status: 1 when a check failed."""
        print(f"1..{self.count}")
        sys.stdout.flush()
        return 1 if self.failed else 0

    @staticmethod
    def note(text):
        for line in str(text).splitlines():
            print(f"# {line}")
        sys.stdout.flush()


def require(module, packages):
    """The module imported, or else one failed TAP line that names the Debian packages to install,
    and exit 1: a test never passes by skipping what it needs."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"not ok 1 - {module} is missing for {sys.executable}: install {packages}")
        sys.exit(1)


def asan_build(executable):
    """An AddressSanitizer build: its xdr interceptors crash libvirt's RPC client (Debian 12's glibc
    has no sunrpc; libvirt uses libtirpc), llvm/llvm-project#81470, so what talks to a libvirtd over
    RPC runs only in the other builds."""
    r = subprocess.run(["ldd", executable], capture_output=True, text=True)
    return "libasan" in r.stdout or "libclang_rt.asan" in r.stdout


# ---- start-up helpers --------------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1

# A bus every user may connect to, own names on and call: the daemon's own checks are under test.
OPEN_BUS_POLICY = """  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
"""


def _die_with_parent():
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_process(p, grace=10):
    """SIGTERM, then SIGKILL if p has not exited after grace seconds; its exit status."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


class Harness:
    """What a test starts, below its temporary directory tmp: every process is killed when the test
    dies (PR_SET_PDEATHSIG), and stop_all() ends those still running, last started first."""

    def __init__(self, tmp, source_root):
        self.tmp = tmp
        self.source_root = source_root
        self.procs = []
        self.pb = None  # grpc_stubs()

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)
        self.procs.append(p)
        return p

    def stop_all(self, grace=10):
        for p in reversed(self.procs):
            stop_process(p, grace)

    def fixture_tree(self, host, name):
        """tests/fixtures/hosts/<host>.json built with gen-host.py into tmp/name; its path."""
        tree = os.path.join(self.tmp, name)
        fixtures = os.path.join(self.source_root, "tests", "fixtures")
        subprocess.run([sys.executable, os.path.join(fixtures, "gen-host.py"),
                        os.path.join(fixtures, "hosts", host + ".json"), tree], check=True, stdout=subprocess.DEVNULL)
        return tree

    def start_bus(self, name="bus", bus_type="session", policy=OPEN_BUS_POLICY):
        """dbus-daemon with that policy, listening on tmp/name (a socket open to every user); its address."""
        config = os.path.join(self.tmp, f"{name}.conf")
        with open(config, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{bus_type}</type>
  <listen>unix:path={self.tmp}/{name}</listen>
  <auth>EXTERNAL</auth>
{policy}</busconfig>
""")
        with open(os.path.join(self.tmp, f"{name}-daemon.log"), "w") as log:
            p = self.start(["dbus-daemon", "--nofork", f"--config-file={config}", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=log, text=True)
        address = p.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        os.chmod(os.path.join(self.tmp, name), 0o777)
        return address

    def grpc_stubs(self):
        """The Python modules protoc generates from proto/iommud/v1/iommud.proto (into tmp/py), as .api
        (messages) and .api_grpc (the IommuManager stub); kept in self.pb."""
        import importlib
        src, out = os.path.join(self.tmp, "proto"), os.path.join(self.tmp, "py")
        os.makedirs(os.path.join(src, "iommud", "v1"))
        shutil.copy(os.path.join(self.source_root, "proto", "iommud", "v1", "iommud.proto"),
                    os.path.join(src, "iommud", "v1"))
        os.makedirs(out)
        subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", src, "--python_out", out,
                        "--grpc_python_out", out, "iommud/v1/iommud.proto"], check=True)
        sys.path.insert(0, out)
        self.pb = types.SimpleNamespace(api=importlib.import_module("iommud.v1.iommud_pb2"),
                                        api_grpc=importlib.import_module("iommud.v1.iommud_pb2_grpc"))
        return self.pb


class Daemon:
    """iommud on a fixture tree (no udev, no periodic rescan, its directories and the gRPC socket in
    tmp/name), started once it has told systemd READY=1; .api is its gRPC stub (needs grpc_stubs())."""

    def __init__(self, harness, iommud, name, tree, *extra, rpc_timeout=10):
        import grpc
        self.pb = harness.pb
        self.rpc_timeout = rpc_timeout
        self.dir = os.path.join(harness.tmp, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "iommud.sock")
        self.log = os.path.join(self.dir, "stderr.log")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(self.dir, "notify"))
        notify.settimeout(0.1)
        args = [iommud, "--root", tree, "--udev=no", "--rescan-interval=0", f"--unix-socket={self.sock}",
                f"--state-directory={self.dir}/state", f"--runtime-directory={self.dir}/run",
                f"--policy-directory={self.dir}/policy", *extra]
        with open(self.log, "w") as log:
            self.proc = harness.start(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      env=dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, "notify")))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if "READY=1" in notify.recv(4096).decode().splitlines():
                    break
            except socket.timeout:
                if self.proc.poll() is not None:
                    break
        notify.close()
        if self.proc.poll() is not None:
            raise RuntimeError(f"{name}: iommud exited:\n{self.log_text()}")
        self.channel = grpc.insecure_channel(f"unix:{self.sock}")
        self.api = self.pb.api_grpc.IommuManagerStub(self.channel)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def group(self, gid):
        return self.api.GetGroup(self.pb.api.GetGroupRequest(id=gid), timeout=self.rpc_timeout)

    def rescan(self):
        return self.api.Rescan(self.pb.api.RescanRequest(), timeout=self.rpc_timeout)

    def wait_state(self, gid, state, timeout=None):
        """The group once it is in state, or as it is when timeout (default: the RPC timeout) has passed."""
        deadline = time.monotonic() + (timeout or self.rpc_timeout)
        g = self.group(gid)
        while g.state != state and time.monotonic() < deadline:
            time.sleep(0.05)
            g = self.group(gid)
        return g

    def stop(self):
        """SIGTERM (SIGKILL after 10 s); the exit status."""
        self.channel.close()
        return stop_process(self.proc)


class BusMonitor:
    """busctl monitor of a bus name in JSON: every message to or from it, collected on a thread."""

    def __init__(self, harness, address, name="org.iommud1", timeout=10):
        self.timeout = timeout
        self.proc = harness.start(["busctl", f"--address={address}", "monitor", name, "--json=short"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.messages = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.messages.append(m)
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.messages)

    def signals(self, since, member):
        with self.cond:
            return [m for m in self.messages[since:] if m.get("type") == "signal" and m.get("member") == member]

    def wait_for(self, since, predicate, timeout=None):
        """The signals since mark() that satisfy predicate, once there is one; [] after timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while True:
                found = [m for m in self.messages[since:] if m.get("type") == "signal" and predicate(m)]
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.cond.wait(left)
