#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the project's fixtures and examples (run once;
the corpora are committed, and fuzzing adds to them). Usage: make-seeds.py SOURCE_ROOT [HTTP2_TOOL]
HTTP2_TOOL is build/tests/fuzz/fuzz-make-http2-seeds (ninja builds it on request)."""
import json
import os
import subprocess
import sys

SEP = b"\n====\n"
src = sys.argv[1]
corpus = os.path.join(src, "tests", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(*path):
    with open(os.path.join(src, *path), "rb") as f:
        return f.read()


# config: the shipped files and a few of every kind of option.
write("config", "shipped", read("systemd", "iommud.conf"))
write("config", "example", read("systemd", "iommud.conf.example"))
write("config", "network", read("systemd", "network.conf"))
write("config", "limits", "[Limits]\nMaxConnections=64\nReservedConnections=8\nMaxMessageSize=1M\n"
      "MaxConnectionMemory=4M\nKeepaliveSec=5\nIdleTimeoutSec=0\n")
write("config", "roles", "[Roles]\nReader=group:iommud unix:*\nOperator=cn:op1 san-dns:op.example\n"
      "Admin=uid:0 san-uri:spiffe://example.org/admin\n  subject:CN=a,O=b\n")
write("config", "listen", "[Listen]\nUnix=/run/x.sock\nUnixMode=0660\nTLS=127.0.0.1:7443\nTLS=[::1]:7443\n"
      "InsecureTCP=127.0.0.1:7000\n[TLS]\nCertificate=/c.pem\nKey=/k.pem\nClientCA=/ca.pem\nCRL=/crl.pem\n")
write("config", "daemon", "[Daemon]\nSysfsRoot=/\nRescanIntervalSec=0\nUdev=no\nDBus=none\nLibvirtURI=none\n"
      "[Metrics]\nListen=127.0.0.1:9100\n[LibvirtHook]\nOnUnreachable=fail\n")
write("config", "bad", "[Nope]\nx=1\n[Limits]\nMaxConnections=-1\nMaxMessageSize=12Q\n")

# policy: the documented rules and the checker's errors.
rules = {
    "gpus": "[Match]\nVendor=10de\nClass=03\n\n[Policy]\nBindAtBoot=vfio-pci\nPassthrough=allow\n",
    "nvme": "[Match]\nClass=0108/ffff00\nAddress=0000:0*:00.*\n[Policy]\nCritical=yes\n",
    "nic": "[Match]\nVendor=8086\nDevice=10d3\nSubsystem=8086:0000\nDriver=e1000e none\n[Policy]\n"
           "DomainType=identity\n",
    "serial": "[Match]\nSerial=01-23-45-67-89-ab-cd-ef\nNumaNode=0\nGroup=3\n[Policy]\nPassthrough=deny\n",
    "dma": "[Match]\nAddress=0000:00:02.0\n[Policy]\nDomainType=DMA-FQ\n",
    "auto": "[Match]\nClass=0300/ff00\n[Policy]\nDomainType=auto\nPassthrough=allow\n",
    "errors": "[Match]\nVendor=10DEX\n[Policy]\nDomainType=dma\n[Matsch]\n",
    "contradiction": "[Match]\nVendor=1af4\n[Policy]\nCritical=yes\nBindAtBoot=vfio-pci\n",
}
for name, text in rules.items():
    write("policy", name, text)

# state-records: journal records (byte 0 even) and group records (odd), as the daemon writes them.
journal = {"id": 7, "operation": "PrepareGroup", "group": 3, "next": 2, "steps": [
    {"kind": "set-override", "device": "0000:00:02.0", "value": "vfio-pci", "previous": None},
    {"kind": "unbind", "device": "0000:00:02.0", "value": "e1000e", "previous": None},
    {"kind": "probe", "device": "0000:00:02.0", "value": "vfio-pci", "previous": "e1000e"},
    {"kind": "wait-vfio", "device": None, "value": None, "previous": None}]}
write("state-records", "journal-prepare", b"\0" + json.dumps(journal).encode())
journal2 = {"id": 9, "operation": "SetDomainType", "group": 5, "next": 0, "steps": [
    {"kind": "write-type", "device": None, "value": "identity", "previous": "DMA"},
    {"kind": "set-numvfs", "device": "0000:03:00.0", "value": "0", "previous": "4"},
    {"kind": "load-module", "device": None, "value": "vfio-pci", "previous": None},
    {"kind": "load-driver", "device": "0000:03:00.0", "value": "vfio-pci", "previous": None}]}
write("state-records", "journal-two", b"\0" + json.dumps(journal2).encode() + SEP + b"{\"steps\": []}")
write("state-records", "journal-garbage", b"\0{\"steps\": [{\"kind\": 3}], \"next\": -1")
member = {"address": "0000:00:02.0", "vendor_id": 32902, "device_id": 4307, "subsystem_vendor_id": 6900,
          "subsystem_device_id": 4352, "serial": None, "driver": "e1000e", "driver_override": None,
          "target": "vfio-pci"}
record = {"version": 2, "state": "vfio-ready", "group": 3, "owner": "libvirt:vm1",
          "boot_id": "00000000-0000-0000-0000-000000000000", "pending": None, "members": [member]}
write("state-records", "record-prepared", b"\1" + json.dumps(record, indent=1).encode())
blocked = dict(record, state="blocked", owner="admin", pending={"operation": 4, "action": "release"},
               members=[dict(member, target="none", serial="0123456789abcdef", sriov_numvfs=2)])
write("state-records", "record-blocked", b"\1" + json.dumps(blocked).encode())
old = dict(record, version=1, boot_id="other", pending={"operation": 5, "action": "acquire"})
write("state-records", "record-old-two", b"\1" + json.dumps(old).encode() + SEP + json.dumps(blocked).encode())

# domain-xml: the libvirt test domains.
for name in os.listdir(os.path.join(src, "tests", "integration", "virt")):
    if name.endswith(".xml"):
        write("domain-xml", name[:-4], read("tests", "integration", "virt", name))

# host-parsers: the captured files, in the target's order (byte 0: host).
hosts = [("hypervisor-6.12", ["proc/cmdline", "sys/kernel/iommu_groups/0/reserved_regions",
                              "sys/class/iommu/dmar0/intel-iommu/cap", "sys/class/iommu/dmar0/intel-iommu/ecap",
                              "proc/1/mountinfo", "proc/self/mountinfo", "proc/swaps", "proc/modules",
                              "sys/kernel/iommu_groups/0/type", "proc/1/net/route", "proc/1/net/if_inet6",
                              "proc/fb", "proc/308/status", "proc/308/comm", "proc/sys/kernel/osrelease"]),
         ("amd-6.12", ["proc/cmdline", "sys/kernel/iommu_groups/0/reserved_regions",
                       "sys/class/iommu/ivhd0/amd-iommu/cap", "sys/class/iommu/ivhd0/amd-iommu/features",
                       "proc/modules", "sys/kernel/iommu_groups/0/type", "proc/sys/kernel/osrelease"])]
for i, (host, files) in enumerate(hosts):
    parts = [read("tests", "fixtures", "captured", host, f) for f in files]
    write("host-parsers", host, bytes([i]) + SEP.join(parts))
    write("host-parsers", host + "-cmdline", bytes([i]) + SEP.join([
        b"intel_iommu=on,sm_on iommu=pt iommu.strict=0 iommu.passthrough=1 amd_iommu=off vfio-pci.ids=10de:2204 "
        b"\"quoted arg=x y\" -- init=/bin/sh",
        b"0x00000000fee00000 0x00000000feefffff msi\n0x0000000000000000 0x0000000000ffffff direct-relaxable\n"
        b"0x00000000bf000000 0x00000000bfffffff direct\n"]))

# grpc-request: byte 0 the method (index in the server's sorted table), byte 1 the role.
messages = [b"", b"\x08\x03", b"\x0a\x0c0000:00:02.0", b"\x08\x03\x10\x01\x1a\x08identity",
            b"\x0a\x0c0000:00:02.0\x12\x0blibvirt:vm1\x18\x01"]
for method in range(24):
    for k, m in enumerate(messages):
        if (method + k) % 2 == 0 or k == 0:
            write("grpc-request", "m%02d-%d" % (method, k), bytes([method, 3 if k % 2 else 1]) + m)

if len(sys.argv) > 2:
    d = os.path.join(corpus, "http2")
    os.makedirs(d, exist_ok=True)
    subprocess.run([sys.argv[2], d], check=True)
