#!/usr/bin/env python3
"""Boot a topology on a Debian kernel under QEMU (TCG), run the scenarios in the guest, and
report them as TAP.

    vmtest.py --iommud BUILD/daemon/iommud --source-dir SRC [options] TOPOLOGY KERNEL
    vmtest.py --list          # the topology/kernel pairs, one per line
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kernel
import sdboot

VMDIR = Path(__file__).resolve().parent
QEMU = 'qemu-system-x86_64'
DEFAULT_CACHE = '/var/cache/iommud-vm'
BOOT_TIMEOUT = 800
SCENARIO_TIMEOUT = 120
GUEST_TMPFS = ('tmp', 'run')  # top-level folders the guest mounts a tmpfs over (guest/init)


class Topology:
    """A topology file: `key: value` lines, `#` comments.

    kernels: 6.1 6.12              kernel series this topology boots on
    kind: intel-vtd                the IOMMU kind the guest must show in /sys/class/iommu
    iommu: intel-iommu,...         the vIOMMU, first -device on the command line
    machine: q35,...               default q35,kernel-irqchip=split
    cmdline: intel_iommu=on        appended to the kernel command line
    modules: virtio_iommu          loaded before the common modules
    device: e1000e,bus=rp1         one -device each
    blockdev: null-co,...          one -blockdev each
    hotplug-port: hp1,chassis=9,.. an empty pcie-root-port with that id, for QMP device_add
    expect-group: BDF BDF ...      these devices must form one IOMMU group, and only they
    init: systemd                  PID 1 of the guest: busybox (default: switch to the host
                                   root and run the scenarios) or systemd (sdboot.py)
    include: NAME.devices          the lines of that file (in topologies/) in this place

    The keys of a realistic host (HostKeys: writable disks, which scenarios run, reboots) are
    documented there.
    """

    def __init__(self, path):
        self.name = path.stem
        self.kernels, self.modules, self.cmdline = [], [], []
        self.machine, self.kind, self.iommu = 'q35,kernel-irqchip=split', None, None
        self.qemu_args, self.hotplug_ports, self.expect_groups = [], [], []
        self.init = 'busybox'
        self.host = HostKeys()
        for where, key, value in topology_lines(path):
            if key == 'kernels':
                self.kernels = value.split()
            elif key == 'kind':
                self.kind = value
            elif key == 'iommu':
                self.iommu = value
            elif key == 'machine':
                self.machine = value
            elif key == 'cmdline':
                self.cmdline.append(value)
            elif key == 'modules':
                self.modules += value.split()
            elif key in ('device', 'blockdev'):
                self.qemu_args += [f'-{key}', value]
            elif key == 'hotplug-port':
                port_id = value.split(',')[0]
                self.hotplug_ports.append(port_id)
                self.qemu_args += ['-device', f'pcie-root-port,id={value}']
            elif key == 'expect-group':
                self.expect_groups.append(value.split())
            elif key == 'init':
                if value not in ('busybox', 'systemd'):
                    raise ValueError(f'{where}: init is busybox or systemd, not {value!r}')
                self.init = value
            elif self.host.parse(key, value):
                pass
            else:
                raise ValueError(f'{where}: unknown key {key!r}')
        if not (self.kernels and self.kind and self.iommu):
            raise ValueError(f'{path}: kernels, kind and iommu are required')


def topology_lines(path, seen=()):
    """(where, key, value) of each `key: value` line; `include: FILE` (relative to the topology
    folder) stands for that file's lines, so that topologies can share their devices."""
    if path.name in seen:
        raise ValueError(f'{path}: included twice ({" -> ".join(seen)})')
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        key, sep, value = (s.strip() for s in line.partition(':'))
        if not sep or not value:
            raise ValueError(f'{path}:{number}: expected "key: value"')
        if key == 'include':
            yield from topology_lines(path.parent / value, (*seen, path.name))
        else:
            yield f'{path}:{number}', key, value


class HostKeys:
    """The topology keys of a realistic host:

    disk: ID,SIZE                  a sparse raw image of SIZE (e.g. 2G, 64M) made in the work
                                   folder, as the block node ID (`drive=ID` of a -device); it
                                   lives as long as the QEMU process, so it survives reboots
    scenarios: PATTERN ...         the scenarios this topology runs, in this order (fnmatch
                                   patterns over names relative to scenarios/, such as
                                   `hypervisor/*`); without it: every scenario at the top level
    reboot: yes                    QEMU runs without -no-reboot: a scenario may reboot the guest,
                                   and after the reboot the scenarios that have not finished run
    scenario-timeout: SECONDS      the time each scenario has (default SCENARIO_TIMEOUT)
    """

    SIZE = re.compile(r'^(\d+)([KMG]?)$')

    def __init__(self):
        self.disks, self.scenarios, self.reboot, self.scenario_timeout = [], None, False, None

    def parse(self, key, value):
        """Takes one key; False when it is not one of these."""
        if key == 'disk':
            disk_id, _, size = value.partition(',')
            match = self.SIZE.match(size.strip())
            if not (disk_id.strip() and match):
                raise ValueError(f'disk: expected ID,SIZE, got {value!r}')
            scale = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[match[2]]
            self.disks.append((disk_id.strip(), int(match[1]) * scale))
        elif key == 'scenarios':
            self.scenarios = (self.scenarios or []) + value.split()
        elif key == 'reboot':
            if value not in ('yes', 'no'):
                raise ValueError(f'reboot: expected yes or no, got {value!r}')
            self.reboot = value == 'yes'
        elif key == 'scenario-timeout':
            self.scenario_timeout = int(value)
        else:
            return False
        return True

    def select(self, available):
        """The scenarios to run, in order."""
        if self.scenarios is None:
            return [name for name in available if '/' not in name]
        chosen = []
        for pattern in self.scenarios:
            chosen += [n for n in available if fnmatch.fnmatchcase(n, pattern) and n not in chosen]
        if not chosen:
            raise ValueError(f'scenarios: {" ".join(self.scenarios)} match no scenario')
        return chosen

    def qemu_args(self, work):
        """Creates the disk images in work/disks; the -blockdev arguments for them."""
        args = []
        if self.disks:
            (work / 'disks').mkdir(exist_ok=True)
        for disk_id, size in self.disks:
            image = work / 'disks' / f'{disk_id}.img'
            with open(image, 'wb') as f:
                f.truncate(size)
            args += ['-blockdev', f'driver=file,node-name={disk_id}-file,filename={image}',
                     '-blockdev', f'driver=raw,node-name={disk_id},file={disk_id}-file']
        return args


def topologies():
    return sorted((Topology(p) for p in (VMDIR / 'topologies').glob('*.topo')),
                  key=lambda t: t.name)


def scenarios():
    """Every executable under scenarios/, by its path relative to it (`hypervisor/10-build`)."""
    root = VMDIR / 'scenarios'
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')
                  if p.is_file() and os.access(p, os.X_OK))


class Qmp:
    """A QMP client on QEMU's unix socket; events are ignored."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.stream = self.sock.makefile('rw')
        json.loads(self.stream.readline())  # greeting
        self.execute({'execute': 'qmp_capabilities'})

    def execute(self, command):
        self.stream.write(json.dumps(command) + '\n')
        self.stream.flush()
        while True:
            reply = json.loads(self.stream.readline())
            if 'event' not in reply:
                return reply


class QmpRelay:
    """Runs the QMP commands that guest scenarios ask for with guest/qmp: a request file
    results/qmp/ID.req is answered with results/qmp/ID.resp."""

    def __init__(self, results, qmp_socket):
        self.requests, self.qmp_socket, self.qmp = results / 'qmp', qmp_socket, None

    def serve(self):
        for request in sorted(self.requests.glob('*.req')):
            if self.qmp is None:
                self.qmp = Qmp(self.qmp_socket)
            try:
                reply = self.qmp.execute(json.loads(request.read_text()))
            except json.JSONDecodeError as e:
                reply = {'error': {'desc': f'request is not JSON: {e}'}}
            tmp = request.with_suffix('.tmp')
            tmp.write_text(json.dumps(reply) + '\n')
            tmp.rename(request.with_suffix('.resp'))
            request.unlink()


def qemu_argv(topo, kern, initrd, work):
    systemd = topo.init == 'systemd'
    append = ' '.join(['console=ttyS0', 'panic=-1', *topo.cmdline,
                       *(sdboot.kernel_cmdline() if systemd else [])])
    return [
        QEMU, '-nodefaults', '-display', 'none', *([] if topo.host.reboot else ['-no-reboot']),
        '-machine', topo.machine, '-accel', 'tcg,thread=multi', '-cpu', 'max',
        '-smp', '2', '-m', str(sdboot.MEMORY_MB if systemd else 1024),
        '-kernel', str(kern.vmlinuz), '-initrd', str(initrd), '-append', append,
        '-serial', f'file:{work / "console.log"}',
        '-qmp', f'unix:{work / "qmp.sock"},server=on,wait=off',
        '-device', topo.iommu,
        *topo.host.qemu_args(work),
        *topo.qemu_args,
        '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
        '-virtfs', f'local,path={work / "results"},mount_tag=results,security_model=none,'
                   'multidevs=remap',
    ]


def write_params(path, values):
    path.write_text(''.join(f'export {k}={shlex.quote(str(v))}\n' for k, v in values.items()))


def early_panic(work):
    """The panic line when the guest's kernel died before any scenario started, else None."""
    try:
        console = (work / 'console.log').read_text(errors='replace')
    except OSError:
        return None
    if 'vmtest: scenario' in console:
        return None
    return next((line.strip() for line in console.splitlines() if 'Kernel panic' in line), None)


def boot(argv, work, results, log):
    """Run QEMU until the guest powers off; relay QMP requests meanwhile."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    relay = QmpRelay(results, work / 'qmp.sock')
    timed_out = False
    with open(work / 'qemu.log', 'w') as qemu_log:
        proc = subprocess.Popen(argv, stdout=qemu_log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None and not timed_out:
                relay.serve()
                time.sleep(0.2)
                timed_out = time.monotonic() > deadline
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if timed_out:
        log(f'guest did not power off within {BOOT_TIMEOUT} s; killed')
    elif proc.returncode != 0:
        log(f'{QEMU} exited {proc.returncode}: {(work / "qemu.log").read_text().strip()}')
    return proc.returncode == 0 and not timed_out


def build_initramfs(topo, kern, out):
    """The initramfs of the topology's kind of boot; params.sh values that its /init needs."""
    if topo.init == 'systemd':
        sdboot.build_initramfs(kern, topo.modules, VMDIR, out)
        return sdboot.params(kern)
    kernel.build_initramfs(kern, topo.modules + kernel.COMMON_MODULES, VMDIR / 'guest/init', out)
    return {}


def report_boot(results, log):
    """How a systemd boot went (guest/launch-scenarios wrote it)."""
    boot = results / 'boot'
    if boot.exists():
        lines = boot.read_text().splitlines()
        log('systemd: ' + ', '.join(lines) if lines else 'systemd: no boot record')


def report(names, results, log):
    """Print TAP for the scenarios; the names of those that failed."""
    print(f'1..{len(names)}')
    failed = []
    for i, name in enumerate(names, 1):
        rc_file = results / name / 'rc'
        rc = int(rc_file.read_text()) if rc_file.exists() else None
        out = results / name / 'log'
        text = out.read_text(errors='replace') if out.exists() else ''
        seconds = results / name / 'seconds'
        if seconds.exists():
            log(f'{name} ran {" + ".join(seconds.read_text().split())} s')
        if rc == 77:
            reason = text.strip().splitlines()[-1] if text.strip() else 'skipped'
            print(f'ok {i} - {name} # SKIP {reason}')
            continue
        passed = rc == 0
        if not passed:
            failed.append(name)
        print(f'{"ok" if passed else "not ok"} {i} - {name}')
        if not passed:
            log(f'{name}: ' + ('did not finish' if rc is None else f'exited {rc}'))
            for line in text.splitlines()[-60:]:
                log(f'  {line}')
    return failed


def install_fixture(results, failed, dest):
    """Unpack the fixture.tar (holding fixture/) that a passing scenario left, as dest."""
    tars = [t for t in results.rglob('fixture.tar')
            if str(t.parent.relative_to(results)) not in failed]
    if len(tars) != 1:
        print(f'Bail out! expected one passing scenario to leave a fixture.tar, found {len(tars)}')
        return False
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        kernel.run(['tar', '-C', tmp, '-xf', tars[0]])
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(Path(tmp) / 'fixture', dest)
    print(f'# installed {dest}')
    return True


def show_failure(work, kept, log):
    """Print the console log's tail; copy the work folder to kept (unless None)."""
    if (work / 'console.log').exists():
        log('console log (tail):')
        for line in (work / 'console.log').read_text(errors='replace').splitlines()[-40:]:
            log(f'  {line}')
    if kept:
        if kept.exists():
            shutil.rmtree(kept)
        shutil.copytree(work, kept, symlinks=True,
                        ignore=shutil.ignore_patterns('initrd', 'qmp.sock'))
        log(f'console log and results kept in {kept}')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('topology', nargs='?')
    ap.add_argument('kernel', nargs='?', help='kernel series: ' + ', '.join(kernel.METAPACKAGES))
    ap.add_argument('--list', action='store_true', help='print the topology/kernel pairs')
    ap.add_argument('--iommud', type=Path, help='the iommud binary to test')
    ap.add_argument('--source-dir', type=Path, help='the iommud source tree')
    ap.add_argument('--scenario', action='append',
                    help='run only this scenario (repeatable); default: all')
    ap.add_argument('--cache', type=Path,
                    default=Path(os.environ.get('IOMMUD_VM_CACHE', DEFAULT_CACHE)),
                    help=f'kernel cache (env IOMMUD_VM_CACHE, default {DEFAULT_CACHE})')
    ap.add_argument('--log-dir', type=Path,
                    help='where to keep the console log and results of a failed boot')
    ap.add_argument('--work-dir', type=Path, default=Path(tempfile.gettempdir()),
                    help='where to make the work folder (default: the temporary folder)')
    ap.add_argument('--keep', action='store_true', help='keep the work folder even on success')
    ap.add_argument('--update-fixtures', action='store_true',
                    help='install the captured tree into tests/fixtures/captured/')
    ap.add_argument('--deb', type=Path,
                    help='systemd topologies: the iommud .deb, or the folder holding it, for the '
                         'scenarios that install it (IOMMUD_DEB in the guest)')
    args = ap.parse_args()

    if args.list:
        for topo in topologies():
            for series in topo.kernels:
                print(topo.name, series)
        return 0
    if not (args.topology and args.kernel and args.iommud and args.source_dir):
        ap.error('TOPOLOGY, KERNEL, --iommud and --source-dir are required')

    def log(msg):
        print(f'# {msg}', flush=True)

    args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f'iommud-vm-{args.topology}-{args.kernel}-',
                                 dir=args.work_dir))
    try:
        topo = Topology(VMDIR / 'topologies' / f'{args.topology}.topo')
        if args.kernel not in topo.kernels:
            raise kernel.SetupError(f'{topo.name} does not boot on {args.kernel}')
        if shutil.which(QEMU) is None:
            raise kernel.SetupError(f'{QEMU} is not installed (apt-get install qemu-system-x86)')
        if not os.access(args.iommud, os.X_OK):
            raise kernel.SetupError(f'{args.iommud} is not an executable')
        for path in (args.iommud, VMDIR):
            if path.resolve().parts[1] in GUEST_TMPFS:
                raise kernel.SetupError(f'{path} is under /{path.resolve().parts[1]}, '
                                        'which the guest covers with a tmpfs')
        names = args.scenario or topo.host.select(scenarios())
        unknown = set(names) - set(scenarios())
        if unknown:
            raise kernel.SetupError(f'no such scenario: {" ".join(sorted(unknown))}')
        deb = sdboot.find_deb(args.deb) if topo.init == 'systemd' and args.deb else None
        kern = kernel.fetch(args.kernel, args.cache)
        log(f'{topo.name} on {kern.release} ({topo.init}), scenarios: {" ".join(names)}')
        init_params = build_initramfs(topo, kern, work / 'initrd')
    except (kernel.SetupError, ValueError, OSError) as e:
        print(f'Bail out! {e}')
        shutil.rmtree(work)
        return 1

    results = work / 'results'
    results.mkdir()
    write_params(results / 'params.sh', {
        'VMDIR': VMDIR,
        'SOURCE_DIR': args.source_dir.resolve(),
        'IOMMUD': args.iommud.resolve(),
        'TOPOLOGY': topo.name,
        'KERNEL_SERIES': args.kernel,
        'IOMMU_KIND': topo.kind,
        'HOTPLUG_PORTS': ' '.join(topo.hotplug_ports),
        'EXPECT_GROUPS': ';'.join(' '.join(g) for g in topo.expect_groups),
        'SCENARIOS': ' '.join(names),
        'SCENARIO_TIMEOUT': topo.host.scenario_timeout or SCENARIO_TIMEOUT,
        'IOMMUD_VM_CORRUPT': os.environ.get('IOMMUD_VM_CORRUPT', ''),
        'GUEST_INIT': topo.init,
        'IOMMUD_DEB': deb or '',
        **init_params,
    })
    argv = qemu_argv(topo, kern, work / 'initrd', work)
    (work / 'qemu-cmdline').write_text(shlex.join(argv) + '\n')
    started = time.monotonic()
    booted = boot(argv, work, results, log)
    panic = early_panic(work)
    if panic:
        # Once more, in a fresh guest: under multi-threaded TCG the kernel's own code patching has
        # been seen to trip over itself before any scenario ran (an int3 Oops in enqueue_timer 1 s
        # into the boot). The first console log is kept beside the second.
        log(f'the kernel panicked before any scenario started ({panic}); booting once more')
        (work / 'console.log').rename(work / 'console-first-boot.log')
        params = (results / 'params.sh').read_bytes()
        shutil.rmtree(results)
        results.mkdir()
        (results / 'params.sh').write_bytes(params)
        booted = boot(argv, work, results, log)
    report_boot(results, log)
    failed = report(names, results, log)
    passed = booted and not failed
    log(f'guest ran {time.monotonic() - started:.0f} s')

    if booted and args.update_fixtures:
        passed &= install_fixture(results, failed, args.source_dir / 'tests/fixtures/captured' /
                                  f'{topo.name}-{args.kernel}')
    if not passed:
        show_failure(work, args.log_dir and args.log_dir / f'{topo.name}-{args.kernel}', log)
    if args.keep:
        log(f'work folder kept: {work}')
    else:
        shutil.rmtree(work)
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
