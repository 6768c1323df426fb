#!/usr/bin/python3
"""The real iommud daemon on fixture host trees, called over gRPC with stock python3-grpcio.

usage: test_daemon_grpc.py IOMMUD SOURCE_ROOT IOMMUCTL

Builds tests/fixtures/hosts/desktop-gpu.json with gen-host.py, generates Python stubs from proto/
with grpc_tools.protoc and a test PKI with openssl, then starts `IOMMUD --root TREE --udev=no
--rescan-interval=0` several times (Unix socket in a temporary directory; TCP with mutual TLS for
one of them) and checks what a client sees: reads and their filters, status codes, roles over Unix
and TLS, reflection, health, Watch latency after Rescan, SIGHUP/SIGUSR1/SIGTERM, the watcher limit,
bad settings files and malformed requests, and a daemon whose state directory is read-only (reads
served, every mutation refused with the reason, shown by GetHost and `iommuctl status`). Readiness
and reloads are awaited through NOTIFY_SOCKET.

Needs /usr/bin/python3 with python3-grpcio and python3-grpc-tools, and openssl. Fails (does not
skip) without them. Prints one line per check ("ok N - ..." / "not ok N - ..."), exits 1 if any
failed, and stops every daemon it started and removes its temporary directory in all cases.
"""
import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types

# tests/tap.py: the TAP lines every Python test prints.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402

try:
    import grpc
    from google.protobuf import json_format
except ImportError:
    print(f"not ok 1 - python3-grpcio is missing for {sys.executable}: install python3-grpcio and "
          "python3-grpc-tools (Debian's /usr/bin/python3 has them)")
    sys.exit(1)

IOMMUD = os.path.abspath(sys.argv[1]) if len(sys.argv) == 4 else None
SOURCE_ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) == 4 else None
IOMMUCTL = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else None
FIXTURE = "desktop-gpu"
LATENCY_LIMIT = 0.100  # seconds from Rescan to the WatchEvent
RPC_TIMEOUT = 5
MANAGER = "iommud.v1.IommuManager"
# Methods that change the host, with the role they need; none is implemented yet.
MUTATIONS = {"SetDomainType": "admin", "PrepareGroup": "operator", "ReleaseGroup": "operator",
             "BlockGroup": "admin", "UnblockGroup": "admin", "ApplyPolicy": "admin"}
# Dry runs only: on a fixture tree the kernel's side of a real operation cannot happen. Group 1 is the
# GPU's (port, GPU unbound, audio on snd_hda_intel), never prepared or blocked: release and unblock
# have nothing recorded to give back.
MUTATION_REQUESTS = {
    "SetDomainType": ({"group": 1, "type": "DMA", "dry_run": True}, "OK"),
    "PrepareGroup": ({"group": 1, "dry_run": True}, "OK"),
    "ReleaseGroup": ({"group": 1, "dry_run": True}, "NOT_FOUND"),
    "BlockGroup": ({"group": 1, "dry_run": True}, "OK"),
    "UnblockGroup": ({"group": 1, "dry_run": True}, "NOT_FOUND"),
    "ApplyPolicy": ({"dry_run": True}, "OK"),
}
POLICY_READS = ("GetPolicy", "Plan")  # reader role

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1

TMP = None
PB = None  # namespace of generated modules, set by generate_stubs()
DAEMONS = []


# ---- output ---------------------------------------------------------------------------------------

class Tap(tap.Tap):
    def status(self, call, code, what, contains=()):
        """Runs call(); it must fail with code and a message holding every string in contains."""
        try:
            call()
        except grpc.RpcError as e:
            missing = [c for c in contains if c not in (e.details() or "")]
            return self.check(e.code() == code and not missing, what,
                              f"expected {code.name} naming {list(contains)}, got {e.code().name}: {e.details()!r}")
        return self.check(False, what, f"expected {code.name}, the call succeeded")


T = Tap()


# ---- stubs, PKI, fixture ----------------------------------------------------------------------------

def generate_stubs():
    """Python modules for our .proto files; grpc/health and grpc/reflection are copied under other
    directory names so the generated packages do not shadow grpcio's own `grpc` package."""
    global PB
    src, out = os.path.join(TMP, "proto"), os.path.join(TMP, "py")
    copies = {"iommud/v1/iommud.proto": "iommud/v1/iommud.proto",
              "grpc/health/v1/health.proto": "stub_health/health.proto",
              "grpc/reflection/v1/reflection.proto": "stub_reflection/v1/reflection.proto",
              "grpc/reflection/v1alpha/reflection.proto": "stub_reflection/v1alpha/reflection.proto"}
    for frm, to in copies.items():
        os.makedirs(os.path.dirname(os.path.join(src, to)), exist_ok=True)
        shutil.copy(os.path.join(SOURCE_ROOT, "proto", frm), os.path.join(src, to))
    os.makedirs(out)
    subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", src, "--python_out", out,
                    "--grpc_python_out", out] + list(copies.values()), check=True)
    sys.path.insert(0, out)
    import importlib
    PB = types.SimpleNamespace()
    PB.api = importlib.import_module("iommud.v1.iommud_pb2")
    PB.api_grpc = importlib.import_module("iommud.v1.iommud_pb2_grpc")
    PB.health = importlib.import_module("stub_health.health_pb2")
    PB.health_grpc = importlib.import_module("stub_health.health_pb2_grpc")
    PB.refl = importlib.import_module("stub_reflection.v1.reflection_pb2")
    PB.refl_alpha = importlib.import_module("stub_reflection.v1alpha.reflection_pb2")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, cwd=os.path.join(TMP, "pki"),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki():
    """ca signs the server and the clients "reader", "admin" and "stranger" (mapped to no role);
    rogue-ca signs a second "admin" the daemon must not trust."""
    os.makedirs(os.path.join(TMP, "pki"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-subj", f"/CN=iommud test {ca}",
                "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    certs = [("server", "localhost", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
             ("reader", "reader", "ca", "extendedKeyUsage=clientAuth\n"),
             ("admin", "admin", "ca", "extendedKeyUsage=clientAuth\n"),
             ("stranger", "stranger", "ca", "extendedKeyUsage=clientAuth\n"),
             ("rogue", "admin", "rogue-ca", "extendedKeyUsage=clientAuth\n")]
    for name, cn, ca, ext in certs:
        with open(os.path.join(TMP, "pki", f"{name}.ext"), "w") as f:
            f.write(ext)
        openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/O=iommud-test/CN={cn}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


def pki(name):
    return os.path.join(TMP, "pki", name)


def pki_bytes(name):
    with open(pki(name), "rb") as f:
        return f.read()


def make_fixture():
    """The pristine tree: daemons that change their tree get a copy_tree() of it."""
    tree = os.path.join(TMP, "fixture")
    subprocess.run(["/usr/bin/python3", os.path.join(SOURCE_ROOT, "tests/fixtures/gen-host.py"),
                    os.path.join(SOURCE_ROOT, f"tests/fixtures/hosts/{FIXTURE}.json"), tree], check=True)
    return tree


def copy_tree(tree, name):
    dst = os.path.join(TMP, name)
    shutil.copytree(tree, dst, symlinks=True)
    return dst


def dump(tree):
    p = subprocess.run([IOMMUD, "--dump", "--compact", "--root", tree], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30, check=True)
    return json.loads(p.stdout)


def device_dir(tree, address):
    return os.path.realpath(os.path.join(tree, "sys/bus/pci/devices", address))


def set_driver(tree, address, driver):
    """Unbinds (driver None) or binds the device the way sysfs shows it: a relative `driver` link."""
    link = os.path.join(device_dir(tree, address), "driver")
    if os.path.islink(link):
        os.unlink(link)
    if driver:
        os.symlink(os.path.relpath(os.path.join(tree, "sys/bus/pci/drivers", driver), os.path.dirname(link)), link)


def set_group_type(tree, group, type_):
    with open(os.path.join(tree, f"sys/kernel/iommu_groups/{group}/type"), "w") as f:
        f.write(type_ + "\n")


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the daemon -------------------------------------------------------------------------------------

def die_with_test():
    """In the child before exec: even a SIGKILLed test leaves no daemon behind."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Daemon:
    """One iommud process with its own directory, Unix socket, log and NOTIFY_SOCKET."""

    def __init__(self, name, tree, *flags, tls_port=None, read_only_state=False):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "iommud.sock")
        self.log = os.path.join(self.dir, "stderr.log")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.tls_port = tls_port
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(os.path.join(self.dir, "notify"))
        # read_only_state="missing": the state directory does not exist, on a read-only file system.
        state = os.path.join(self.state, "missing") if read_only_state == "missing" else self.state
        args = [IOMMUD, "--root", tree, "--udev=no", "--rescan-interval=0", f"--unix-socket={self.sock}",
                f"--state-directory={state}", f"--runtime-directory={os.path.join(self.dir, 'run')}"]
        if tls_port:
            args += [f"--listen-tls=127.0.0.1:{tls_port}", f"--tls-certificate={pki('server.crt')}",
                     f"--tls-key={pki('server.key')}", f"--tls-client-ca={pki('ca.crt')}"]
        args += list(flags)
        if read_only_state:
            args = read_only(self.state, args)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, "notify")),
                                         preexec_fn=die_with_test)
        DAEMONS.append(self)
        if not self.wait_notify("READY=1"):
            raise RuntimeError(f"{name}: iommud did not become ready:\n{self.log_text()}")

    def wait_notify(self, word, timeout=10):
        """Waits for an sd_notify datagram holding the line word; False if the daemon exits first."""
        deadline = time.monotonic() + timeout
        self.notify.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                if word in self.notify.recv(4096).decode().splitlines():
                    return True
            except socket.timeout:
                if self.proc.poll() is not None:
                    return False
        return False

    def drain_notify(self):
        self.notify.setblocking(False)
        try:
            while self.notify.recv(4096):
                pass
        except BlockingIOError:
            pass

    def reload(self):
        """SIGHUP, then wait until the daemon has answered RELOADING=1 with READY=1."""
        self.drain_notify()
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_notify("RELOADING=1") and self.wait_notify("READY=1")

    def channel(self):
        # A local subchannel pool gives every channel its own connection.
        return grpc.insecure_channel(f"unix:{self.sock}", options=[("grpc.use_local_subchannel_pool", 1)])

    def tls_channel(self, client, trust="ca.crt"):
        kw = {"root_certificates": pki_bytes(trust)}
        if client:
            kw.update(private_key=pki_bytes(f"{client}.key"), certificate_chain=pki_bytes(f"{client}.crt"))
        return grpc.secure_channel(f"127.0.0.1:{self.tls_port}", grpc.ssl_channel_credentials(**kw),
                                   options=[("grpc.use_local_subchannel_pool", 1)])

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, timeout=10):
        """SIGTERM; the exit status, or None if it had to be killed."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def close(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


def read_only(directory, args):
    """The command args with directory read-only as a read-only file system makes it: a read-only bind
    mount in a mount namespace of the daemon's own (root), or mode 0555 (another user)."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)
        return args
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, directory, "--"] + args


def manager(channel):
    return PB.api_grpc.IommuManagerStub(channel)


def health_status(channel, service):
    return PB.health_grpc.HealthStub(channel).Check(PB.health.HealthCheckRequest(service=service),
                                                    timeout=RPC_TIMEOUT).status


def call_method(channel, name, request=None):
    """Calls an IommuManager method by name with its default (or given) request."""
    method = PB.api.DESCRIPTOR.services_by_name["IommuManager"].methods_by_name[name]
    if request is None:
        request = getattr(PB.api, method.input_type.name)()
    return getattr(manager(channel), name)(request, timeout=RPC_TIMEOUT)


def raw_unary(channel, path, payload):
    return channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)(
        payload, timeout=RPC_TIMEOUT)


class Watch:
    """A Watch stream read by a thread; events are (arrival monotonic time, WatchEvent). The end of
    the stream is queued as (time, None) when it ends OK, or (time, RpcError)."""

    def __init__(self, channel, send_snapshot=True):
        self.call = manager(channel).Watch(PB.api.WatchRequest(send_snapshot=send_snapshot))
        self.events = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.call:
                self.events.put((time.monotonic(), ev))
            self.events.put((time.monotonic(), None))
        except grpc.RpcError as e:
            self.events.put((time.monotonic(), e))

    def next(self, timeout=RPC_TIMEOUT):
        """(time, item), or (None, None) when nothing arrived in time."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None, None

    def wait_for(self, match, timeout):
        """The first event for which match(ev) holds, skipping others; (None, None) on timeout or end."""
        deadline = time.monotonic() + timeout
        while True:
            t, item = self.next(max(0.0, deadline - time.monotonic()))
            if t is None or not isinstance(item, PB.api.WatchEvent):
                return None, item
            if match(item):
                return t, item

    def cancel(self):
        self.call.cancel()
        self.thread.join(timeout=RPC_TIMEOUT)


def ids(groups):
    return sorted(g.id for g in groups)


def list_groups(channel, **filters):
    return ids(manager(channel).ListGroups(PB.api.ListGroupsRequest(**filters), timeout=RPC_TIMEOUT).groups)


# ---- checks -----------------------------------------------------------------------------------------

def check_health(channel, transport):
    SERVING = PB.health.HealthCheckResponse.SERVING
    for service in ("", MANAGER):
        status = health_status(channel, service)
        T.check(status == SERVING, f"{transport}: health Check({service!r}) is SERVING", f"got status {status}")


def check_reflection(channel, transport):
    """The raw ServerReflectionInfo stream: list_services, then file_containing_symbol for our service,
    whose descriptor must list the methods of our own .proto."""
    from google.protobuf import descriptor_pb2
    requests = [PB.refl.ServerReflectionRequest(list_services="*"),
                PB.refl.ServerReflectionRequest(file_containing_symbol=MANAGER)]
    info = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 request_serializer=PB.refl.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=PB.refl.ServerReflectionResponse.FromString)
    listed, described = list(info(iter(requests), timeout=RPC_TIMEOUT))
    names = {s.name for s in listed.list_services_response.service}
    T.check({MANAGER, "grpc.health.v1.Health"} <= names, f"{transport}: reflection list_services names {MANAGER}",
            f"listed {sorted(names)}")
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    ours = [f for f in files if f.name == "iommud/v1/iommud.proto"]
    methods = {m.name for f in ours for s in f.service if s.name == "IommuManager" for m in s.method}
    expected = set(PB.api.DESCRIPTOR.services_by_name["IommuManager"].methods_by_name)
    T.check(methods == expected, f"{transport}: reflection file_containing_symbol {MANAGER} gives "
            f"iommud/v1/iommud.proto with its {len(expected)} methods",
            f"files {[f.name for f in files]}, methods {sorted(methods)}, error {described.error_response}")

    alpha = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  request_serializer=PB.refl_alpha.ServerReflectionRequest.SerializeToString,
                                  response_deserializer=PB.refl_alpha.ServerReflectionResponse.FromString)
    (listed,) = list(alpha(iter([PB.refl_alpha.ServerReflectionRequest(list_services="*")]), timeout=RPC_TIMEOUT))
    names = {s.name for s in listed.list_services_response.service}
    T.check(MANAGER in names, f"{transport}: reflection v1alpha list_services names {MANAGER}",
            f"listed {sorted(names)}")


def check_reads(ch, oracle):
    stub = manager(ch)
    host = stub.GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT)
    T.check(host.host.kernel_release == oracle["host"]["kernel_release"] and host.host.iommu_enabled
            and host.group_count == len(oracle["groups"]) and host.device_count == len(oracle["devices"])
            and [u.name for u in host.units] == [u["name"] for u in oracle["units"]],
            f"GetHost: kernel, IOMMU on, {len(oracle['groups'])} groups, {len(oracle['devices'])} devices, "
            "units as in --dump", str(host)[:2000])

    groups = stub.ListGroups(PB.api.ListGroupsRequest(), timeout=RPC_TIMEOUT).groups
    got = [(g.id, g.domain_type, g.viable, list(g.device_addresses), [d.address for d in g.devices]) for g in groups]
    want = [(g["id"], g["type"], g["viable"], g["devices"], g["devices"]) for g in oracle["groups"]]
    T.check(got == want, "ListGroups without filters: every group with its type, viability and full member "
            "records, as in --dump", f"got {got}\nwant {want}")

    devices = stub.ListDevices(PB.api.ListDevicesRequest(), timeout=RPC_TIMEOUT).devices
    T.check([d.address for d in devices] == [d["address"] for d in oracle["devices"]],
            "ListDevices lists the devices of --dump", [d.address for d in devices])
    units = stub.ListUnits(PB.api.ListUnitsRequest(), timeout=RPC_TIMEOUT).units
    T.check([u.name for u in units] == ["dmar0", "dmar1"], "ListUnits lists dmar0 and dmar1",
            [u.name for u in units])

    # desktop-gpu.json: group 1 = root port 00:01.0 + NVIDIA GPU 01:00.0 (unbound) + its audio;
    # 2 = the i915 iGPU; 4 and 8 hold unbound functions; only 7 is viable; this tree's group 9 was
    # set to DMA-FQ before the start, every other group is identity.
    all_ids = ids(groups)
    Api = PB.api.ListGroupsRequest
    cases = [
        ("type DMA-FQ", {"type": ["DMA-FQ"]}, [9]),
        ("type identity or DMA-FQ", {"type": ["identity", "DMA-FQ"]}, all_ids),
        ("type DMA", {"type": ["DMA"]}, []),
        ("viable", {"viable": Api.VIABILITY_VIABLE}, [7]),
        ("not viable", {"viable": Api.VIABILITY_NOT_VIABLE}, [i for i in all_ids if i != 7]),
        ("vendor 10de", {"vendor": ["10de"]}, [1]),
        ("vendor name substring 'nvidia'", {"vendor": ["nvidia"]}, [1]),
        ("class 03", {"class": ["03"]}, [1, 2]),
        ("class name substring 'VGA'", {"class": ["VGA"]}, [1, 2]),
        ("driver none", {"driver": ["none"]}, [1, 4, 8]),
        ("driver i915", {"driver": ["i915"]}, [2]),
        ("vendor 10de AND driver none", {"vendor": ["10de"], "driver": ["none"]}, [1]),
        ("class 03 AND driver i915", {"class": ["03"], "driver": ["i915"]}, [2]),
    ]
    for what, filters, expected in cases:
        got = list_groups(ch, **filters)
        T.check(got == expected, f"ListGroups filter {what}: groups {expected}", f"got {got}")
    T.status(lambda: list_groups(ch, type=["bogus"]), grpc.StatusCode.INVALID_ARGUMENT,
             "ListGroups with an unknown domain type is INVALID_ARGUMENT naming it", ["bogus"])
    T.status(lambda: list_groups(ch, **{"class": ["0300000"]}), grpc.StatusCode.INVALID_ARGUMENT,
             "ListGroups with a 7-digit class code is INVALID_ARGUMENT")

    g = stub.GetGroup(PB.api.GetGroupRequest(id=1), timeout=RPC_TIMEOUT)
    T.check(list(g.device_addresses) == ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"] and not g.viable
            and g.domain_type == "identity", "GetGroup 1: port, GPU and audio, identity, not viable", str(g)[:1500])
    n = len(oracle["groups"])
    T.status(lambda: stub.GetGroup(PB.api.GetGroupRequest(id=99), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND,
             f"GetGroup 99 is NOT_FOUND naming the group count ({n})", ["99", f"{n} groups"])

    d = stub.GetDevice(PB.api.GetDeviceRequest(address="01:00.0"), timeout=RPC_TIMEOUT)
    T.check(d.address == "0000:01:00.0" and d.vendor_id == 0x10de and d.device_id == 0x2204 and d.group == 1
            and d.driver == "" and d.driver_override == "vfio-pci",
            "GetDevice accepts the short address 01:00.0: the RTX 3090, unbound, override vfio-pci, group 1",
            str(d)[:1500])
    T.status(lambda: stub.GetDevice(PB.api.GetDeviceRequest(address="zz"), timeout=RPC_TIMEOUT),
             grpc.StatusCode.INVALID_ARGUMENT, "GetDevice 'zz' is INVALID_ARGUMENT", ["zz"])
    nd = len(oracle["devices"])
    T.status(lambda: stub.GetDevice(PB.api.GetDeviceRequest(address="0000:05:00.0"), timeout=RPC_TIMEOUT),
             grpc.StatusCode.NOT_FOUND, f"GetDevice 0000:05:00.0 is NOT_FOUND naming the device count ({nd})",
             ["0000:05:00.0", f"{nd} PCI devices"])


def call_outcome(ch, name, request):
    """("OK", reply) or (status name, details)."""
    method = PB.api.DESCRIPTOR.services_by_name["IommuManager"].methods_by_name[name]
    message = json_format.ParseDict(request, getattr(PB.api, method.input_type.name)())
    try:
        return "OK", call_method(ch, name, message)
    except grpc.RpcError as e:
        return e.code().name, e.details()


def check_methods_for_role(ch, transport, role):
    """Mutations answer (dry runs) for a caller with the role they need, PERMISSION_DENIED naming that
    role otherwise; GetPolicy and Plan answer everyone with a role."""
    rank = ["reader", "operator", "admin"]
    for name, needed in MUTATIONS.items():
        request, expected = MUTATION_REQUESTS[name]
        if rank.index(role) >= rank.index(needed):
            status, reply = call_outcome(ch, name, request)
            ok = status == expected and (status != "OK" or name == "ApplyPolicy" or
                                         (reply.dry_run and len(reply.steps) > 0))
            T.check(ok, f"{transport}: {name} as {role} answers {expected} (dry run)", f"got {status}: {reply}")
        else:
            T.status(lambda: call_method(ch, name), grpc.StatusCode.PERMISSION_DENIED,
                     f"{transport}: {name} as {role} is PERMISSION_DENIED naming role {needed}",
                     [f"{name} needs the {needed} role"])
    for name in POLICY_READS:
        status, reply = call_outcome(ch, name, {})
        T.check(status == "OK", f"{transport}: {name} as {role} answers", f"got {status}: {reply}")
    if role == "reader":
        T.status(lambda: call_method(ch, "Rescan"), grpc.StatusCode.PERMISSION_DENIED,
                 f"{transport}: Rescan as reader is PERMISSION_DENIED naming role operator", ["Rescan needs the operator role"])


def check_tls(d):
    with d.tls_channel("reader") as ch:
        check_health(ch, "mTLS reader")
        host = manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT)
        T.check(host.group_count == 10, "mTLS: a client certificate mapped to reader (cn:reader) reads GetHost",
                str(host)[:500])
        check_reflection(ch, "mTLS")
        check_methods_for_role(ch, "mTLS", "reader")
    with d.tls_channel("admin") as ch:
        check_methods_for_role(ch, "mTLS", "admin")
        resp = manager(ch).Rescan(PB.api.RescanRequest(), timeout=RPC_TIMEOUT)
        T.check(resp.changes == 0, "mTLS: Rescan as admin (cn:admin) succeeds, 0 changes on an unchanged tree",
                str(resp))
    with d.tls_channel("stranger") as ch:
        T.status(lambda: call_method(ch, "GetHost"), grpc.StatusCode.PERMISSION_DENIED,
                 "mTLS: a trusted certificate mapped to no role is PERMISSION_DENIED naming role reader",
                 ["GetHost needs the reader role"])
    for client, trust, what in ((None, "ca.crt", "without a client certificate"),
                                ("rogue", "ca.crt", "with a certificate from an untrusted CA")):
        with d.tls_channel(client, trust) as ch:
            T.status(lambda: health_status(ch, ""), grpc.StatusCode.UNAVAILABLE, f"mTLS: a client {what} is refused")
    T.check(d.alive(), "the daemon survives the refused TLS clients")


def check_malformed(d, ch):
    bad = [("/iommud.v1.IommuManager/GetGroup", b"\xff\xff\xff\xff\xff", "garbage protobuf to GetGroup"),
           ("/iommud.v1.IommuManager/GetDevice", b"\x0a\x40ab", "a string longer than the message to GetDevice"),
           ("/iommud.v1.IommuManager/ListGroups", b"\x0a", "a truncated ListGroups request")]
    for path, payload, what in bad:
        try:
            raw_unary(ch, path, payload)
            T.check(False, f"{what}: rejected", "the call succeeded")
        except grpc.RpcError as e:
            T.check(e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL),
                    f"{what}: {e.code().name} (INVALID_ARGUMENT or INTERNAL expected)", e.details())
    watch = ch.unary_stream("/iommud.v1.IommuManager/Watch", request_serializer=lambda b: b,
                            response_deserializer=lambda b: b)
    try:
        list(watch(b"\xff\xff\xff", timeout=RPC_TIMEOUT))
        T.check(False, "garbage protobuf to Watch: rejected", "the stream ended OK")
    except grpc.RpcError as e:
        T.check(e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL),
                f"garbage protobuf to Watch: {e.code().name} (INVALID_ARGUMENT or INTERNAL expected)", e.details())
    for path in ("/iommud.v1.IommuManager/NoSuchMethod", "/no.such.Service/Get"):
        T.status(lambda: raw_unary(ch, path, b""), grpc.StatusCode.UNIMPLEMENTED,
                 f"unknown method {path} is UNIMPLEMENTED")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(RPC_TIMEOUT)
        s.connect(d.sock)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512))
        closed = False
        try:
            while s.recv(65536):
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        T.check(closed, "a connection sending HTTP/1.1 and junk is closed by the daemon")

    T.check(d.alive() and health_status(ch, "") == PB.health.HealthCheckResponse.SERVING
            and manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT).group_count == 10,
            "after the malformed requests the daemon still serves GetHost and health")


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def check_watch_latency(d, tree):
    """Change the tree, Rescan on another connection, time the matching WatchEvent."""
    with d.channel() as watch_channel, d.channel() as ch:
        w = Watch(watch_channel)
        t, first = w.next()
        T.check(isinstance(first, PB.api.WatchEvent) and first.WhichOneof("event") == "snapshot"
                and first.snapshot.group_count == 10, "Watch(send_snapshot) first sends the snapshot", first)
        stub = manager(ch)
        resp = stub.Rescan(PB.api.RescanRequest(), timeout=RPC_TIMEOUT)
        t, extra = w.next(0.2)
        T.check(resp.changes == 0 and extra is None, "Rescan of an unchanged tree: 0 changes, no event",
                f"{resp}, event {extra}")

        def driver_round(address, old, new):
            set_driver(tree, address, new)
            return (f"driver_changed {address} {old!r} -> {new or ''!r}",
                    lambda e: e.WhichOneof("event") == "driver_changed" and e.driver_changed.address == address
                    and e.driver_changed.old_driver == old and e.driver_changed.new_driver == (new or ""))

        def type_round(group, old, new):
            set_group_type(tree, group, new)
            return (f"type_changed group {group} {old} -> {new}",
                    lambda e: e.WhichOneof("event") == "type_changed" and e.type_changed.group == group
                    and e.type_changed.old_type == old and e.type_changed.new_type == new)

        rounds = [lambda: driver_round("0000:01:00.1", "snd_hda_intel", None),
                  lambda: type_round(3, "identity", "DMA"),
                  lambda: driver_round("0000:01:00.1", "", "snd_hda_intel"),
                  lambda: type_round(3, "DMA", "DMA-FQ"),
                  lambda: driver_round("0000:01:00.0", "", "vfio-pci"),
                  lambda: type_round(3, "DMA-FQ", "identity")]
        from_start, from_return = [], []
        for make_change in rounds:
            what, match = make_change()
            t0 = time.monotonic()
            resp = stub.Rescan(PB.api.RescanRequest(), timeout=RPC_TIMEOUT)
            t1 = time.monotonic()
            t, ev = w.wait_for(match, 2.0)
            if not T.check(t is not None and resp.changes >= 1 and ev.sequence <= resp.sequence,
                           f"Watch delivers {what} after Rescan (changes {resp.changes}, sequence {resp.sequence})",
                           f"no matching event within 2 s (last item {ev!r})" if t is None else str(ev)[:800]):
                continue
            from_start.append(t - t0)
            from_return.append(t - t1)
            T.check(t - t0 < LATENCY_LIMIT, f"{what}: the event arrived {ms(t - t0)} after Rescan started, "
                    f"{ms(t - t1)} after it returned (Rescan took {ms(t1 - t0)}); limit {ms(LATENCY_LIMIT)}")
        if from_start:
            T.note(f"Watch latency over {len(from_start)} rounds: from Rescan start min {ms(min(from_start))} "
                   f"max {ms(max(from_start))}; from Rescan return min {ms(min(from_return))} "
                   f"max {ms(max(from_return))} (negative: the event came before the Rescan reply)")
        w.cancel()


def check_sigusr1(d, tree):
    with d.channel() as ch:
        w = Watch(ch)
        w.next()  # the snapshot
        set_group_type(tree, 5, "DMA")
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGUSR1)
        t, ev = w.wait_for(lambda e: e.WhichOneof("event") == "type_changed" and e.type_changed.group == 5
                           and e.type_changed.new_type == "DMA", 3.0)
        T.check(t is not None, "SIGUSR1 rescans: a watcher gets type_changed for group 5 without any Rescan call"
                + (f" ({ms(t - t0)} after the signal)" if t else ""), f"last item {ev!r}")
        w.cancel()


def check_sigterm(d):
    with d.channel() as ch:
        w = Watch(ch)
        w.next()  # the snapshot
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        t, end = w.next(10)
        while isinstance(end, PB.api.WatchEvent):
            t, end = w.next(10)
        T.check(t is not None, "SIGTERM ends the open Watch stream"
                + (f" after {ms(t - t0)} ({end.code().name if end else 'OK'})" if t else ""),
                "the stream did not end in 10 s")
        try:
            rc = d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        t1 = time.monotonic()
        T.check(rc == 0 and t1 - t0 < 8, f"SIGTERM with an open Watch: exit status 0 after {ms(t1 - t0)} "
                "(limit 8 s)", f"exit status {rc}\n{d.log_text()}")
        T.check(not os.path.exists(d.sock), "the Unix socket is removed at exit")


def check_reader_daemon(tree):
    d = Daemon("reader", tree, "--reader=unix:*", "--admin=uid:12345")
    with d.channel() as ch:
        check_health(ch, "Unix reader")
        T.check(manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT).group_count == 10,
                "Unix with --reader=unix:* --admin=uid:12345: root reads GetHost as reader")
        w = Watch(ch)
        t, first = w.next()
        T.check(isinstance(first, PB.api.WatchEvent) and first.WhichOneof("event") == "snapshot",
                "Unix reader: Watch is allowed", first)
        w.cancel()
        check_methods_for_role(ch, "Unix", "reader")
    T.check(d.stop() == 0, "reader daemon: SIGTERM exits 0")


def check_max_watchers(tree):
    d = Daemon("watchers", tree, "--max-watchers=2")
    with d.channel() as ch:
        watches = [Watch(ch), Watch(ch)]
        firsts = [w.next()[1] for w in watches]
        T.check(all(isinstance(f, PB.api.WatchEvent) for f in firsts), "--max-watchers=2: two Watch streams open",
                firsts)
        third = Watch(ch)
        t, end = third.next()
        T.check(isinstance(end, grpc.RpcError) and end.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
                "--max-watchers=2: the third Watch is RESOURCE_EXHAUSTED",
                f"{end.code().name}: {end.details()}" if isinstance(end, grpc.RpcError) else end)
        watches[0].cancel()
        deadline, first = time.monotonic() + 3, None
        while time.monotonic() < deadline and not isinstance(first, PB.api.WatchEvent):
            again = Watch(ch)
            first = again.next()[1]
            if not isinstance(first, PB.api.WatchEvent):
                time.sleep(0.05)
        T.check(isinstance(first, PB.api.WatchEvent), "--max-watchers=2: a slot freed by a cancelled Watch is reused",
                first)
        again.cancel()
        watches[1].cancel()
    T.check(d.stop() == 0, "watcher-limit daemon: SIGTERM exits 0")


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def check_reload(tree):
    conf = os.path.join(TMP, "reload.conf")
    write_file(conf, "# iommud test settings\n[Roles]\nReader=unix:*\n")
    d = Daemon("reload", tree, f"--config={conf}")
    with d.channel() as ch:
        T.check(manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT).group_count == 10,
                "--config with Reader=unix:*: root reads GetHost")
        T.status(lambda: call_method(ch, "Rescan"), grpc.StatusCode.PERMISSION_DENIED,
                 "--config with Reader=unix:*: root is only reader (Rescan needs operator)", ["Rescan needs the operator role"])

        write_file(conf, "[Roles]\nAdmin=uid:12345\n[Daemon]\nNoSuchKey=1\n")
        reloaded = d.reload()
        T.check(reloaded and d.alive(), "SIGHUP with a broken file: the daemon keeps running", d.log_text())
        T.check(manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT).group_count == 10
                and f"{conf}:4" in d.log_text(),
                "SIGHUP with a broken file: the settings are kept and the log names FILE:LINE", d.log_text())

        write_file(conf, "[Roles]\nAdmin=uid:12345\n")
        T.check(d.reload(), "SIGHUP: RELOADING=1 then READY=1", d.log_text())
        T.status(lambda: call_method(ch, "GetHost"), grpc.StatusCode.PERMISSION_DENIED,
                 "after SIGHUP without Reader=unix:* and Admin=uid:12345, the next call on the same connection "
                 "is PERMISSION_DENIED, naming who may read", ["GetHost needs the reader role", "[Roles] Reader= (nobody)"])
    T.check(d.stop() == 0, "reload daemon: SIGTERM exits 0")


def check_bad_config(tree):
    cases = [("an unknown key", "# test\n[Daemon]\nUdev=no\nNoSuchKey=1\n", 4),
             ("a bad value", "[Limits]\nMaxConnections=8\nMaxWatchers=many\n", 3),
             ("an unknown section", "\n[Nope]\nX=1\n", 2)]
    for what, text, line in cases:
        conf = os.path.join(TMP, f"bad-{line}.conf")
        write_file(conf, text)
        sock = os.path.join(TMP, f"bad-{line}.sock")
        p = subprocess.run([IOMMUD, "--root", tree, "--udev=no", "--rescan-interval=0", f"--unix-socket={sock}",
                            f"--config={conf}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        T.check(p.returncode != 0 and f"{conf}:{line}" in p.stderr and not os.path.exists(sock),
                f"a settings file with {what} at line {line}: exit {p.returncode}, stderr names FILE:{line}",
                p.stderr)


def iommuctl(d, *args):
    return subprocess.run([IOMMUCTL, "--socket", d.sock, *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)


def check_read_only_state(tree):
    """A state directory iommud cannot write: it starts, serves reads, refuses every mutation (dry runs
    too) with the reason, and GetHost and `iommuctl status` say so. A writable one says so too."""
    d = Daemon("read-only", tree, read_only_state=True)
    errno_text = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    reason = f"state directory {d.state} is not writable: {errno_text}; iommud serves reads only"
    with d.channel() as ch:
        host = manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT)
        T.check(host.daemon.read_only and host.daemon.read_only_reason == reason,
                "read-only state directory: GetHost says read_only with the reason", str(host.daemon))
        T.check(host.group_count == 10 and len(list_groups(ch)) == 10,
                "read-only state directory: reads are served (GetHost, ListGroups)")
        w = Watch(ch)
        t, first = w.next()
        T.check(isinstance(first, PB.api.WatchEvent) and first.snapshot.daemon.read_only_reason == reason,
                "read-only state directory: the Watch snapshot carries the reason", first)
        w.cancel()
        # A dry run of an operation is refused too: no step would run. ApplyPolicy's dry run runs no
        # operation (it is the plan, a read) and answers.
        for name in MUTATIONS:
            for dry_run in (True, False):
                request = dict(MUTATION_REQUESTS[name][0], dry_run=dry_run)
                status, reply = call_outcome(ch, name, request)
                if name == "ApplyPolicy" and dry_run:
                    T.check(status == "OK", "read-only state directory: ApplyPolicy (dry run) answers with the plan",
                            f"got {status}: {reply}")
                    continue
                T.check(status == "FAILED_PRECONDITION" and reply == reason,
                        f"read-only state directory: {name} ({'dry run' if dry_run else 'real'}) is "
                        "FAILED_PRECONDITION with the reason", f"got {status}: {reply}")
    r = iommuctl(d, "status")
    T.check(r.returncode == 0 and f"refused: {reason}" in r.stdout,
            "read-only state directory: iommuctl status shows Operations: refused and the reason", r.stdout + r.stderr)
    r = iommuctl(d, "--json", "status")
    status = json.loads(r.stdout) if r.returncode == 0 else {}
    T.check(status.get("daemon") == {"read_only": True, "read_only_reason": reason},
            "read-only state directory: iommuctl --json status has daemon.read_only and the reason",
            r.stdout + r.stderr)
    r = iommuctl(d, "prepare", "1")
    T.check(r.returncode != 0 and reason in r.stderr, "read-only state directory: iommuctl prepare fails naming the "
            "reason", r.stdout + r.stderr)
    T.check(os.listdir(d.state) == [], "read-only state directory: nothing was written to it", os.listdir(d.state))
    T.check(d.stop() == 0, "read-only daemon: SIGTERM exits 0")

    # No state directory at all, on a read-only file system (a fresh host's /var/lib in a guest whose
    # root is read-only): the same, with an empty history.
    m = Daemon("read-only-missing", tree, read_only_state="missing")
    with m.channel() as ch:
        host = manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT)
        history = manager(ch).History(PB.api.HistoryRequest(), timeout=RPC_TIMEOUT)
    T.check(host.daemon.read_only and len(history.entries) == 0,
            "a missing state directory on a read-only file system: iommud starts, reads only, empty history",
            f"{host.daemon} {history}")
    T.check(m.stop() == 0, "daemon without a state directory: SIGTERM exits 0")

    w = Daemon("writable", tree)
    with w.channel() as ch:
        host = manager(ch).GetHost(PB.api.GetHostRequest(), timeout=RPC_TIMEOUT)
        T.check(not host.daemon.read_only and host.daemon.read_only_reason == "",
                "writable state directory: GetHost says not read_only", str(host.daemon))
    r = iommuctl(w, "status")
    T.check(r.returncode == 0 and "Operations:" in r.stdout and "allowed" in r.stdout,
            "writable state directory: iommuctl status shows Operations: allowed", r.stdout + r.stderr)
    T.check(w.stop() == 0, "writable daemon: SIGTERM exits 0")


def check_main_daemon(pristine):
    tree = copy_tree(pristine, "tree-main")
    set_group_type(tree, 9, "DMA-FQ")
    oracle = dump(tree)
    d = Daemon("main", tree, "--admin=uid:0 cn:admin", "--reader=cn:reader", tls_port=free_tcp_port())
    with d.channel() as ch:
        section("health over Unix", check_health, ch, "Unix")
        section("reflection over Unix", check_reflection, ch, "Unix")
        section("reads", check_reads, ch, oracle)
        section("methods as admin over Unix", check_methods_for_role, ch, "Unix", "admin")
        section("mutual TLS", check_tls, d)
        section("malformed requests", check_malformed, d, ch)
    section("Watch latency", check_watch_latency, d, tree)
    section("SIGUSR1", check_sigusr1, d, tree)
    section("SIGTERM", check_sigterm, d)


def section(name, fn, *args):
    """Runs one group of checks; an unexpected exception is one failed check, and the rest go on."""
    try:
        fn(*args)
    except Exception:
        T.check(False, f"{name}: unexpected exception", traceback.format_exc())


def main():
    global TMP
    if not IOMMUD or not SOURCE_ROOT:
        print("usage: test_daemon_grpc.py IOMMUD SOURCE_ROOT IOMMUCTL", file=sys.stderr)
        return 2
    # meson's timeout sends SIGTERM: leave through the finally below.
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(1))
    TMP = tempfile.mkdtemp(prefix="iommud-daemon-test-")
    start = time.monotonic()
    try:
        generate_stubs()
        make_pki()
        pristine = make_fixture()
        section("main daemon", check_main_daemon, pristine)
        section("reader daemon", check_reader_daemon, pristine)
        section("watcher limit", check_max_watchers, pristine)
        section("SIGHUP reload", check_reload, pristine)
        section("bad settings files", check_bad_config, pristine)
        section("read-only state directory", check_read_only_state, pristine)
    except Exception:
        T.check(False, "setup", traceback.format_exc())
    finally:
        logs = [(d.name, d.log_text()) for d in DAEMONS] if T.failed else []
        for d in DAEMONS:
            d.close()
        shutil.rmtree(TMP, ignore_errors=True)
    for name, text in logs:
        T.note(f"log of the {name} daemon:\n{text}")
    T.note(f"{T.count} checks, {T.failed} failed, {time.monotonic() - start:.1f} s")
    return 1 if T.failed or T.count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
