"""The host-use checks on the realistic hypervisor host (issue 10), shared by the scenarios that run
iommud plainly, under guest/unit-sandbox and as systemd's unit: every Prepare, Block and
SetDomainType, dry run and real, on a group the host uses is refused without force with
FAILED_PRECONDITION and a message naming the group, the device and the use; nothing on the host
changes; the free groups still prepare and release. Messages are checked for key tokens, not
sentences. Also: which unit file applies, and whether a running daemon is as hardened as it says."""
import importlib.machinery
import os
import re
import subprocess
import sys

import hypervisor_host as hh
from iommud_guest import IOMMUD, SOURCE_DIR, check, driver, group_type, members, sysfs

SANDBOX = os.path.join(os.environ["VMDIR"], "guest", "unit-sandbox")  # also parses units


def unit_file():
    for path in (os.path.join(os.path.dirname(os.path.dirname(IOMMUD)), "systemd", "iommud.service"),
                 os.path.join(SOURCE_DIR, "systemd", "iommud.service"),
                 os.path.join(SOURCE_DIR, "systemd", "iommud.service.in")):
        if os.path.exists(path):
            return path
    sys.exit("no iommud.service in the build or source tree")


def unit_caps(unit):
    """The unit's CapabilityBoundingSet= as setpriv names, read by unit-sandbox's own parser."""
    loader = importlib.machinery.SourceFileLoader("unit_sandbox", SANDBOX)
    module = loader.load_module()
    return module.caps(module.service_section(unit), "CapabilityBoundingSet")


def hardened(pid, unit):
    """The daemon runs with the unit's bounding set, no_new_privs, a read-only root and /home hidden
    (its own mount table no longer shows the md array on top there)."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    mounts = {}
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            mounts[fields[4]] = (fields[5], fields[2])  # options, major:minor; the last one wins
    print(f"daemon: Uid {status['Uid'].split()} CapEff {status['CapEff'].strip()} "
          f"CapBnd {status['CapBnd'].strip()} NoNewPrivs {status['NoNewPrivs'].strip()}; "
          f"/ {mounts['/']}, {hh.MD_MOUNTPOINT} {mounts.get(hh.MD_MOUNTPOINT)}")
    decoded = subprocess.run(["capsh", f"--decode={status['CapBnd'].strip()}"], capture_output=True,
                             text=True).stdout.strip().partition("=")[2]
    have = set(decoded.split(",")) - {""}
    want = {f"cap_{c}" for c in unit_caps(unit)}
    check(have == want, f"the daemon's bounding set is the unit's: {sorted(have)} (unit: {sorted(want)})")
    check(status["NoNewPrivs"].strip() == "1", "the daemon runs with no_new_privs")
    check(mounts["/"][0].startswith("ro") and mounts["/run"][0].startswith("ro"),
          "the daemon's root and /run are read-only")
    md_number = hh.read(f"/sys/class/block/{hh.load()['md']['md']}/dev")
    check(mounts.get(hh.MD_MOUNTPOINT, ("", ""))[1] != md_number,
          f"{hh.MD_MOUNTPOINT} (where the md array {md_number} is mounted) is covered in the daemon's own mount table")


OPERATIONS = (
    ("PrepareGroup", {"owner": "host-use-check"}),
    ("BlockGroup", {}),
    ("SetDomainType", {"type": "identity"}),
)


class Use:
    """A device the host uses, and the tokens a refusal must name. A token is a string or a tuple
    of strings of which one must appear; a number stands for itself as a whole word."""

    def __init__(self, what, device, tokens):
        self.what, self.device, self.tokens = what, device, tokens
        self.group = hh.group_of(device)

    def missing(self, message):
        missing = []
        for token in [self.group, self.device, *self.tokens]:
            alternatives = token if isinstance(token, tuple) else (token,)
            if not any(found(str(t), message, isinstance(t, int)) for t in alternatives):
                missing.append(" or ".join(repr(str(t)) for t in alternatives))
        return missing


def found(token, message, whole_word):
    if whole_word:
        return re.search(rf"(?<![\w.:/-]){re.escape(token)}(?![\w.:-])", message) is not None
    return token in message


def uses(host):
    """The uses 10-build-host built, with what a refusal must name for each."""
    sriov, held = host["sriov"], host["vfio_held"]
    return [
        Use("LVM with a mounted ext4 LV", hh.NVME_LVM,
            [host["lvm"]["mountpoint"], host["lvm"]["lv_mounted"]]),
        Use("md RAID1 and swap", hh.NVME_RAID, [host["md"]["md"], "swap"]),
        Use("bond under a bridge with the default route", hh.NIC_BOND,
            [host["net"]["bond"], host["net"]["bridge"], "default route"]),
        Use("SR-IOV PF with a VF in use", hh.NVME_SRIOV, ["SR-IOV", sriov["vf_in_use"], sriov["vf_holder"]]),
        Use("VF group held by a root process", sriov["vf_in_use"],
            [f"/dev/vfio/{sriov['vf_group']}", sriov["vf_holder"]]),
        Use("group held by uid 65534", held["device"], [f"/dev/vfio/{held['group']}", held["holder"]]),
    ]


def host_state():
    """What a refused call must leave alone: per PCI device its driver and override, per group its
    type, the SR-IOV PF's VF count, the VFIO group nodes."""
    state = {}
    for dev in sorted(os.listdir("/sys/bus/pci/devices")):
        state[dev] = (driver(dev), sysfs(f"/sys/bus/pci/devices/{dev}/driver_override"))
    for group in os.listdir("/sys/kernel/iommu_groups"):
        state[f"group {group}"] = group_type(group)
    state["sriov_numvfs"] = sysfs(f"/sys/bus/pci/devices/{hh.NVME_SRIOV}/sriov_numvfs")
    state["/dev/vfio"] = sorted(os.listdir("/dev/vfio"))
    return state


def refusals(daemon, host):
    """Every operation on every used group, dry run and real, without force."""
    before = host_state()
    for use in uses(host):
        for method, extra in OPERATIONS:
            for dry_run in (True, False):
                status, reply = daemon.call(method, group=use.group, dry_run=dry_run, **extra)
                what = f"{method}{' (dry run)' if dry_run else ''} on group {use.group} ({use.what})"
                if status == "OK":
                    check(False, f"{what} is refused: it answered OK with steps {list(reply.steps)}")
                    continue
                missing = use.missing(reply)
                check(status == "FAILED_PRECONDITION" and not missing,
                      f"{what} is refused with FAILED_PRECONDITION naming the use: {status} "
                      f"{'missing ' + ', '.join(missing) + ' in ' if missing else ''}{reply!r}")
    after = host_state()
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    check(not changed, f"the refused calls changed nothing on the host{': ' + repr(changed) if changed else ''}")


def prepare_release(daemon, device, what):
    """A free group prepares to vfio-pci and releases back to what it had."""
    group = hh.group_of(device)
    ends = members(group)
    original = {d: driver(d) for d in ends}
    status, reply = daemon.call("PrepareGroup", group=group, owner="free-group-check")
    check(status == "OK" and all(driver(d) == "vfio-pci" for d in ends),
          f"the free group {group} ({what}) prepares: {status} {'' if status == 'OK' else reply}, "
          f"drivers {[driver(d) for d in ends]}")
    status, reply = daemon.call("ReleaseGroup", group=group)
    check(status == "OK" and all(driver(d) == original[d] for d in ends),
          f"the free group {group} ({what}) releases: {status} {'' if status == 'OK' else reply}, "
          f"drivers {[driver(d) for d in ends]} (were {list(original.values())})")


def free_groups(daemon, host):
    prepare_release(daemon, hh.NIC_FREE, "e1000e without any use")
    free_vf = next(vf for vf in host["sriov"]["vfs"] if vf != host["sriov"]["vf_in_use"])
    prepare_release(daemon, free_vf, "an unused SR-IOV VF")


def forced_prepare(daemon, host):
    """Force on the one harmless use here: the bond's NIC (the test network goes nowhere).
    Released afterwards and put back into the bond, so later scenarios find the host as built."""
    group = hh.group_of(hh.NIC_BOND)
    status, reply = daemon.call("PrepareGroup", group=group, owner="forced", force=True)
    check(status == "OK" and driver(hh.NIC_BOND) == "vfio-pci",
          f"a forced PrepareGroup of group {group} (the bond's NIC) goes through: {status} "
          f"{'' if status == 'OK' else reply}, driver {driver(hh.NIC_BOND)}")
    status, reply = daemon.call("ReleaseGroup", group=group)
    if check(status == "OK" and driver(hh.NIC_BOND) == "e1000e",
             f"and releases back to e1000e: {status} {'' if status == 'OK' else reply}, driver {driver(hh.NIC_BOND)}"):
        hh.rejoin_bond(host)
