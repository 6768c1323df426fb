"""Generated hosts for the benchmarks, built with tests/fixtures/gen-host.py and kept between runs.

large:  16 PCI segments x 16 root ports, each with a switch of 7 downstream ports holding one
        8-function NVMe device with ACS: 14,336 endpoints, 16,640 PCI devices, each in its own group.
small:  the same fabric with one segment and one root port: 65 devices.
group13: the large host plus, in segment 16, a root port with a PCIe-to-PCI bridge and 12 conventional
        NICs behind it: the bridge and the NICs form one 13-device group (the kernel's DMA alias rule).
small13: the small host with the same 13-device group: 79 devices.
"""
import copy
import json
import os
import subprocess
import sys

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _description(domains, root_ports, downstream_ports, functions):
    with open(os.path.join(SOURCE, "tests/fixtures/hosts/synthetic-4096.json")) as f:
        d = json.load(f)
    d["synthetic"].update(domains=domains, root_ports=root_ports, downstream_ports=downstream_ports,
                          functions=functions)
    unit = d["units"][0]
    d["units"] = [dict(copy.deepcopy(unit), name=f"dmar{i}", scope=[f"pci{i:04x}:00"],
                       registers=dict(unit["registers"], address=f"fed{0x90 + i:02x}000"))
                  for i in range(domains)]
    return d


def _group13(d):
    unit = d["units"][0]
    d["units"].append(dict(copy.deepcopy(unit), name="dmar16", scope=["pci0010:00"],
                           registers=dict(unit["registers"], address="fea00000")))
    d["host"]["drivers"] = sorted(set(d["host"].get("drivers", []) + ["e1000"]))
    d["devices"] = d.get("devices", []) + [
        {"address": "0010:00:01.0", "ids": "1b36:000c", "subsystem": "1b36:0000", "class": "060400",
         "pcie": "root-port", "driver": "pcieport", "acs": {"cap": "005f", "ctrl": "001d"}},
        {"address": "0010:01:00.0", "parent": "0010:00:01.0", "ids": "1b36:000e", "class": "060400",
         "pcie": "pcie-to-pci-bridge"},
    ] + [{"address": f"0010:02:{slot:02x}.0", "parent": "0010:01:00.0", "ids": "8086:100e",
          "subsystem": "8086:001e", "class": "020000", "revision": "03", "driver": "e1000"}
         for slot in range(1, 13)]
    return d


HOSTS = {
    "large": lambda: _description(16, 16, 7, 8),
    "small": lambda: _description(1, 1, 7, 8),
    "group13": lambda: _group13(_description(16, 16, 7, 8)),
    "small13": lambda: _group13(_description(1, 1, 7, 8)),
}


def host(name, workdir):
    """The tree of host `name` under workdir, generated once."""
    tree = os.path.join(workdir, f"host-{name}")
    if os.path.isdir(os.path.join(tree, "sys")):
        return tree
    os.makedirs(workdir, exist_ok=True)
    desc = os.path.join(workdir, f"host-{name}.json")
    with open(desc, "w") as f:
        json.dump(HOSTS[name](), f)
    subprocess.run([sys.executable, os.path.join(SOURCE, "tests/fixtures/gen-host.py"), desc, tree + ".tmp"],
                   check=True, stdout=subprocess.DEVNULL)
    os.rename(tree + ".tmp", tree)
    return tree


def n_devices(tree):
    return len(os.listdir(os.path.join(tree, "sys/bus/pci/devices")))
