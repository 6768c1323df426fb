"""What the Python scenarios share inside the guest: the daemon under test, its gRPC stubs, sysfs
reads and a check() that records failures."""
import os
import signal
import subprocess
import sys
import time

RESULTS = os.environ["RESULTS"]
IOMMUD = os.environ["IOMMUD"]
SOURCE_DIR = os.environ["SOURCE_DIR"]
# Generated once per boot and shared by the scenarios: protoc takes seconds under TCG.
STUBS = "/run/iommud-guest-stubs"

if not os.path.exists(os.path.join(STUBS, "iommud", "v1", "iommud_pb2_grpc.py")):
    os.makedirs(STUBS, exist_ok=True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{SOURCE_DIR}/proto", f"--python_out={STUBS}",
                    f"--grpc_python_out={STUBS}", f"{SOURCE_DIR}/proto/iommud/v1/iommud.proto"], check=True)
sys.path.insert(0, STUBS)

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from iommud.v1 import iommud_pb2, iommud_pb2_grpc  # noqa: E402,F401

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def sysfs(path):
    with open(path) as f:
        return f.read().strip()


def driver(address):
    link = f"/sys/bus/pci/devices/{address}/driver"
    return os.path.basename(os.readlink(link)) if os.path.exists(link) else None


def override(address):
    return sysfs(f"/sys/bus/pci/devices/{address}/driver_override")


def group_of(address):
    return int(os.path.basename(os.readlink(f"/sys/bus/pci/devices/{address}/iommu_group")))


def group_type(group):
    return sysfs(f"/sys/kernel/iommu_groups/{group}/type")


def members(group):
    return sorted(os.listdir(f"/sys/kernel/iommu_groups/{group}/devices"))


def header_type(address):
    with open(f"/sys/bus/pci/devices/{address}/config", "rb") as f:
        return f.read(16)[14] & 0x7F


def endpoints(group):
    return [d for d in members(group) if header_type(d) == 0]


class Client:
    """A gRPC client of an iommud that is already running (e.g. started by systemd)."""

    def __init__(self, socket):
        self.channel = grpc.insecure_channel("unix://" + socket)
        self.stub = iommud_pb2_grpc.IommuManagerStub(self.channel)

    def call(self, method, **request):
        """("OK", reply) or (status name, message)."""
        input_type = iommud_pb2.DESCRIPTOR.services_by_name["IommuManager"].methods_by_name[method].input_type
        message = json_format.ParseDict(request, getattr(iommud_pb2, input_type.name)())
        try:
            return "OK", getattr(self.stub, method)(message, timeout=120)
        except grpc.RpcError as e:
            return e.code().name, e.details()

    def close(self):
        self.channel.close()


class Daemon(Client):
    """iommud on the guest's real /sys, on its own socket and state directories. wrapper is a
    command line the daemon runs under (e.g. guest/unit-sandbox); socket, runtime_dir and
    state_dir replace the defaults."""

    SOCKET = "/run/iommud-test.sock"
    RUNTIME_DIR = "/run/iommud-ops"
    STATE_DIR = "/run/iommud-state"

    def __init__(self, *extra_args, fault_after_step=0, udev=False, wrapper=(), socket=None,
                 runtime_dir=RUNTIME_DIR, state_dir=STATE_DIR):
        env = dict(os.environ)
        if fault_after_step:
            env["IOMMUD_FAULT_AFTER_STEP"] = str(fault_after_step)
        self.SOCKET = socket or self.SOCKET
        self.log = open(os.path.join(RESULTS, "iommud.log"), "a")
        if os.path.exists(self.SOCKET):
            os.unlink(self.SOCKET)  # a previous daemon's, so that we wait for this one's
        self.process = subprocess.Popen(
            [*wrapper, IOMMUD, "--unix-socket", self.SOCKET, f"--udev={'yes' if udev else 'no'}",
             "--rescan-interval=0", f"--runtime-directory={runtime_dir}", f"--state-directory={state_dir}",
             *extra_args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.SOCKET) and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(self.SOCKET):
            sys.exit("iommud did not start; see iommud.log")
        super().__init__(self.SOCKET)

    def stop(self):
        self.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                check(False, "iommud ends within 30 s of SIGTERM")
                self.process.kill()
                self.process.wait()
        if os.path.exists(self.SOCKET):
            os.unlink(self.SOCKET)


def qmp(command):
    """Has the host run one QMP command on this guest's QEMU."""
    out = subprocess.run([os.path.join(os.environ["VMDIR"], "guest", "qmp"), command], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"QMP {command}: {out.stdout}{out.stderr}")
    return out.stdout


def wait_until(predicate, timeout=30, interval=0.002):
    """Polls; returns the time.time() at which predicate() first held, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(interval)
    return None


def finish():
    print(f"{len(failures)} failures")
    return 1 if failures else 0
