"""The realistic hypervisor host that scenarios/hypervisor/10-build-host builds on the hypervisor
topology, and how the later scenarios find its parts (`load()`): which PCI device holds which
disk, volume, array, swap, bond, VF and VFIO holder."""
import json
import os
import re
import subprocess
import sys
import time

BUILT = "/run/vm/hypervisor/10-build-host/host.json"
VMDIR = os.environ["VMDIR"]

# PCI addresses of the hypervisor topology (topologies/hypervisor.topo).
NVME_LVM = "0000:01:00.0"
NVME_RAID = "0000:02:00.0"
NVME_SRIOV = "0000:03:00.0"
NIC_BOND = "0000:04:00.0"
NIC_FREE = "0000:05:00.0"
NIC_HELD = "0000:06:00.0"

VG, LV_MOUNTED, LV_OPEN = "vg0", "data", "vm1disk"
LV_MOUNTPOINT = "/srv"
MD_NAME, MD_MOUNTPOINT = "hvraid", "/home"
BOND, BRIDGE = "bond0", "vmbr0"
ADDRESS, GATEWAY, ADDRESS6 = "192.0.2.10/24", "192.0.2.1", "2001:db8::10/64"
NOBODY = 65534
NUM_VFS = 4

# LVM in a guest whose root is a read-only 9p share: config, locks and nothing else under /run,
# no udev (nodes are made by libdevmapper), no metadata backups.
LVM_CONF = """devices {
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
}
global {
    locking_dir = "/run/lock/lvm"
    event_activation = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
backup {
    backup = 0
    archive = 0
}
"""
LVM_ENV = {"LVM_SYSTEM_DIR": "/run/lvm", "LVM_SUPPRESS_FD_WARNINGS": "1"}


def daemon_dirs():
    """Where the test daemons keep their state: with systemd as PID 1, the unit's own
    directories, so that the iommud systemd starts finds what 10-build-host prepared."""
    if os.environ.get("GUEST_INIT") == "systemd":
        return {"runtime_dir": "/run/iommud", "state_dir": "/var/lib/iommud"}
    return {}


def sh(*argv, check=True, env=None, quiet=False, stdin=None):
    """Runs a command, shows it and its output; its output (stdout and stderr)."""
    out = subprocess.run(argv, capture_output=True, text=True, input=stdin,
                         env=dict(os.environ, **(env or {})))
    text = (out.stdout + out.stderr).strip()
    if not quiet:
        print(f"$ {' '.join(argv)}" + (f"\n{text}" if text else "") +
              (f"\n[exit {out.returncode}]" if out.returncode else ""), flush=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {text}")
    return text


def lvm(*argv, check=True):
    return sh("lvm", *argv, check=check, env=LVM_ENV)


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


def read(path):
    with open(path) as f:
        return f.read().strip()


def nvme_disk(address):
    """The namespace's disk of the NVMe controller at address (not in an NVM subsystem)."""
    base = f"/sys/bus/pci/devices/{address}/nvme"
    for ctrl in os.listdir(base):
        for name in os.listdir(f"{base}/{ctrl}"):
            if re.fullmatch(re.escape(ctrl) + r"n\d+", name):
                return name
    raise RuntimeError(f"no namespace under {base}")


def netdev(address, timeout=20):
    """The network interface of the device (waits for a driver that is still probing)."""
    path = f"/sys/bus/pci/devices/{address}/net"
    deadline = time.monotonic() + timeout
    while not (os.path.isdir(path) and os.listdir(path)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address} has no network interface after {timeout} s")
        time.sleep(0.1)
    return os.listdir(path)[0]


def group_of(address):
    return int(os.path.basename(os.readlink(f"/sys/bus/pci/devices/{address}/iommu_group")))


def wait_for(path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(0.1)


def partition(disk, n):
    return f"{disk}p{n}"


def partition_disk(disk, layout):
    """GPT with the given partitions (sfdisk lines); waits for the partition nodes."""
    sh("sfdisk", "--quiet", "--wipe", "always", f"/dev/{disk}", stdin="label: gpt\n" + layout)
    for n in range(1, layout.count("\n") + 1):
        wait_for(f"/dev/{partition(disk, n)}")


def build_storage(host):
    os.makedirs("/run/lvm", exist_ok=True)
    os.makedirs("/run/lock/lvm", exist_ok=True)
    write("/run/lvm/lvm.conf", LVM_CONF)

    # NVMe #1: p1 a free partition, p2 the PV of vg0 with a mounted LV and one a process holds.
    disk = nvme_disk(NVME_LVM)
    partition_disk(disk, "size=64MiB, name=free\nname=pv\n")
    pv = f"/dev/{partition(disk, 2)}"
    lvm("pvcreate", "-ff", "-y", pv)
    lvm("vgcreate", VG, pv)
    lvm("lvcreate", "-y", "-L", "256M", "-n", LV_MOUNTED, VG)
    lvm("lvcreate", "-y", "-L", "128M", "-n", LV_OPEN, VG)
    sh("mkfs.ext4", "-q", "-F", f"/dev/mapper/{VG}-{LV_MOUNTED}")
    sh("mount", f"/dev/mapper/{VG}-{LV_MOUNTED}", LV_MOUNTPOINT)
    host["lvm"] = {"disk": disk, "free_partition": partition(disk, 1), "pv": partition(disk, 2),
                   "vg": VG, "lv_mounted": f"{VG}-{LV_MOUNTED}", "lv_open": f"{VG}-{LV_OPEN}",
                   "mountpoint": LV_MOUNTPOINT,
                   "dm": {name: os.path.basename(os.path.realpath(f"/dev/mapper/{VG}-{name}"))
                          for name in (LV_MOUNTED, LV_OPEN)}}
    # dm nodes made by libdevmapper are block nodes, not links: find the dm-N by dm/name.
    for dm in os.listdir("/sys/class/block"):
        if dm.startswith("dm-"):
            host["lvm"]["dm"][read(f"/sys/class/block/{dm}/dm/name").removeprefix(f"{VG}-")] = dm

    # NVMe #2: p1 and p2 the members of an md RAID1 with a mounted ext4, p3 swap.
    disk = nvme_disk(NVME_RAID)
    partition_disk(disk, "size=300MiB, name=raid-a\nsize=300MiB, name=raid-b\nname=swap\n")
    members = [f"/dev/{partition(disk, n)}" for n in (1, 2)]
    sh("mdadm", "--create", f"/dev/md/{MD_NAME}", "--run", "--assume-clean", "--level=1",
       "--raid-devices=2", "--metadata=1.2", "--homehost=any", *members)
    md = os.path.basename(os.path.realpath(f"/dev/md/{MD_NAME}"))
    if not md.startswith("md"):  # mdadm made a node, not a link: find it by the array's name
        md = next(b for b in os.listdir("/sys/class/block") if b.startswith("md") and
                  os.path.exists(f"/sys/class/block/{b}/md") and
                  read(f"/sys/class/block/{b}/md/array_state") != "clear")
    sh("mkfs.ext4", "-q", "-F", f"/dev/{md}")
    sh("mount", f"/dev/{md}", MD_MOUNTPOINT)
    sh("mkswap", f"/dev/{partition(disk, 3)}")
    sh("swapon", f"/dev/{partition(disk, 3)}")
    host["md"] = {"disk": disk, "members": [partition(disk, n) for n in (1, 2)], "md": md,
                  "name": MD_NAME, "mountpoint": MD_MOUNTPOINT}
    host["swap"] = {"disk": disk, "partition": partition(disk, 3)}

    # A VM's disk: an LV held open by a process (no mount).
    holder = subprocess.Popen([sys.executable, "-c",
                               "import os, signal, sys\n"
                               f"fd = os.open('/dev/mapper/{VG}-{LV_OPEN}', os.O_RDWR)\n"
                               "print('holding', flush=True)\nsignal.pause()\n"],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    holder.stdout.readline()
    host["lvm"]["open_by"] = holder.pid


def build_network(host):
    nic = netdev(NIC_BOND)
    sh("ip", "link", "set", "lo", "up")
    # Loading bonding makes a bond0 already (max_bonds defaults to 1).
    if not os.path.exists(f"/sys/class/net/{BOND}"):
        sh("ip", "link", "add", BOND, "type", "bond")
    sh("ip", "link", "set", BOND, "type", "bond", "mode", "active-backup", "miimon", "100")
    sh("ip", "link", "set", nic, "down")
    sh("ip", "link", "set", nic, "master", BOND)
    sh("ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    sh("ip", "link", "set", BOND, "master", BRIDGE)
    for ifname in (nic, BOND, BRIDGE):
        sh("ip", "link", "set", ifname, "up")
    sh("ip", "address", "add", ADDRESS, "dev", BRIDGE)
    sh("ip", "-6", "address", "add", ADDRESS6, "dev", BRIDGE, "nodad")
    sh("ip", "route", "add", "default", "via", GATEWAY, "dev", BRIDGE, "onlink")
    host["net"] = {"nic": nic, "bond": BOND, "bridge": BRIDGE, "address": ADDRESS,
                   "free": netdev(NIC_FREE), "held": netdev(NIC_HELD)}


def rejoin_bond(host):
    """Puts the bond's NIC back into the bond after it was away (its name may have changed)."""
    nic = netdev(NIC_BOND)
    if not os.path.exists(f"/sys/class/net/{nic}/master"):
        sh("ip", "link", "set", nic, "down")
        sh("ip", "link", "set", nic, "master", BOND)
        sh("ip", "link", "set", nic, "up")
    host["net"]["nic"] = nic
    save(host)


def enable_vfs(host):
    """NUM_VFS VFs on the SR-IOV NVMe, left without a driver (QEMU's VFs are offline secondary
    controllers until an admin assigns them resources: nvme would fail to probe them)."""
    pf = f"/sys/bus/pci/devices/{NVME_SRIOV}"
    write(f"{pf}/sriov_drivers_autoprobe", "0")
    write(f"{pf}/sriov_numvfs", str(NUM_VFS))
    vfs = sorted(os.path.basename(os.readlink(f"{pf}/virtfn{i}")) for i in range(NUM_VFS))
    host["sriov"] = {"pf": NVME_SRIOV, "vfs": vfs, "vf_groups": {vf: group_of(vf) for vf in vfs}}


def hold(group, device, uid=0):
    """A process (of uid) holding /dev/vfio/GROUP and the device's fd, as a VM would."""
    argv = [sys.executable, f"{VMDIR}/guest/vfio-hold.py", str(group), "--device", device]
    if uid:
        os.chown(f"/dev/vfio/{group}", uid, uid)
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    line = proc.stdout.readline().strip()
    if line != "holding":
        raise RuntimeError(f"holder of group {group}: {line} {proc.stderr.read().strip()}")
    return proc.pid


def save(host):
    os.makedirs(os.path.dirname(BUILT), exist_ok=True)
    with open(BUILT + ".tmp", "w") as f:
        json.dump(host, f, indent=1, sort_keys=True)
    os.rename(BUILT + ".tmp", BUILT)


def load():
    """The host as 10-build-host left it, or exit 1 when it was not built."""
    if not os.path.exists(BUILT):
        sys.exit(f"the realistic host was not built ({BUILT} is missing): see hypervisor/10-build-host")
    with open(BUILT) as f:
        return json.load(f)
