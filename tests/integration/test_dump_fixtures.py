#!/usr/bin/env python3
"""Runs `iommud --dump` on every fixture host tree and checks what it prints.

usage: test_dump_fixtures.py IOMMUD SOURCE_ROOT [--update]

Each tests/fixtures/hosts/NAME.json is built into a tree by gen-host.py. The dump must exit 0, be
valid UTF-8 JSON, match tests/fixtures/expected/NAME.json (rewritten instead with --update or
UPDATE_GOLDEN=1; synthetic-4096 has no golden file) and pass checks derived independently from the
description and the tree: group membership as on disk, and facts each fixture exists to exercise.
Unusable roots must exit 1 with a message. Output is TAP, one line per fixture and check.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

# tests/tap.py: the TAP lines every Python test prints.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tap as tap_module  # noqa: E402

HEX4 = re.compile(r"^[0-9a-f]{4}$")
HEX6 = re.compile(r"^[0-9a-f]{6}$")
DOMAIN_TYPES = {"identity", "DMA", "DMA-FQ", "blocked", "unmanaged", "unknown"}
REGION_TYPES = {"direct", "direct-relaxable", "reserved", "msi"}
NO_GOLDEN = {"synthetic-4096"}


def diff(expected, actual, path="$"):
    """Paths where two JSON values differ, shortest first."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            elif key not in expected:
                out.append(f"{path}.{key}: unexpected {json.dumps(actual[key])[:120]}")
            else:
                out += diff(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [line for i, (e, a) in enumerate(zip(expected, actual)) for line in diff(e, a, f"{path}[{i}]")]
    if expected != actual:
        return [f"{path}: expected {json.dumps(expected)[:120]}, got {json.dumps(actual)[:120]}"]
    return []


def schema_problems(dump):
    """The field names and shapes every dump must have, whatever the host."""
    problems = [f"top-level '{key}' missing" for key in ("host", "units", "groups", "devices") if key not in dump]
    if problems:
        return problems
    items = [("host", dump["host"])] + [(f"unit {u.get('name')}", u) for u in dump["units"]]
    items += [(f"group {g.get('id')}", g) for g in dump["groups"]]
    items += [(f"device {d.get('address')}", d) for d in dump["devices"]]
    for name, item in items:
        errors = item.get("errors")
        if not isinstance(errors, list) or not all(
                isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("message"), str)
                for e in errors):
            problems.append(f"{name}: 'errors' is not a list of {{file, message}}")
    for g in dump["groups"]:
        if not isinstance(g.get("id"), int) or not isinstance(g.get("viable"), bool):
            problems.append(f"group {g.get('id')}: id must be an int and viable a bool")
        if g.get("type") is not None and g["type"] not in DOMAIN_TYPES and not g["errors"]:
            problems.append(f"group {g['id']}: type {g['type']!r} without an error")
        for r in g.get("reserved_regions", []):
            if set(r) != {"start", "end", "type"} or r["type"] not in REGION_TYPES and not g["errors"]:
                problems.append(f"group {g['id']}: bad reserved region {r}")
        for b in g.get("blockers", []):
            if set(b) != {"device", "driver", "reason", "kind"} or b["kind"] not in ("driver", "direct-region"):
                problems.append(f"group {g['id']}: bad blocker {b}")
    for d in dump["devices"]:
        for key in ("vendor_id", "device_id", "subsystem_vendor_id", "subsystem_device_id"):
            if d.get(key) is not None and not HEX4.match(d[key]):
                problems.append(f"device {d['address']}: {key} {d[key]!r} is not 4 lowercase hex digits")
        if d.get("class") is not None and not HEX6.match(d["class"]):
            problems.append(f"device {d['address']}: class {d['class']!r} is not 6 lowercase hex digits")
        for key in ("address", "driver", "group", "vendor_name", "device_name", "class_name", "header_type",
                    "driver_override", "iommu_unit", "numa_node", "parent", "sriov", "acs", "serial",
                    "reset_methods", "boot_vga", "net_interfaces", "block_devices", "drm_cards", "modalias",
                    "ats", "pri", "pasid", "removable"):
            if key not in d:
                problems.append(f"device {d.get('address')}: field '{key}' missing")
    return problems


def consistency_problems(dump):
    """Cross-references inside one dump must agree."""
    problems = []
    groups = {g["id"]: g for g in dump["groups"]}
    devices = {d["address"]: d for d in dump["devices"]}
    for d in dump["devices"]:
        g = groups.get(d["group"])
        if d["group"] is not None and (g is None or d["address"] not in g["devices"]):
            problems.append(f"device {d['address']} says group {d['group']}, which does not list it")
        if d["parent"] is not None and d["parent"] not in devices:
            problems.append(f"device {d['address']}: parent {d['parent']} is not a device")
    for g in dump["groups"]:
        for address in g["devices"]:  # a disagreement on disk is fine once an error reports it
            member = devices.get(address, {"group": None, "errors": []})
            if member["group"] != g["id"] and not g["errors"] and not has_error(member, "/iommu_group"):
                problems.append(f"group {g['id']} lists {address}, whose group is not {g['id']}")
        for b in g["blockers"]:
            if b["kind"] == "direct-region" and b["device"] is None:
                continue  # a blocker of the whole group: a reserved region, no member
            if b["device"] not in g["devices"]:
                problems.append(f"group {g['id']}: blocker {b['device']} is not a member")
        if g["viable"] == bool(g["blockers"]):
            problems.append(f"group {g['id']}: viable is {g['viable']} with {len(g['blockers'])} blockers")
    return problems


def tree_groups(tree):
    base = os.path.join(tree, "sys/kernel/iommu_groups")
    return {int(n): sorted(os.listdir(os.path.join(base, n, "devices"))) for n in os.listdir(base)}


def find(items, key, value):
    return next((item for item in items if item.get(key) == value), None)


def has_error(item, file_suffix):
    return item is not None and any(e["file"].endswith(file_suffix) for e in item["errors"])


def described_devices(desc):
    out = {d["address"]: d for d in desc.get("devices", [])}
    vf_counts = [d["sriov"]["numvfs"] for d in desc.get("devices", []) if "sriov" in d]
    return out, sum(vf_counts)


# ---- per-fixture checks: each returns [(what, ok, detail)] --------------------------------------

def check_desktop_gpu(dump, desc):
    devs, groups = dump["devices"], dump["groups"]
    gpu, audio = find(devs, "address", "0000:01:00.0"), find(devs, "address", "0000:01:00.1")
    g = find(groups, "id", gpu["group"]) if gpu else None
    blockers = g["blockers"] if g else []
    lpc = find(groups, "id", find(devs, "address", "0000:00:1f.0")["group"])
    igpu = find(devs, "address", "0000:00:02.0")
    igpu_group = find(groups, "id", igpu["group"])
    return [
        ("GPU, its audio function and root port 00:01.0 share one group",
         g is not None and {"0000:00:01.0", "0000:01:00.0", "0000:01:00.1"} <= set(g["devices"]), g),
        ("the GPU's group is not viable", g is not None and g["viable"] is False, g),
        ("a blocker names 0000:01:00.1 and snd_hda_intel",
         any(b["device"] == "0000:01:00.1" and b["driver"] == "snd_hda_intel" for b in blockers), blockers),
        ("neither the unbound GPU nor the pcieport root port blocks",
         not any(b["device"] in ("0000:01:00.0", "0000:00:01.0") for b in blockers), blockers),
        ("the GPU is unbound with driver_override vfio-pci",
         gpu["driver"] is None and gpu["driver_override"] == "vfio-pci", gpu),
        ("the audio function is on snd_hda_intel and its name resolves",
         audio["driver"] == "snd_hda_intel" and audio["device_name"] == "GA102 High Definition Audio Controller", audio),
        ("vendor and device IDs and the GPU name",
         (gpu["vendor_id"], gpu["device_id"], gpu["class"], gpu["device_name"])
         == ("10de", "2204", "030000", "GA102 [GeForce RTX 3090]"), gpu),
        ("boot_vga is the iGPU, not the GPU", igpu["boot_vga"] is True and gpu["boot_vga"] is False, None),
        ("the iGPU has drm card0 only (renderD128 is not a card)", igpu["drm_cards"] == ["card0"], igpu["drm_cards"]),
        ("the iGPU is on dmar0, the GPU on dmar1", (igpu["iommu_unit"], gpu["iommu_unit"]) == ("dmar0", "dmar1"), None),
        ("the iGPU group has its RMRR as direct-relaxable",
         {"start": "0x000000007b000000", "end": "0x000000007f7fffff", "type": "direct-relaxable"}
         in igpu_group["reserved_regions"], igpu_group["reserved_regions"]),
        ("the PCH group holds 1f.0, 1f.3, 1f.4, 1f.5, 1f.6 and the ISA 0-16M direct-relaxable range",
         lpc["devices"] == ["0000:00:1f.0", "0000:00:1f.3", "0000:00:1f.4", "0000:00:1f.5", "0000:00:1f.6"]
         and {"start": "0x0000000000000000", "end": "0x0000000000ffffff", "type": "direct-relaxable"}
         in lpc["reserved_regions"], lpc),
        ("NVMe: block nvme0n1, reset flr bus, parent 00:1b.0 with ACS",
         find(devs, "address", "0000:02:00.0")["block_devices"] == ["nvme0n1"]
         and find(devs, "address", "0000:02:00.0")["reset_methods"] == ["flr", "bus"]
         and find(devs, "address", "0000:02:00.0")["parent"] == "0000:00:1b.0"
         and (find(devs, "address", "0000:00:1b.0")["acs"] or {}).get("ctrl") == "001d", None),
        ("the NIC has interface enp0s31f6", find(devs, "address", "0000:00:1f.6")["net_interfaces"] == ["enp0s31f6"], None),
        ("the SATA disk is found under ata*/host*", find(devs, "address", "0000:00:17.0")["block_devices"] == ["sda"], None),
        ("the iGPU is not forced to identity: intel_iommu=on maps it",
         find(groups, "id", igpu["group"])["type_change"]["refused"] == [], find(groups, "id", igpu["group"])),
        ("iommu=pt makes the command-line default identity",
         dump["host"].get("cmdline_default_domain_type") == "identity", dump["host"]),
    ]


def check_server_sriov(dump, desc):
    devs, groups = dump["devices"], dump["groups"]
    vfs = [d for d in devs if (d["sriov"] or {}).get("role") == "vf"]
    pf = find(devs, "address", "0000:18:00.0")
    pf1 = find(devs, "address", "0000:18:00.1")
    single = [find(groups, "id", d["group"]) for d in vfs]
    vfio = sorted(d["address"] for d in vfs if d["driver"] == "vfio-pci")
    iavf = [d for d in vfs if d["driver"] == "iavf"]
    mlx = find(groups, "id", find(devs, "address", "0000:af:00.0")["group"])
    no_acs = find(groups, "id", find(devs, "address", "0000:d8:00.0")["group"])
    vga = find(groups, "id", find(devs, "address", "0000:03:00.0")["group"])
    lom = find(groups, "id", find(devs, "address", "0000:04:00.0")["group"])
    return [
        ("64 VFs, all with PF 0000:18:00.0", len(vfs) == 64 and all(d["sriov"]["pf"] == "0000:18:00.0" for d in vfs),
         [d["address"] for d in vfs][:8]),
        ("VF IDs come from sysfs (config space reads 0xffff)",
         all((d["vendor_id"], d["device_id"]) == ("8086", "154c") for d in vfs), None),
        ("each VF is alone in its group", all(g is not None and len(g["devices"]) == 1 for g in single), None),
        ("VFs 18:02.0-18:05.7 are on vfio-pci, the other 32 on iavf with an interface",
         len(vfio) == 32 and vfio[0] == "0000:18:02.0" and vfio[-1] == "0000:18:05.7"
         and len(iavf) == 32 and all(len(d["net_interfaces"]) == 1 for d in iavf), vfio[:3]),
        ("PF 18:00.0 is pf with totalvfs 64 and numvfs 64",
         (pf["sriov"] or {}).get("role") == "pf" and pf["sriov"]["totalvfs"] == 64 and pf["sriov"]["numvfs"] == 64, pf["sriov"]),
        ("PF 18:00.1 is pf with numvfs 0", (pf1["sriov"] or {}).get("role") == "pf" and pf1["sriov"]["numvfs"] == 0, pf1["sriov"]),
        ("the PF's DSN is read from config space", pf["serial"] is not None and "3cfdfeffff9ea210" in pf["serial"].replace("-", "").lower(), pf["serial"]),
        ("ACS on root port 17:00.0", (find(devs, "address", "0000:17:00.0")["acs"] or {}).get("cap") == "005f", None),
        ("NUMA: 18:00.0 on node 0, af:00.0 on node 1",
         (pf["numa_node"], find(devs, "address", "0000:af:00.0")["numa_node"]) == (0, 1), None),
        ("both ConnectX-5 functions share a group, which is not viable",
         mlx["devices"] == ["0000:af:00.0", "0000:af:00.1"] and not mlx["viable"], mlx),
        ("the NVMe behind the ACS-less port d7:00.0 shares its group; nvme blocks",
         no_acs["devices"] == ["0000:d7:00.0", "0000:d8:00.0"]
         and [b["device"] for b in no_acs["blockers"]] == ["0000:d8:00.0"], no_acs),
        ("the BMC VGA shares a group with its PCIe-to-PCI bridge", vga["devices"] == ["0000:02:00.0", "0000:03:00.0"], vga),
        ("the LOM group carries the RMRR as direct",
         {"start": "0x000000007b800000", "end": "0x000000007b800fff", "type": "direct"} in lom["reserved_regions"], lom),
        ("the RMRR makes the LOM group not viable on 6.1's VT-d, with a blocker naming the region",
         not lom["viable"] and any(b["kind"] == "direct-region" and b["device"] is None
                                   and "0x000000007b800000-0x000000007b800fff is direct" in b["reason"]
                                   for b in lom["blockers"]), lom["blockers"]),
        ("a group of a vfio-pci VF is viable", find(groups, "id", find(devs, "address", "0000:18:02.0")["group"])["viable"], None),
        ("iommu.strict=1 is parsed from the command line",
         dump["host"]["kernel_params"].get("iommu.strict") == "1", dump["host"]),
        ("five VT-d units; dmar3 translates the VFs",
         len(dump["units"]) == 5 and "0000:18:09.7" in find(dump["units"], "name", "dmar3")["devices"], None),
    ]


def check_amd_host(dump, desc):
    devs, groups = dump["devices"], dump["groups"]
    unit = find(dump["units"], "name", "ivhd0")
    iommu_fn = find(devs, "address", "0000:00:00.2")
    gpu = find(devs, "address", "0000:0c:00.0")
    gpu_group = find(groups, "id", gpu["group"])
    hole = {"start": "0x000000fd00000000", "end": "0x000000ffffffffff", "type": "reserved"}
    features = set(unit["features"]) if unit else set()
    return [
        ("unit ivhd0 is amd-vi on PCI function 00:00.2",
         unit is not None and unit["kind"] == "amd-vi" and unit["pci_device"] == "0000:00:00.2", unit),
        ("6.12 features order (EFR first): PPRSup NXSup GTSup IASup PCSup present, PreFSup XTSup absent",
         {"PPRSup", "NXSup", "GTSup", "IASup", "PCSup"} <= features and not {"PreFSup", "XTSup"} & features,
         sorted(features)),
        ("the IOMMU function is in no group and reads without errors",
         iommu_fn["group"] is None and iommu_fn["errors"] == [], iommu_fn),
        ("every group has the HyperTransport hole", all(hole in g["reserved_regions"] for g in groups), None),
        ("GPU and HDMI audio share an identity group behind the GPU's own switch",
         gpu_group["devices"] == ["0000:0c:00.0", "0000:0c:00.1"] and gpu_group["type"] == "identity"
         and gpu["parent"] == "0000:0b:00.0" and find(devs, "address", "0000:0b:00.0")["parent"] == "0000:0a:00.0",
         gpu_group),
        ("the GPU has ATS, PRI and PASID, so AMD-Vi forces identity: DMA and DMA-FQ refused naming it",
         (gpu["ats"], gpu["pri"], gpu["pasid"]) == (True, True, True)
         and sorted(r["type"] for r in gpu_group["type_change"]["refused"]) == ["DMA", "DMA-FQ"]
         and all("0000:0c:00.0" in r["reason"] for r in gpu_group["type_change"]["refused"]),
         gpu_group["type_change"]),
        ("the dock NIC below the external-facing port is removable (untrusted): DMA only, identity refused",
         find(devs, "address", "0000:03:00.0")["removable"] == "removable"
         and "identity" not in find(groups, "id", find(devs, "address", "0000:03:00.0")["group"])["type_change"]["allowed"]
         and [r["type"] for r in find(groups, "id", find(devs, "address", "0000:03:00.0")["group"])["type_change"]["refused"]]
         == ["identity"], find(groups, "id", find(devs, "address", "0000:03:00.0")["group"])),
        ("the switch ports are bridges", find(devs, "address", "0000:0a:00.0")["header_type"] == "bridge", None),
        ("the Radeon is boot_vga with card0", gpu["boot_vga"] is True and gpu["drm_cards"] == ["card0"], None),
        ("the data-fabric functions 00:18.0-7 form one group",
         len(find(groups, "id", find(devs, "address", "0000:00:18.0")["group"])["devices"]) == 8, None),
        ("the root complex 00:00.0 is untranslated", find(devs, "address", "0000:00:00.0")["group"] is None, None),
    ]


def check_iommu_off(dump, desc):
    host = dump["host"]
    return [
        ("iommu_enabled is false", host["iommu_enabled"] is False, host),
        ("the reason names intel_iommu=off", "intel_iommu=off" in (host.get("iommu_off_reason") or ""), host.get("iommu_off_reason")),
        ("the DMAR table is seen", (host.get("acpi") or {}).get("dmar") is True, host.get("acpi")),
        ("no units and no groups", dump["units"] == [] and dump["groups"] == [], None),
        ("every device is untranslated and read without errors",
         all(d["group"] is None and d["iommu_unit"] is None and d["errors"] == [] for d in dump["devices"]),
         [d["address"] for d in dump["devices"] if d["errors"]]),
    ]


BROKEN_ERRORS = [  # (kind, key, file suffix, field that must stay unknown)
    ("device", "0000:00:14.0", "0000:00:14.0/vendor", "vendor_id"),
    ("device", "0000:00:1f.4", "0000:00:1f.4/class", "class"),
    ("device", "0000:02:00.0", "0000:02:00.0/device", "device_id"),
    ("device", "0000:02:00.0", "0000:02:00.0/driver", "driver"),
    ("device", "0000:01:00.0", "0000:01:00.0/iommu_group", None),
    ("device", "0000:00:1c.0", "0000:00:1c.0/config", "header_type"),
    ("device", "0000:00:1f.3", "0000:00:1f.3/modalias", "modalias"),
    ("device", "0000:00:02.0", "0000:00:02.0/driver_override", "driver_override"),
    ("device", "0000:00:1f.0", "0000:00:1f.0/numa_node", None),
    ("device", "0000:00:1f.0", "0000:00:1f.0/subsystem_vendor", "subsystem_vendor_id"),
    ("device", "0000:00:00.0", "0000:00:00.0/reset_method", "reset_methods"),
    ("group", 1, "iommu_groups/1/type", None),
    ("group", 5, "iommu_groups/5/reserved_regions", None),
    ("unit", "dmar0", "dmar0/intel-iommu/cap", None),
]


def check_broken(dump, desc):
    out = []
    for kind, key, suffix, field in BROKEN_ERRORS:
        items = {"device": (dump["devices"], "address"), "group": (dump["groups"], "id"),
                 "unit": (dump["units"], "name")}[kind]
        item = find(items[0], items[1], key)
        out.append((f"{kind} {key} has an error naming {suffix}", has_error(item, suffix), item and item["errors"]))
        if field:
            out.append((f"{kind} {key}: {field} is unknown, not guessed", item is not None and item.get(field) is None,
                        item and item.get(field)))
    dangling = find(dump["devices"], "address", "0000:00:1e.0")
    out.append(("the dangling bus link 0000:00:1e.0 is reported",
                has_error(dangling, "devices/0000:00:1e.0")
                or any(e["file"].endswith("devices/0000:00:1e.0") for e in dump.get("errors", [])), dangling))
    intact = find(dump["devices"], "address", "0000:00:1d.0")
    out.append(("an intact device next to the broken ones reads cleanly",
                intact["errors"] == [] and intact["vendor_id"] == "8086" and intact["acs"] is not None, intact))
    return out


def check_synthetic(dump, desc):
    s = desc["synthetic"]
    endpoints = s["domains"] * s["root_ports"] * s["downstream_ports"] * s["functions"]
    total = endpoints + s["domains"] * s["root_ports"] * (2 + s["downstream_ports"])
    with_errors = [d["address"] for d in dump["devices"] if d["errors"]] + [g["id"] for g in dump["groups"] if g["errors"]]
    return [
        (f"{total} devices, {endpoints} of them endpoints",
         len(dump["devices"]) == total and sum(d["class"] == "010802" for d in dump["devices"]) == endpoints,
         len(dump["devices"])),
        ("no item carries an error", not with_errors and not dump["host"]["errors"]
         and not any(u["errors"] for u in dump["units"]), with_errors[:10]),
        (f"{total} groups of one device", len(dump["groups"]) == total
         and all(len(g["devices"]) == 1 for g in dump["groups"]), len(dump["groups"])),
    ]


CHECKS = {"desktop-gpu": check_desktop_gpu, "server-sriov": check_server_sriov, "amd-host": check_amd_host,
          "iommu-off": check_iommu_off, "broken": check_broken, "synthetic-4096": check_synthetic}


def run_fixture(tap, iommud, source_root, name, workdir, update):
    fixtures = os.path.join(source_root, "tests/fixtures")
    with open(os.path.join(fixtures, "hosts", name + ".json")) as f:
        desc = json.load(f)
    tree = os.path.join(workdir, name)
    gen = subprocess.run([sys.executable, os.path.join(fixtures, "gen-host.py"),
                          os.path.join(fixtures, "hosts", name + ".json"), tree], capture_output=True, text=True)
    if not tap.check(gen.returncode == 0, f"{name}: gen-host.py builds the tree", gen.stderr):
        return
    start = time.monotonic()
    run = subprocess.run([iommud, "--dump", "--root", tree], capture_output=True)
    elapsed = time.monotonic() - start
    stderr = run.stderr.decode(errors="replace")
    if not tap.check(run.returncode == 0, f"{name}: iommud --dump exits 0 ({elapsed:.2f}s)",
                     f"exit {run.returncode}\n{stderr}"):
        return
    try:
        text = run.stdout.decode("utf-8")
        tap.check(True, f"{name}: the dump is valid UTF-8")
    except UnicodeDecodeError as e:  # report it, and go on to find everything else
        tap.check(False, f"{name}: the dump is valid UTF-8", e)
        text = run.stdout.decode("utf-8", errors="replace")
    try:
        dump = json.loads(text.replace(tree, "<root>"))
    except ValueError as e:
        tap.check(False, f"{name}: the dump is valid JSON", e)
        return
    problems = schema_problems(dump)
    if not tap.check(not problems, f"{name}: field names and shapes", "\n".join(problems)):
        return

    if name not in NO_GOLDEN:
        golden = os.path.join(fixtures, "expected", name + ".json")
        if update:
            os.makedirs(os.path.dirname(golden), exist_ok=True)
            with open(golden, "w") as f:
                json.dump(dump, f, indent=2, sort_keys=True)
                f.write("\n")
            tap.check(True, f"{name}: rewrote expected/{name}.json")
        elif not os.path.exists(golden):
            tap.check(False, f"{name}: matches expected/{name}.json", "missing; run with UPDATE_GOLDEN=1 and review it")
        else:
            with open(golden) as f:
                differences = diff(json.load(f), dump)
            tap.check(not differences, f"{name}: matches expected/{name}.json",
                      f"{len(differences)} differences:\n" + "\n".join(differences))

    problems = consistency_problems(dump)
    tap.check(not problems, f"{name}: devices, groups and blockers refer to each other consistently",
              "\n".join(problems))
    on_disk = tree_groups(tree)
    dumped = {g["id"]: sorted(g["devices"]) for g in dump["groups"]}
    tap.check(dumped == on_disk, f"{name}: groups and members as in sys/kernel/iommu_groups",
              "\n".join(diff({str(k): v for k, v in on_disk.items()}, {str(k): v for k, v in dumped.items()})))
    described, n_vfs = described_devices(desc)
    if "files" not in desc and "synthetic" not in desc:
        dumped_devices = {d["address"]: d for d in dump["devices"]}
        wrong = [a for a, d in described.items() if a not in dumped_devices or
                 (dumped_devices[a]["vendor_id"] + ":" + dumped_devices[a]["device_id"], dumped_devices[a]["class"],
                  dumped_devices[a]["driver"]) != (d["ids"], d["class"], d.get("driver"))]
        tap.check(not wrong and len(dump["devices"]) == len(described) + n_vfs,
                  f"{name}: every described device with its IDs, class and driver", wrong)
    try:
        results = CHECKS[name](dump, desc)
    except (KeyError, TypeError, AttributeError) as e:  # an item the checks rely on is missing
        tap.check(False, f"{name}: targeted checks", f"{type(e).__name__}: {e}")
        return
    for what, ok, detail in results:
        tap.check(ok, f"{name}: {what}", json.dumps(detail, indent=1) if not isinstance(detail, str) else detail)


def run_unusable_roots(tap, iommud, workdir):
    a_file = os.path.join(workdir, "not-a-directory")
    with open(a_file, "w") as f:
        f.write("x\n")
    empty = os.path.join(workdir, "empty")
    os.makedirs(empty)
    for what, root in (("a nonexistent directory", os.path.join(workdir, "does-not-exist")),
                       ("a regular file", a_file), ("a directory without sys/", empty)):
        run = subprocess.run([iommud, "--dump", "--root", root], capture_output=True, text=True)
        tap.check(run.returncode == 1 and root in run.stderr and not run.stdout.strip(),
                  f"unusable root ({what}): exit 1 and a message naming it",
                  f"exit {run.returncode}, stderr: {run.stderr.strip()}, stdout: {run.stdout[:200]}")


def main(argv):
    if len(argv) < 3:
        sys.exit(f"usage: {argv[0]} IOMMUD SOURCE_ROOT [--update]")
    iommud, source_root = argv[1], argv[2]
    update = "--update" in argv[3:] or os.environ.get("UPDATE_GOLDEN") == "1"
    tap = tap_module.Tap(detail_head=True)
    names = sorted(f[:-5] for f in os.listdir(os.path.join(source_root, "tests/fixtures/hosts")) if f.endswith(".json"))
    with tempfile.TemporaryDirectory(prefix="iommud-fixtures-") as workdir:
        for name in names:
            if name not in CHECKS:
                tap.check(False, f"{name}: has targeted checks in {os.path.basename(argv[0])}")
            else:
                run_fixture(tap, iommud, source_root, name, workdir, update)
        run_unusable_roots(tap, iommud, workdir)
    return tap.plan()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
