#!/usr/bin/python3
"""The real iommud on a private D-Bus bus, driven with busctl and python3-dbus.

usage: test_dbus.py IOMMUD SOURCE_ROOT FAKE_POLKIT

Builds tests/fixtures/hosts/desktop-gpu.json with gen-host.py, starts a private dbus-daemon with a
test configuration that lets every user connect, and starts `IOMMUD --root TREE --dbus ADDRESS
--udev=no --rescan-interval=0 --reader=unix:* --admin=uid:0` on it. Checks: introspection (busctl
and the generated XML agree), every property readable with Get and GetAll, GetManagedObjects
against the inventory, error names and messages, PropertiesChanged after a driver link disappears,
InterfacesRemoved/InterfacesAdded when a device leaves and comes back (each followed by SIGUSR1),
reads by an unprivileged user, and org.iommud1.Error.AccessDenied naming the role for an
unprivileged caller of a mutating method, group operations answered when done (Block, Unblock,
dry-run SetDomainType) with State PropertiesChanged; then, with FAKE_POLKIT owning org.freedesktop.PolicyKit1,
that polkit is asked about exactly those calls and its "yes" lets a call through. Last, on a bus with
the system bus's default policy and the shipped systemd/org.iommud1.conf: root receives iommud's
signals, uid 65534 (outside the group iommud) none, and its calls are still answered.

Needs /usr/bin/python3 with python3-dbus, dbus-daemon, busctl, and root for the unprivileged-user
checks (setpriv). Prints one line per check ("ok N - ..." / "not ok N - ..."), exits 1 if any
failed, and stops everything it started and removes its temporary directory in all cases.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

# tests/tap.py: the TAP lines every Python test prints.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402

dbus = tap.require("dbus", "python3-dbus")

IOMMUD = os.path.abspath(sys.argv[1]) if len(sys.argv) == 4 else None
SOURCE_ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) == 4 else None
FAKE_POLKIT = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else None
FIXTURE = "desktop-gpu"
NAME = "org.iommud1"
ROOT_PATH = "/org/iommud1"
IFACES = ("org.iommud1.Manager", "org.iommud1.Group", "org.iommud1.Device")
NOBODY = 65534
TIMEOUT = 10

TMP = None
H = None  # tap.Harness, once TMP exists


class Tap(tap.Tap):
    def dbus_error(self, call, name, what, contains=()):
        try:
            call()
        except dbus.exceptions.DBusException as e:
            msg = e.get_dbus_message() or ""
            missing = [c for c in contains if c not in msg]
            return self.check(e.get_dbus_name() == name and not missing, what,
                              f"expected {name} naming {list(contains)}, got {e.get_dbus_name()}: {msg!r}")
        return self.check(False, what, f"expected {name}, the call succeeded")


T = Tap()


# ---- processes -------------------------------------------------------------------------------------

def start_iommud(address, tree, *extra, state=None, read_only_state=False):
    log = open(os.path.join(TMP, "iommud.log"), "a")
    state = state or os.path.join(TMP, "state")
    argv = [IOMMUD, "--root", tree, "--dbus", address, "--unix-socket", os.path.join(TMP, "grpc.sock"),
            "--udev=no", "--rescan-interval=0", "--runtime-directory", os.path.join(TMP, "run"),
            "--state-directory", state, *extra]
    if read_only_state:
        # A read-only bind mount in a mount namespace of the daemon's own (root), or mode 0555.
        os.makedirs(state, exist_ok=True)
        if os.geteuid() != 0:
            os.chmod(state, 0o555)
        else:
            script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && shift && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, state, "--"] + argv
    p = H.start(argv, stdout=log, stderr=subprocess.STDOUT)
    bus = dbus.bus.BusConnection(address)
    deadline = time.monotonic() + TIMEOUT
    while not bus.name_has_owner(NAME):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"iommud did not take {NAME}; log:\n" + daemon_log())
        time.sleep(0.05)
    return p, bus


def daemon_log():
    with open(os.path.join(TMP, "iommud.log")) as f:
        return f.read()


def busctl(address, *args, user=None):
    argv = ["busctl", f"--address={address}", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)


def python_as(user, code):
    """Runs python3-dbus code as another user; it prints its result as JSON."""
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                           "/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=TIMEOUT)


# ---- the checks ------------------------------------------------------------------------------------

def unwrap(v):
    if isinstance(v, (dbus.Array, list)):
        return [unwrap(x) for x in v]
    if isinstance(v, (dbus.Struct, tuple)):
        return tuple(unwrap(x) for x in v)
    if isinstance(v, dbus.Dictionary):
        return {unwrap(k): unwrap(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    if isinstance(v, (dbus.Int32, dbus.UInt32, dbus.UInt64, dbus.Int64, dbus.UInt16, dbus.Byte)):
        return int(v)
    return v


def managed_objects(bus):
    om = dbus.Interface(bus.get_object(NAME, ROOT_PATH), "org.freedesktop.DBus.ObjectManager")
    return unwrap(om.GetManagedObjects())


def interface_members(xml_text):
    """{interface: {(kind, name, signature or args)}} for our interfaces."""
    out = {}
    for iface in ET.fromstring(xml_text.split("?>", 1)[-1]).iter("interface"):
        name = iface.get("name")
        if name not in IFACES:
            continue
        members = set()
        for child in iface:
            if child.tag == "property":
                members.add(("property", child.get("name"), child.get("type")))
            elif child.tag in ("method", "signal"):
                args = tuple((a.get("type"), a.get("direction") or "out" if child.tag == "method" else "")
                             for a in child.iter("arg"))
                members.add((child.tag, child.get("name"), args))
        out[name] = members
    return out


def check_introspection(address, objects, inv):
    r = busctl(address, "introspect", NAME, ROOT_PATH)
    T.check(r.returncode == 0 and "org.iommud1.Manager" in r.stdout and "org.freedesktop.DBus.ObjectManager" in r.stdout,
            "busctl introspect /org/iommud1 shows org.iommud1.Manager and the ObjectManager", r.stdout + r.stderr)

    r = busctl(address, "tree", NAME)
    expected = len(inv["groups"]) + len(inv["devices"])
    T.check(r.returncode == 0 and r.stdout.count("/org/iommud1/group/") + r.stdout.count("/org/iommud1/device/") == expected,
            f"busctl tree lists {expected} group and device objects", r.stdout + r.stderr)

    generated = subprocess.run([IOMMUD, "--bus-introspect"], capture_output=True, text=True, check=True).stdout
    gen = interface_members(generated)
    live = {}
    group_path = next(p for p in objects if p.startswith("/org/iommud1/group/"))
    device_path = next(p for p in objects if p.startswith("/org/iommud1/device/"))
    for path in (ROOT_PATH, group_path, device_path):
        r = busctl(address, "introspect", "--xml-interface", NAME, path)
        live.update(interface_members(r.stdout))
    T.check(gen == live, "iommud --bus-introspect describes exactly what the live objects serve",
            f"generated only: {[(i, sorted(gen.get(i, set()) - live.get(i, set()))) for i in IFACES]}\n"
            f"live only: {[(i, sorted(live.get(i, set()) - gen.get(i, set()))) for i in IFACES]}")
    return gen


def check_properties(address, bus, objects, members, inv):
    host = inv["host"]
    r = busctl(address, "get-property", NAME, ROOT_PATH, "org.iommud1.Manager", "KernelRelease")
    T.check(r.returncode == 0 and r.stdout.strip() == f's "{host["kernel_release"]}"',
            "busctl get-property KernelRelease is the fixture's kernel release", r.stdout + r.stderr)

    manager_props = unwrap(dbus.Interface(bus.get_object(NAME, ROOT_PATH), dbus.PROPERTIES_IFACE).GetAll(
        "org.iommud1.Manager"))
    T.check(manager_props.get("NGroups") == len(inv["groups"]) and manager_props.get("NDevices") == len(inv["devices"])
            and manager_props.get("IommuEnabled") == host["iommu_enabled"],
            "Manager properties match the inventory", manager_props)
    T.check(manager_props.get("ReadOnly") is False and manager_props.get("ReadOnlyReason") == "",
            "Manager ReadOnly is false with a writable state directory", manager_props)

    # Every property of every object, one Get each, equal to what GetAll and GetManagedObjects say.
    bad = []
    n = 0
    paths = [ROOT_PATH] + sorted(objects)
    for path in paths:
        iface = "org.iommud1.Manager" if path == ROOT_PATH else (
            "org.iommud1.Group" if "/group/" in path else "org.iommud1.Device")
        props = dbus.Interface(bus.get_object(NAME, path), dbus.PROPERTIES_IFACE)
        all_props = unwrap(props.GetAll(iface))
        names = {m[1] for m in members[iface] if m[0] == "property"}
        if set(all_props) != names:
            bad.append(f"{path}: GetAll has {sorted(all_props)}, introspection {sorted(names)}")
        for name in sorted(names):
            n += 1
            try:
                value = unwrap(props.Get(iface, name))
            except dbus.exceptions.DBusException as e:
                bad.append(f"{path} {name}: {e.get_dbus_name()}: {e.get_dbus_message()}")
                continue
            if value != all_props.get(name):
                bad.append(f"{path} {name}: Get {value!r} != GetAll {all_props.get(name)!r}")
            if path in objects and objects[path][iface].get(name) != value:
                bad.append(f"{path} {name}: GetManagedObjects {objects[path][iface].get(name)!r} != Get {value!r}")
    T.check(not bad, f"all {n} properties of {len(paths)} objects are readable, Get = GetAll = GetManagedObjects",
            "\n".join(bad))


def check_managed_objects(bus, objects, inv):
    groups = {p: o["org.iommud1.Group"] for p, o in objects.items() if "org.iommud1.Group" in o}
    devices = {p: o["org.iommud1.Device"] for p, o in objects.items() if "org.iommud1.Device" in o}
    T.check(len(groups) == len(inv["groups"]) and len(devices) == len(inv["devices"]) and len(objects) == len(groups) + len(devices),
            f"GetManagedObjects: {len(inv['groups'])} groups and {len(inv['devices'])} devices",
            sorted(objects))

    bad = []
    for g in inv["groups"]:
        o = groups.get(f"/org/iommud1/group/{g['id']}")
        if not o or o["Id"] != g["id"] or o["Devices"] != g["devices"] or o["Viable"] != g["viable"] \
                or o["DomainType"] != (g["type"] or ""):
            bad.append(f"group {g['id']}: {o}")
    for d in inv["devices"]:
        path = bus.get_object(NAME, ROOT_PATH).GetDeviceByAddress(d["address"], dbus_interface="org.iommud1.Manager")
        o = devices.get(str(path))
        if not o or o["Address"] != d["address"] or o["Driver"] != (d["driver"] or "") \
                or o["Group"] != (d["group"] if d["group"] is not None else -1) \
                or (d["group"] is not None and o["GroupObject"] != f"/org/iommud1/group/{d['group']}"):
            bad.append(f"device {d['address']} at {path}: {o}")
    T.check(not bad, "group and device objects carry the inventory's values; GetDeviceByAddress finds each",
            "\n".join(bad))

    manager = bus.get_object(NAME, ROOT_PATH)
    listed = unwrap(manager.ListGroups(dbus.Dictionary({}, signature="sas"), dbus_interface="org.iommud1.Manager"))
    T.check([i for i, _ in listed] == [g["id"] for g in inv["groups"]]
            and all(p == f"/org/iommud1/group/{i}" for i, p in listed),
            "ListGroups without filters lists every group with its object path", listed)
    viable = unwrap(manager.ListGroups({"viable": ["yes"]}, dbus_interface="org.iommud1.Manager",
                                       signature="a{sas}"))
    T.check([i for i, _ in viable] == [g["id"] for g in inv["groups"] if g["viable"]],
            "ListGroups {viable: [yes]} lists the viable groups", viable)


def check_errors(bus, inv):
    manager = bus.get_object(NAME, ROOT_PATH)
    n = len(inv["groups"])
    T.dbus_error(lambda: manager.GetGroup(dbus.UInt32(4242), dbus_interface="org.iommud1.Manager"),
                 "org.iommud1.Error.NotFound", "GetGroup(4242): NotFound with gRPC's message",
                 ["no IOMMU group 4242", f"the host has {n} groups"])
    T.dbus_error(lambda: manager.GetDeviceByAddress("zz:00", dbus_interface="org.iommud1.Manager"),
                 "org.iommud1.Error.InvalidArgument", "GetDeviceByAddress('zz:00'): InvalidArgument",
                 ["'zz:00' is not a PCI address"])
    T.dbus_error(lambda: manager.GetDeviceByAddress("0000:7f:00.0", dbus_interface="org.iommud1.Manager"),
                 "org.iommud1.Error.NotFound", "GetDeviceByAddress of an absent device: NotFound",
                 ["no PCI device 0000:7f:00.0"])
    T.dbus_error(lambda: manager.ListGroups({"colour": ["red"]}, dbus_interface="org.iommud1.Manager",
                                            signature="a{sas}"),
                 "org.iommud1.Error.InvalidArgument", "ListGroups with an unknown filter: InvalidArgument",
                 ["unknown filter 'colour'"])
    plan = manager.Plan(dbus_interface="org.iommud1.Manager")
    T.check(len(plan) == len(inv["groups"]) and all(str(step[1]) == "none" for step in plan),
            "Plan without rules: one 'none' step per group", str(plan)[:300])
    applied = manager.ApplyPolicy(True, dbus_interface="org.iommud1.Manager")
    T.check(len(applied) == 0, "ApplyPolicy dry run without rules runs nothing", str(applied))
    group = bus.get_object(NAME, f"/org/iommud1/group/{inv['groups'][0]['id']}")
    T.dbus_error(lambda: group.Release(dbus_interface="org.iommud1.Group"),
                 "org.iommud1.Error.NotFound", "Release of a group iommud does not hold: core's refusal, NotFound",
                 [f"group {inv['groups'][0]['id']} was not prepared by iommud"])
    T.dbus_error(lambda: group.SetDomainType("sideways", True, dbus_interface="org.iommud1.Group"),
                 "org.iommud1.Error.InvalidArgument", "SetDomainType('sideways'): InvalidArgument", ["sideways"])
    # A dry run answers with the steps it would take and changes nothing.
    steps = {}
    for g in inv["groups"]:
        try:
            steps[g["id"]] = unwrap(bus.get_object(NAME, f"/org/iommud1/group/{g['id']}").SetDomainType(
                "DMA", True, dbus_interface="org.iommud1.Group"))
        except dbus.exceptions.DBusException as e:
            steps[g["id"]] = (e.get_dbus_name(), e.get_dbus_message())
    T.check(any(isinstance(v, list) and any(f"write DMA to the type of group {i}" in step for step in v)
                for i, v in steps.items()) and managed_objects(bus) == OBJECTS_AT_START,
            "SetDomainType(DMA, dry_run) answers with the steps it would take", steps)
    manager.Reload(dbus_interface="org.iommud1.Manager")
    T.check("Settings reloaded." in daemon_log(), "Reload as root reloads the settings", daemon_log())


def check_unprivileged(address, inv):
    if os.getuid() != 0:
        T.skip("unprivileged caller checks", "needs root for setpriv")
        return
    r = busctl(address, "get-property", NAME, ROOT_PATH, "org.iommud1.Manager", "NGroups", user=NOBODY)
    T.check(r.returncode == 0 and r.stdout.strip() == f"u {len(inv['groups'])}",
            "uid 65534 reads NGroups (--reader=unix:*)", r.stdout + r.stderr)

    group = f"/org/iommud1/group/{inv['groups'][0]['id']}"
    r = busctl(address, "call", NAME, group, "org.iommud1.Group", "Block", user=NOBODY)
    T.check(r.returncode != 0 and "permission denied: Block needs the admin role; unix uid=65534 has reader" in r.stderr,
            "busctl as uid 65534: Block is denied, naming the admin role", r.stdout + r.stderr)

    code = f"""
import dbus, json
bus = dbus.bus.BusConnection({address!r})
out = {{}}
for member, args in (("Prepare", ("x",)), ("Release", ()), ("SetDomainType", ("DMA", False))):
    try:
        bus.get_object({NAME!r}, {group!r}).get_dbus_method(member, "org.iommud1.Group")(*args)
        out[member] = ["no error", ""]
    except dbus.exceptions.DBusException as e:
        out[member] = [e.get_dbus_name(), e.get_dbus_message()]
print(json.dumps(out))
"""
    r = python_as(NOBODY, code)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        out = {}
    expected = {"Prepare": "operator", "Release": "operator", "SetDomainType": "admin"}
    T.check(all(out.get(m, ["", ""])[0] == "org.iommud1.Error.AccessDenied"
                and f"{m} needs the {role} role" in out[m][1] for m, role in expected.items()),
            "python3-dbus as uid 65534: Prepare, Release, SetDomainType fail with org.iommud1.Error.AccessDenied "
            "naming the role", r.stdout + r.stderr)


def check_polkit(address, inv):
    """uid 65534 has the reader role only; polkit (the fake) allows org.iommud1.operate and nothing else."""
    if os.getuid() != 0:
        T.skip("polkit checks", "needs root for setpriv")
        return
    polkit = H.start([FAKE_POLKIT, address, "org.iommud1.operate"], stdout=subprocess.PIPE, text=True)
    if polkit.stdout.readline().strip() != "ready":
        T.check(False, "the fake polkit started")
        return
    group = f"/org/iommud1/group/{inv['groups'][0]['id']}"
    r = busctl(address, "call", NAME, group, "org.iommud1.Group", "Release", user=NOBODY)
    T.check(r.returncode != 0 and "was not prepared by iommud" in r.stderr,
            "uid 65534 calls Release: polkit allows org.iommud1.operate, core answers", r.stdout + r.stderr)
    r = busctl(address, "call", NAME, group, "org.iommud1.Group", "Block", user=NOBODY)
    T.check(r.returncode != 0 and "permission denied: Block needs the admin role" in r.stderr,
            "uid 65534 calls Block: polkit denies org.iommud1.administer, AccessDenied", r.stdout + r.stderr)
    r = busctl(address, "get-property", NAME, ROOT_PATH, "org.iommud1.Manager", "NGroups", user=NOBODY)
    r2 = busctl(address, "call", NAME, group, "org.iommud1.Group", "Release")
    polkit.terminate()
    asked = [line.split() for line in polkit.communicate(timeout=TIMEOUT)[0].splitlines()]
    T.check([(a[0], a[2]) for a in asked] == [("org.iommud1.operate", "yes"), ("org.iommud1.administer", "no")]
            and all(a[1].startswith(":") for a in asked),
            "polkit is asked only when the roles say no (not for reads by a reader, not for root), "
            "about the calling connection", asked)
    T.check(r.returncode == 0 and "was not prepared by iommud" in r2.stderr,
            "reads by a reader and calls by root need no polkit", r.stdout + r.stderr + r2.stderr)


def check_property_changes(bus, monitor, tree, inv):
    # A bound device whose driver link disappears: the next rescan sees it unbound.
    device = next(d for d in inv["devices"] if d["driver"])
    path = str(bus.get_object(NAME, ROOT_PATH).GetDeviceByAddress(device["address"],
                                                                    dbus_interface="org.iommud1.Manager"))
    since = monitor.mark()
    os.unlink(os.path.join(tree, "sys/bus/pci/devices", device["address"], "driver"))
    DAEMON.send_signal(signal.SIGUSR1)
    found = monitor.wait_for(since, lambda m: m.get("member") == "PropertiesChanged" and m.get("path") == path)
    changed = found[0]["payload"]["data"] if found else None
    T.check(bool(found) and changed[0] == "org.iommud1.Device" and "Driver" in changed[1]
            and changed[1]["Driver"]["data"] == "",
            f"PropertiesChanged on {path}: Driver is now empty after its driver link went",
            json.dumps(changed))
    # Only what changed is sent.
    T.check(bool(found) and "Address" not in changed[1] and "VendorId" not in changed[1],
            "PropertiesChanged carries only changed properties", json.dumps(changed))
    value = unwrap(bus.get_object(NAME, path).Get("org.iommud1.Device", "Driver", dbus_interface=dbus.PROPERTIES_IFACE))
    T.check(value == "", "Get Driver now answers the new value", value)


def check_operations(bus, monitor, inv):
    """Block and Unblock on the fixture: the device whose driver link check_property_changes removed
    is unbound, so blocking its group only writes driver_override. The reply comes when it is done."""
    device = next(d for d in inv["devices"] if d["driver"])
    path = f"/org/iommud1/group/{device['group']}"
    group = bus.get_object(NAME, path)
    since = monitor.mark()
    steps = unwrap(group.Block(dbus_interface="org.iommud1.Group"))
    state = unwrap(group.Get("org.iommud1.Group", "State", dbus_interface=dbus.PROPERTIES_IFACE))
    T.check(state == "blocked" and any("driver_override" in s for s in steps),
            f"Block on {path} answers with its steps when done; State is blocked", (steps, state))
    found = monitor.wait_for(since, lambda m: m.get("member") == "PropertiesChanged" and m.get("path") == path
                             and m["payload"]["data"][1].get("State", {}).get("data") == "blocked")
    states = [m["payload"]["data"][1]["State"]["data"] for m in monitor.signals(since, "PropertiesChanged")
              if m.get("path") == path and "State" in m["payload"]["data"][1]]
    T.check(bool(found) and states == ["transitioning", "blocked"],
            "PropertiesChanged State: transitioning, then blocked", states)

    since = monitor.mark()
    steps = unwrap(group.Unblock(dbus_interface="org.iommud1.Group"))
    monitor.wait_for(since, lambda m: m.get("member") == "PropertiesChanged" and m.get("path") == path
                     and m["payload"]["data"][1].get("State", {}).get("data") == "host")
    states = [m["payload"]["data"][1]["State"]["data"] for m in monitor.signals(since, "PropertiesChanged")
              if m.get("path") == path and "State" in m["payload"]["data"][1]]
    T.check(states == ["transitioning", "host"] and steps,
            "Unblock: answered with its steps; PropertiesChanged State transitioning, then host", (steps, states))


def check_hotplug(bus, monitor, tree, inv):
    # A device leaves (its bus link and its group link go), then comes back.
    device = inv["devices"][-1]
    address = device["address"]
    links = [os.path.join(tree, "sys/bus/pci/devices", address)]
    if device["group"] is not None:
        links.append(os.path.join(tree, "sys/kernel/iommu_groups", str(device["group"]), "devices", address))
    targets = [os.readlink(link) for link in links]
    path = str(bus.get_object(NAME, ROOT_PATH).GetDeviceByAddress(address, dbus_interface="org.iommud1.Manager"))

    before = set(managed_objects(bus))
    since = monitor.mark()
    for link in links:
        os.unlink(link)
    DAEMON.send_signal(signal.SIGUSR1)
    monitor.wait_for(since, lambda m: m.get("member") == "InterfacesRemoved" and m["payload"]["data"][0] == path)
    time.sleep(0.2)  # the rest of the same rescan
    after = set(managed_objects(bus))
    removed = {m["payload"]["data"][0]: m["payload"]["data"][1] for m in monitor.signals(since, "InterfacesRemoved")}
    T.check(path in removed and "org.iommud1.Device" in removed[path],
            f"InterfacesRemoved for {path} with org.iommud1.Device", removed)
    T.check(set(removed) == before - after and path not in after,
            "an InterfacesRemoved for exactly the objects GetManagedObjects no longer has",
            f"signals {sorted(removed)}, gone {sorted(before - after)}")
    counts = [m for m in monitor.signals(since, "PropertiesChanged") if m.get("path") == ROOT_PATH]
    T.check(any("NDevices" in m["payload"]["data"][1] and m["payload"]["data"][1]["NDevices"]["data"] == len(inv["devices"]) - 1
                for m in counts), "PropertiesChanged NDevices on /org/iommud1", counts)

    since = monitor.mark()
    for link, target in zip(links, targets):
        os.symlink(target, link)
    DAEMON.send_signal(signal.SIGUSR1)
    monitor.wait_for(since, lambda m: m.get("member") == "InterfacesAdded" and m["payload"]["data"][0] == path)
    time.sleep(0.2)
    again = set(managed_objects(bus))
    added = {m["payload"]["data"][0]: m["payload"]["data"][1] for m in monitor.signals(since, "InterfacesAdded")}
    dev = added.get(path, {}).get("org.iommud1.Device", {})
    T.check(dev.get("Address", {}).get("data") == address,
            f"InterfacesAdded for {path} with org.iommud1.Device and its properties", added.get(path))
    T.check(set(added) == again - after and again == before,
            "an InterfacesAdded for exactly the objects that came back", f"signals {sorted(added)}")


DAEMON = None
OBJECTS_AT_START = None


def check_read_only_state(address, tree, inv):
    """A second daemon whose state directory is read-only: Manager says so, operations are refused
    with org.iommud1.Error.ReadOnly and the reason."""
    state = os.path.join(TMP, "read-only-state")
    daemon, bus = start_iommud(address, tree, "--admin=uid:0", state=state, read_only_state=True)
    errno_text = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    reason = f"state directory {state} is not writable: {errno_text}; iommud serves reads only"
    props = unwrap(dbus.Interface(bus.get_object(NAME, ROOT_PATH), dbus.PROPERTIES_IFACE).GetAll(
        "org.iommud1.Manager"))
    T.check(props.get("ReadOnly") is True and props.get("ReadOnlyReason") == reason,
            "read-only state directory: Manager ReadOnly and ReadOnlyReason say so", props)
    group = bus.get_object(NAME, f"/org/iommud1/group/{inv['groups'][0]['id']}")
    T.dbus_error(lambda: group.Block(dbus_interface="org.iommud1.Group"), "org.iommud1.Error.ReadOnly",
                 "read-only state directory: Block is refused with org.iommud1.Error.ReadOnly", [reason])
    T.dbus_error(lambda: bus.get_object(NAME, ROOT_PATH).ApplyPolicy(False, dbus_interface="org.iommud1.Manager"),
                 "org.iommud1.Error.ReadOnly", "read-only state directory: ApplyPolicy is refused", [reason])
    daemon.terminate()
    T.check(daemon.wait(TIMEOUT) == 0, "the read-only daemon exits 0 on SIGTERM", daemon_log())


def check_system_bus_later(tree):
    """DBus= unset (the system bus, if there is one) and no bus yet: iommud serves gRPC, says it will
    try again, and takes org.iommud1 once the bus is up (dbus-daemon started late, or its policy for
    org.iommud1 loaded only after iommud started)."""
    bus_path = os.path.join(TMP, "late-bus")
    log_path = os.path.join(TMP, "iommud-late.log")
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + bus_path)
    p = H.start([IOMMUD, "--config=/dev/null", "--root", tree, "--udev=no", "--rescan-interval=0",
               "--unix-socket", os.path.join(TMP, "late.sock"), "--runtime-directory", os.path.join(TMP, "late-run"),
               "--state-directory", os.path.join(TMP, "late-state")],
              stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)

    def log_text():
        with open(log_path) as f:
            return f.read()
    deadline = time.monotonic() + TIMEOUT
    while "Cannot serve on the system D-Bus yet" not in log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    T.check("Cannot serve on the system D-Bus yet, serving gRPC and trying again" in log_text() and p.poll() is None,
            "no system bus: iommud runs on and says it will try again", log_text())
    bus = dbus.bus.BusConnection(H.start_bus("late-bus"))
    deadline = time.monotonic() + 20
    while not bus.name_has_owner(NAME) and time.monotonic() < deadline:
        time.sleep(0.1)
    T.check(bus.name_has_owner(NAME) and "Serving org.iommud1 on the system bus." in log_text(),
            "the system bus up later: iommud takes org.iommud1 on it", log_text())
    p.terminate()
    T.check(p.wait(TIMEOUT) == 0, "the late-bus daemon exits 0 on SIGTERM", log_text())


def check_group_principal(address, tree, inv):
    """A daemon whose readers are a group: the first call of a uid waits for the user database off
    the loop, and is answered once the lookup is back even when nothing else happens on the bus."""
    daemon, bus = start_iommud(address, tree, "--reader=group:nogroup", "--admin=uid:0")
    group = inv["groups"][0]["id"]
    # busctl's own timeout well below the test's, so a call that is never answered shows as such.
    r = busctl(address, "--timeout=5", "get-property", NAME, f"/org/iommud1/group/{group}", "org.iommud1.Group",
               "DomainType", user=NOBODY)
    T.check(r.returncode == 0 and r.stdout.startswith("s "),
            "group principal: a lone call from a uid not looked up yet is answered once its groups are known",
            r.stdout + r.stderr)
    daemon.terminate()
    T.check(daemon.wait(TIMEOUT) == 0, "the group-principal daemon exits 0 on SIGTERM", daemon_log())
SUBSCRIBER = r"""
import json, sys
import dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
got = []
bus.add_signal_receiver(lambda *args, **kw: got.append(kw["member"]), bus_name="org.iommud1", member_keyword="member")
print("ready", flush=True)
loop = GLib.MainLoop()
GLib.timeout_add(int(float(sys.argv[2]) * 1000), loop.quit)
loop.run()
print(json.dumps(got))
"""


def start_system_like_bus():
    """A bus with the system bus's default policy (as Debian's system.conf has it) and the shipped
    systemd/org.iommud1.conf included, as the system bus reads it from system.d."""
    receive = "".join(f'    <allow receive_type="{t}"/>\n' for t in ("method_call", "method_return", "error", "signal"))
    replies = "".join(f'    <allow send_requested_reply="true" send_type="{t}"/>\n' for t in ("method_return", "error"))
    driver = "".join(f'    <allow send_destination="org.freedesktop.DBus" send_interface="{i}"/>\n'
                     for i in ("org.freedesktop.DBus", "org.freedesktop.DBus.Introspectable",
                               "org.freedesktop.DBus.Properties"))
    return H.start_bus("system-bus", "system", f"""  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
{replies}{receive}{driver}  </policy>
  <include>{os.path.join(SOURCE_ROOT, "systemd", "org.iommud1.conf")}</include>
""")


def check_shipped_policy(tree, inv):
    """With the shipped bus policy, iommud's broadcast signals reach root and not a peer outside the
    group iommud; that peer's own calls are still answered (iommud decides those)."""
    address = start_system_like_bus()
    daemon, bus = start_iommud(address, tree, "--reader=unix:*", "--admin=uid:0")
    subscribers = {}
    for who, user in (("root", None), ("uid 65534", NOBODY)):
        argv = ["/usr/bin/python3", "-c", SUBSCRIBER, address, "3"]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
        subscribers[who] = H.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        T.check(subscribers[who].stdout.readline().strip() == "ready", f"shipped bus policy: {who} subscribes")
    # A bound device loses its driver: PropertiesChanged on its object.
    device = next(d for d in inv["devices"] if d["driver"] and os.path.islink(
        os.path.join(tree, "sys/bus/pci/devices", d["address"], "driver")))
    os.unlink(os.path.join(tree, "sys/bus/pci/devices", device["address"], "driver"))
    daemon.send_signal(signal.SIGUSR1)
    got = {}
    for who, p in subscribers.items():
        out, err = p.communicate(timeout=TIMEOUT)
        got[who] = json.loads(out.strip().splitlines()[-1]) if out.strip() else err
    T.check(isinstance(got["root"], list) and "PropertiesChanged" in got["root"],
            "shipped bus policy: root receives iommud's PropertiesChanged", got)
    T.check(got["uid 65534"] == [], "shipped bus policy: uid 65534 (not in group iommud) receives no signal of "
            "iommud's, not even as a reader", got)
    r = busctl(address, "get-property", NAME, ROOT_PATH, "org.iommud1.Manager", "NGroups", user=NOBODY)
    T.check(r.returncode == 0 and r.stdout.startswith("u "),
            "shipped bus policy: uid 65534 still gets the answers to its own calls", r.stdout + r.stderr)
    daemon.terminate()
    T.check(daemon.wait(TIMEOUT) == 0, "iommud on the system-like bus exits 0 on SIGTERM", daemon_log())


def main():
    global TMP, H, DAEMON
    if not IOMMUD:
        print("usage: test_dbus.py IOMMUD SOURCE_ROOT FAKE_POLKIT", file=sys.stderr)
        return 2
    TMP = tempfile.mkdtemp(prefix="iommud-dbus-test.")
    H = tap.Harness(TMP, SOURCE_ROOT)
    # Unprivileged callers must reach the bus socket inside.
    os.chmod(TMP, 0o755)
    try:
        tree = H.fixture_tree(FIXTURE, "tree")
        inv = json.loads(subprocess.run([IOMMUD, "--dump", "--compact", "--root", tree],
                                        capture_output=True, text=True, check=True).stdout)
        address = H.start_bus()
        monitor = tap.BusMonitor(H, address, NAME, TIMEOUT)
        DAEMON, bus = start_iommud(address, tree, "--reader=unix:*", "--admin=uid:0")
        time.sleep(0.2)  # the monitor is attached before the first change

        objects = managed_objects(bus)
        global OBJECTS_AT_START
        OBJECTS_AT_START = objects
        members = check_introspection(address, objects, inv)
        check_managed_objects(bus, objects, inv)
        check_properties(address, bus, objects, members, inv)
        check_errors(bus, inv)
        check_unprivileged(address, inv)
        check_polkit(address, inv)
        check_property_changes(bus, monitor, tree, inv)
        check_operations(bus, monitor, inv)
        check_hotplug(bus, monitor, tree, inv)

        DAEMON.terminate()
        T.check(DAEMON.wait(TIMEOUT) == 0, "iommud exits 0 on SIGTERM", daemon_log())
        check_read_only_state(address, tree, inv)
        check_group_principal(address, tree, inv)
        check_system_bus_later(tree)
        check_shipped_policy(tree, inv)
        T.check("runtime error" not in daemon_log() and "Sanitizer" not in daemon_log(),
                "no sanitizer reports in the daemon's log", daemon_log())
    except Exception:
        T.check(False, "the test ran to the end", traceback.format_exc() + "\n" + (daemon_log() if TMP and os.path.exists(os.path.join(TMP, "iommud.log")) else ""))
    finally:
        H.stop_all(grace=5)
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{T.count - T.failed} passed, {T.failed} failed")
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
