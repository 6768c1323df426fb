#!/usr/bin/env python3
"""Prints an `iommud --dump` JSON file as a short human summary (used by the README demo)."""
import json
import sys


def main():
    with open(sys.argv[1]) as f:
        dump = json.load(f)
    host = dump["host"]
    devices = {d["address"]: d for d in dump["devices"]}

    state = "on" if host["iommu_enabled"] else f"off ({host['iommu_off_reason']})"
    print(f"Kernel {host['kernel_release']}, IOMMU {state}")
    for unit in dump["units"]:
        features = ", ".join(unit["features"]) or "-"
        print(f"  unit {unit['name']} ({unit['kind']}): {len(unit['devices'])} devices; {features}")
    print()
    print(f"{len(dump['groups'])} IOMMU groups, {len(dump['devices'])} PCI devices")
    for group in dump["groups"]:
        verdict = "viable" if group["viable"] else "NOT viable"
        regions = ", ".join(f"{r['type']} {r['start']}-{r['end']}" for r in group["reserved_regions"])
        print(f"group {group['id']:>3}  type {group['type']:<8} {verdict:<11} reserved: {regions}")
        for address in group["devices"]:
            d = devices.get(address, {})
            name = " ".join(filter(None, [d.get("vendor_name"), d.get("device_name")])) or "?"
            print(f"          {address}  {name[:58]:<58}  driver: {d.get('driver') or '-'}")
        for blocker in group["blockers"]:
            print(f"          ! {blocker['reason']}")
        change = group["type_change"]
        allowed = ", ".join(change["allowed"]) or "none"
        print(f"          type may change to: {allowed}" + (f" ({change['reason']})" if change["reason"] else ""))
    problems = sum(len(item["errors"]) for key in ("units", "groups", "devices") for item in dump[key])
    problems += len(dump["host"]["errors"]) + len(dump["errors"])
    if problems:
        print(f"\n{problems} problems while reading; see the 'errors' lists in the JSON")


if __name__ == "__main__":
    main()
