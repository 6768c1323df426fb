#!/usr/bin/env python3
"""iommuctl against the real iommud on a fixture host tree.

Every verb runs over the Unix socket; --json output must equal the matching part of `iommud --dump`
on the same tree, so the client's proto -> JSON mapping (client/proto-json.c) cannot drift from the
daemon's (daemon/host/inventory.c). The exit codes of iommuctl(1) come from a bad argument (2), a
daemon that grants no role (3), a missing group (4), a check that refuses (5) and a missing socket
(6); watch sees a driver unbind after a rescan; and a remote call goes over mutual TLS, where a wrong
CA must fail clearly.

The operator conventions: `iommuctl` alone, VERB --help, --no-legend, --color and NO_COLOR, the
pager on a terminal (a pseudo-terminal here), IOMMUD_SOCKET, "--" and negative numbers, the group
filters (checked against the dump), escaped server strings, tree and graph (rendered by Graphviz's
dot and checked structurally against the dump on every captured host), and bash completion.

Needs: IOMMUD and IOMMUCTL (the binaries), IOMMUD_SOURCE_ROOT; openssl and dot (graphviz) on PATH.
IOMMUCTL_TEST_LARGE=1 adds the synthetic-4096 host (multi-MB answers; slow to generate).
"""
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

IOMMUD = os.environ.get('IOMMUD')
IOMMUCTL = os.environ.get('IOMMUCTL')
SOURCE_ROOT = os.environ.get('IOMMUD_SOURCE_ROOT', '.')
COMPLETION = os.environ.get('IOMMUCTL_COMPLETION', os.path.join(SOURCE_ROOT, 'client/iommuctl.bash'))
FIXTURE = 'desktop-gpu'


TMP = None
DUMP = None
DAEMONS = []


def gen_tree(name):
    root = os.path.join(TMP, name)
    subprocess.run([sys.executable, os.path.join(SOURCE_ROOT, 'tests/fixtures/gen-host.py'),
                    os.path.join(SOURCE_ROOT, 'tests/fixtures/hosts', FIXTURE + '.json'), root],
                   check=True, stdout=subprocess.DEVNULL)
    return root


def start_daemon(name, root, *flags, socket_path=None, wait_tcp=None):
    state = os.path.join(TMP, name + '-state')
    os.makedirs(state, exist_ok=True)
    log = open(os.path.join(TMP, name + '.log'), 'w')
    args = [IOMMUD, '--root', root, '--udev=no', '--rescan-interval=0',
            '--runtime-directory=' + os.path.join(state, 'run'),
            '--state-directory=' + os.path.join(state, 'lib'),
            '--unix-socket=' + (socket_path or '')] + list(flags)
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    DAEMONS.append(p)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f'iommud {name} exited with {p.returncode}: ' +
                               open(os.path.join(TMP, name + '.log')).read())
        try:
            if socket_path:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(socket_path)
            else:
                socket.create_connection(wait_tcp, timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f'iommud {name} did not start listening')


def stop_daemon(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def ctl(*args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([IOMMUCTL] + list(args), capture_output=True, text=True, timeout=timeout, env=e)

# What only a daemon knows of a group (core's status): the dump, which reads the host alone, has none
# of it, and type_change.allowed there is what the kernel takes as things are, while the daemon lists
# what iommud can change the type to. Everything else of the one mapping must be equal.
STATUS_KEYS = ('state', 'owner', 'users', 'host_uses', 'findings')


def kernel_view(g):
    g = {k: v for k, v in g.items() if k not in STATUS_KEYS}
    g['type_change'] = {k: v for k, v in g['type_change'].items() if k not in ('allowed', 'verdicts')}
    return g


def kernel_views(groups):
    return [kernel_view(g) for g in groups]


def ctl_on_tty(*args, env=None, unset=(), timeout=30):
    """Runs iommuctl with its standard output on a pseudo-terminal, 100 columns wide; returns
    (exit status, what reached the terminal, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    for name in unset:
        e.pop(name, None)
    master, slave = pty.openpty()
    subprocess.run(['stty', 'cols', '100', 'rows', '40'], stdin=slave, check=True)
    p = subprocess.Popen([IOMMUCTL] + list(args), stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b''
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    p.wait(timeout=max(1, deadline - time.monotonic()))
    err = p.stderr.read().decode()
    p.stderr.close()
    return p.returncode, out.decode(errors='replace').replace('\r\n', '\n'), err


def setUpModule():
    global TMP, DUMP
    if not IOMMUD or not IOMMUCTL:
        raise unittest.SkipTest('IOMMUD / IOMMUCTL not set')
    TMP = tempfile.mkdtemp(prefix='iommuctl-test-')
    try:
        root = gen_tree('host')
        DUMP = json.loads(subprocess.run([IOMMUD, '--dump', '--compact', '--root', root], check=True,
                                         capture_output=True, text=True).stdout)
        Local.socket = os.path.join(TMP, 'iommud.sock')
        start_daemon('local', root, '--reader=unix:*', '--operator=unix:*', socket_path=Local.socket)
    except BaseException:
        tearDownModule()  # unittest skips it when setUpModule fails
        raise


def tearDownModule():
    for p in DAEMONS:
        stop_daemon(p)
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class Local(unittest.TestCase):
    socket = None

    def run_ok(self, *args):
        r = ctl('--socket', self.socket, *args)
        self.assertEqual(r.returncode, 0, f'iommuctl {" ".join(args)}: {r.stderr}')
        self.assertNotIn('\033[', r.stdout, 'colour on a pipe')
        return r.stdout

    def json_of(self, *args):
        return json.loads(self.run_ok('--json', *args))

    # ---- --json equals the dump --------------------------------------------------------------

    def test_groups_json_equals_dump(self):
        groups = self.json_of('groups')
        self.assertEqual(kernel_views(groups), kernel_views(DUMP['groups']))
        self.assertTrue(all(g['state'] == 'host' and 'verdicts' in g['type_change'] for g in groups),
                        'the daemon adds its status to every group')

    def test_group_json_equals_dump(self):
        for g in DUMP['groups']:
            with self.subTest(group=g['id']):
                self.assertEqual(kernel_view(self.json_of('group', str(g['id']))), kernel_view(g))

    def test_device_json_equals_dump(self):
        for d in DUMP['devices']:
            with self.subTest(device=d['address']):
                self.assertEqual(self.json_of('device', d['address']), d)

    def test_devices_json_equals_dump(self):
        self.assertEqual(self.json_of('devices'), DUMP['devices'])

    def test_units_json_equals_dump(self):
        self.assertEqual(self.json_of('units'), DUMP['units'])

    def test_status_json_equals_dump(self):
        status = self.json_of('status')
        self.assertEqual(status['host'], DUMP['host'])
        self.assertEqual(status['units'], DUMP['units'])
        self.assertEqual(status['group_count'], len(DUMP['groups']))
        self.assertEqual(status['device_count'], len(DUMP['devices']))

    # ---- tables for people -------------------------------------------------------------------

    def test_groups_table(self):
        out = self.run_ok('groups')
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:7], ['GROUP', 'TYPE', 'STATE', 'VIABLE', 'OWNER', 'ADDRESS', 'CLASS'])
        for text in ('NVIDIA Corporation', 'GA102 [GeForce RTX 3090]', 'snd_hda_intel', '0000:01:00.1',
                     'Samsung Electronics'):
            self.assertIn(text, out)
        # one row per device, then the legend
        self.assertEqual(lines[-2:], ['', f'{len(DUMP["groups"])} groups with {len(DUMP["devices"])} devices listed.'])
        self.assertEqual(len(lines) - 3, len(DUMP['devices']))
        # each group's first row: its id, type, state, viability and owner (none has one here)
        for g in DUMP['groups']:
            row = next(line.split() for line in lines[1:] if line.split() and line.split()[0] == str(g['id']))
            self.assertEqual(row[1:5], [g['type'], 'host', 'yes' if g['viable'] else 'no', '-'])

    def test_group_detail(self):
        out = self.run_ok('group', '1')
        self.assertIn('Group 1', out)
        self.assertIn('not viable', out)
        self.assertIn('snd_hda_intel', out)
        self.assertIn('0x00000000fee00000', out)

    def test_device_detail(self):
        out = self.run_ok('device', '01:00.0')
        self.assertIn('0000:01:00.0', out)
        self.assertIn('GA102 [GeForce RTX 3090]', out)
        self.assertIn('10de:2204', out)

    def test_units_status_devices_tables(self):
        self.assertIn('dmar1', self.run_ok('units'))
        self.assertIn('intel-vtd', self.run_ok('units'))
        self.assertIn('6.8.0-49-generic', self.run_ok('status'))
        self.assertIn('Cannon Lake PCH SATA AHCI Controller', self.run_ok('devices'))

    def test_help(self):
        r = ctl('--help')
        self.assertEqual(r.returncode, 0)
        for text in ('groups', 'watch', '--json', '--host', 'Exit status', 'Examples'):
            self.assertIn(text, r.stdout)

    # ---- exit codes ----------------------------------------------------------------------------

    def test_missing_group_exits_4(self):
        r = ctl('--socket', self.socket, 'group', '999')
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn('999', r.stderr)

    def test_missing_device_exits_4(self):
        r = ctl('--socket', self.socket, 'device', '0000:7f:1f.7')
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn('0000:7f:1f.7', r.stderr)

    def test_bad_arguments_exit_2(self):
        for args in (['device', 'zz'], ['device', '0000:01:00.8'], ['group', '-1'], ['group', 'x'],
                     ['group'], ['frobnicate'], ['--timeout', 'soon', 'groups'], ['--frobnicate'],
                     ['groups', 'extra'], ['--color=sometimes'], ['--viable=maybe', 'groups'],
                     ['--state', 'asleep', 'groups'], ['--type', 'dma', 'groups']):
            with self.subTest(args=args):
                r = ctl('--socket', self.socket, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), 'no message')
        self.assertIn('not a PCI address', ctl('--socket', self.socket, 'device', 'zz').stderr)

    def test_no_daemon_exits_6(self):
        r = ctl('--socket', '/nonexistent/iommud.sock', 'groups')
        self.assertEqual(r.returncode, 6)
        self.assertIn('/nonexistent/iommud.sock', r.stderr)
        self.assertIn('not running', r.stderr)

    def test_rescan(self):
        r = self.json_of('rescan')
        self.assertEqual(r['changes'], 0)


    # ---- operations (dry runs: a fixture tree has no kernel behind it) and policy -------------------

    def test_prepare_dry_run(self):
        out = self.run_ok('prepare', '01:00.0', '--dry-run')
        self.assertIn('dry run: nothing was changed', out)
        self.assertIn('set driver_override of 0000:01:00.0 to vfio-pci', out)
        self.assertIn('unbind 0000:01:00.1 from snd_hda_intel', out)
        result = self.json_of('prepare', '1', '--dry-run')
        self.assertTrue(result['dry_run'])
        self.assertIn('wait for /dev/vfio/1', result['steps'])
        self.assertEqual(result['group']['devices'], DUMP['groups'][1]['devices'])

    def test_operation_refusals(self):
        r = ctl('--socket', self.socket, 'set-type', '1', 'DMA', '--dry-run')
        self.assertEqual(r.returncode, 3, r.stderr)  # operator, not admin
        self.assertIn('SetDomainType needs the admin role', r.stderr)
        r = ctl('--socket', self.socket, 'release', '1')
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn('was not prepared by iommud', r.stderr)
        for args in (['set-type', '1', 'dma'], ['set-type', 'x', 'DMA'], ['block', '01:00.0'], ['prepare', 'zz']):
            r = ctl('--socket', self.socket, *args)
            self.assertEqual(r.returncode, 2, f'{args}: {r.stderr}')

    def test_plan_without_rules(self):
        self.assertIn('asks for nothing', self.run_ok('plan'))
        plan = self.json_of('plan')
        self.assertEqual(plan['conflicts'], [])
        self.assertTrue(all(step['action'] == 'none' for step in plan['steps']))

    def test_policy_check_names_file_and_line(self):
        good = os.path.join(TMP, 'good.conf')
        bad = os.path.join(TMP, 'bad.conf')
        with open(good, 'w') as f:
            f.write('[Match]\nVendor=10de\n[Policy]\nDomainType=identity\n')
        with open(bad, 'w') as f:
            f.write('[Match]\nVendor=nvidia\n[Policy]\nDomainType=fast\nColour=red\n')
        r = ctl('policy', 'check', good)  # offline: no --socket, no daemon
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = ctl('policy', 'check', good, bad)
        self.assertEqual(r.returncode, 1)
        for line in (2, 4, 5):
            self.assertIn(f'{bad}:{line}: ', r.stdout)
        self.assertNotIn(good, r.stdout)


SGR = re.compile(r'\x1b\[[0-9;]*m')


def fake_program(name, record):
    """An executable that writes its arguments, $LESS and its standard input into 'record'."""
    path = os.path.join(TMP, name)
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\n{{ echo "argv: $*"; echo "LESS=$LESS"; cat; }} > {record}\n')
    os.chmod(path, 0o755)
    return path


def read_gone(path):
    """The file's contents, removing it; None when it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None
    finally:
        if os.path.exists(path):
            os.unlink(path)


class Conventions(unittest.TestCase):
    """The operator conventions (issue 13), each with its documented exit code."""

    def ctl(self, *args, **kw):
        return ctl('--socket', Local.socket, *args, **kw)

    def test_alone_shows_status_and_groups(self):
        r = ctl(env={'IOMMUD_SOCKET': Local.socket})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn('Kernel:', r.stdout)
        self.assertIn(f'Groups:            {len(DUMP["groups"])}', r.stdout)
        header = lines.index(next(line for line in lines if line.startswith('GROUP')))
        self.assertEqual(lines[header].split(), ['GROUP', 'TYPE', 'STATE', 'VIABLE', 'OWNER', 'DEVICES'])
        rows = lines[header + 1:-2]
        self.assertEqual([int(row.split()[0]) for row in rows], [g['id'] for g in DUMP['groups']])
        for g, row in zip(DUMP['groups'], rows):
            for address in g['devices']:
                self.assertIn(address, row)
        self.assertEqual(lines[-1], f'{len(DUMP["groups"])} groups listed.')
        # --json alone is status --json
        alone = ctl('--json', env={'IOMMUD_SOCKET': Local.socket})
        self.assertEqual(json.loads(alone.stdout), json.loads(self.ctl('--json', 'status').stdout))

    def test_iommud_socket(self):
        missing = os.path.join(TMP, 'missing.sock')
        r = ctl('groups', env={'IOMMUD_SOCKET': missing})
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn(missing, r.stderr)
        self.assertEqual(ctl('--json', 'groups', env={'IOMMUD_SOCKET': Local.socket}).returncode, 0)
        # --socket wins over the environment
        self.assertEqual(self.ctl('groups', env={'IOMMUD_SOCKET': missing}).returncode, 0)

    VERBS = {'status': '--state', 'units': '--no-legend', 'groups': '--viable', 'group': '--json', 'devices': '--json',
             'device': '--json', 'tree': None, 'graph': None, 'watch': '--snapshot', 'rescan': '--json',
             'set-type': '--force', 'prepare': '--owner', 'release': '--dry-run', 'block': '--force',
             'unblock': '--dry-run', 'plan': '--json', 'apply': '--dry-run', 'policy': None, 'history': '--group'}

    def test_verb_help(self):
        no_daemon = {'IOMMUD_SOCKET': os.path.join(TMP, 'missing.sock')}  # help needs none
        for verb, option in self.VERBS.items():
            for args in ([verb, '--help'], ['--help', verb], [verb, '-h']):
                with self.subTest(args=args):
                    r = ctl(*args, env=no_daemon)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertTrue(r.stdout.startswith(f'Usage: iommuctl [OPTIONS] {verb}'), r.stdout)
                    self.assertIn('--socket', r.stdout)
                    if option:
                        self.assertIn(option, r.stdout)
        # a verb's help lists its options, not the others'
        self.assertNotIn('--snapshot', ctl('group', '--help').stdout)
        self.assertNotIn('--viable', ctl('tree', '--help').stdout)
        out = ctl('--help').stdout
        for verb in self.VERBS:
            self.assertRegex(out, rf'(?m)^  {verb}\b')
        r = ctl('frobnicate', '--help')
        self.assertEqual(r.returncode, 2)

    def test_option_not_for_verb(self):
        for args in (['tree', '--viable'], ['group', '1', '--snapshot'], ['watch', '--no-legend'],
                     ['devices', '--type', 'DMA'], ['history', '--dry-run'], ['device', '01:00.0', '-n', '2']):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn('does not apply to', r.stderr)

    def test_negative_numbers_and_double_dash(self):
        for args in (['group', '-1'], ['--', 'group', '-1'], ['group', '--', '-1'], ['set-type', '-3', 'DMA'],
                     ['block', '-2'], ['prepare', '-7']):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("'-", r.stderr)
                self.assertRegex(r.stderr, 'not a group number|neither a group number')
                self.assertNotIn('invalid option', r.stderr)
        r = self.ctl('group', '--', '1')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('Group 1', r.stdout)
        r = self.ctl('-n', '-5', 'history')
        self.assertEqual(r.returncode, 2)
        self.assertIn('-n wants a number', r.stderr)
        # options may follow the verb and its argument; after "--" they are arguments
        self.assertEqual(json.loads(self.ctl('group', '1', '--json').stdout)['id'], 1)
        r = self.ctl('group', '--', '--json')
        self.assertEqual(r.returncode, 2)
        self.assertIn("'--json' is not a group number", r.stderr)

    def test_no_legend(self):
        n_groups, n_devices = len(DUMP['groups']), len(DUMP['devices'])
        for args, rows in ((['groups'], n_devices), (['devices'], n_devices), (['units'], len(DUMP['units']))):
            with self.subTest(args=args):
                lines = self.ctl(*args).stdout.splitlines()
                self.assertRegex(lines[0], r'^[A-Z]+  ')
                self.assertTrue(lines[-1].endswith(' listed.'), lines[-1])
                self.assertEqual(len(lines), rows + 3)
                bare = self.ctl('--no-legend', *args).stdout.splitlines()
                self.assertEqual(len(bare), rows)
                self.assertEqual([line.split()[:1] for line in bare], [line.split()[:1] for line in lines[1:-2]])
                self.assertNotRegex(bare[0], r'^[A-Z]+  ')
        bare = self.ctl('--no-legend').stdout.split('\n\n')
        self.assertEqual(len(bare[1].splitlines()), n_groups)
        self.assertFalse(bare[1].startswith('GROUP'))
        # JSON has no legend to drop
        self.assertEqual(self.ctl('--no-legend', '--json', 'groups').stdout, self.ctl('--json', 'groups').stdout)

    def test_color(self):
        def colored(text):
            return '\033[' in text
        self.assertTrue(colored(self.ctl('--color=always', 'groups').stdout))
        self.assertTrue(colored(self.ctl('--color', 'groups').stdout))
        self.assertFalse(colored(self.ctl('--color=never', 'groups').stdout))
        self.assertFalse(colored(self.ctl('--color=auto', 'groups').stdout))  # a pipe
        # the command line beats NO_COLOR
        self.assertTrue(colored(self.ctl('--color=always', 'groups', env={'NO_COLOR': '1'}).stdout))
        on_tty = ['--socket', Local.socket, '--no-pager', 'groups']
        self.assertTrue(colored(ctl_on_tty(*on_tty, unset=('NO_COLOR',), env={'TERM': 'xterm'})[1]))
        self.assertFalse(colored(ctl_on_tty(*on_tty, env={'NO_COLOR': '1', 'TERM': 'xterm'})[1]))
        self.assertFalse(colored(ctl_on_tty(*on_tty, unset=('NO_COLOR',), env={'TERM': 'dumb'})[1]))
        self.assertFalse(colored(ctl_on_tty('--color=never', *on_tty, unset=('NO_COLOR',))[1]))

    def test_pager(self):
        record = os.path.join(TMP, 'pager-record')
        pager = fake_program('fake-pager', record)
        other = fake_program('other-pager', record + '-other')
        args = ['--socket', Local.socket, 'groups']
        quiet = {'TERM': 'xterm'}

        # on a terminal the output goes to $PAGER, and only there
        rc, tty, _ = ctl_on_tty(*args, env={'PAGER': pager, **quiet}, unset=('SYSTEMD_PAGER',))
        self.assertEqual(rc, 0)
        paged = read_gone(record)
        self.assertIsNotNone(paged, 'no pager started on a terminal')
        self.assertIn('0000:01:00.1', paged)
        self.assertNotIn('0000:01:00.1', tty)
        # JSON too, as systemctl does
        self.assertEqual(ctl_on_tty('--json', *args, env={'PAGER': pager}, unset=('SYSTEMD_PAGER',))[0], 0)
        self.assertIn('"viable"', read_gone(record) or '')
        # $SYSTEMD_PAGER before $PAGER
        ctl_on_tty(*args, env={'PAGER': pager, 'SYSTEMD_PAGER': other})
        self.assertIsNone(read_gone(record))
        self.assertIn('0000:01:00.1', read_gone(record + '-other') or '')
        # --no-pager, a pipe, PAGER=cat or empty: no pager
        rc, tty, _ = ctl_on_tty('--no-pager', *args, env={'PAGER': pager}, unset=('SYSTEMD_PAGER',))
        self.assertEqual(rc, 0)
        self.assertIn('0000:01:00.1', tty)
        self.assertEqual(ctl(*args, env={'PAGER': pager}).returncode, 0)
        for value in ('cat', ''):
            rc, tty, _ = ctl_on_tty(*args, env={'PAGER': value}, unset=('SYSTEMD_PAGER',))
            self.assertIn('0000:01:00.1', tty)
        self.assertIsNone(read_gone(record))
        # the default: less with LESS=FRSXMK (or $SYSTEMD_LESS), found on $PATH
        bin_dir = os.path.join(TMP, 'fake-bin')
        os.makedirs(bin_dir, exist_ok=True)
        shutil.copy(pager, os.path.join(bin_dir, 'less'))
        path = {'PATH': bin_dir + ':' + os.environ['PATH']}
        ctl_on_tty(*args, env=path, unset=('PAGER', 'SYSTEMD_PAGER', 'LESS', 'SYSTEMD_LESS'))
        paged = read_gone(record)
        self.assertIn('LESS=FRSXMK\n', paged or '')
        self.assertIn('0000:01:00.1', paged)
        ctl_on_tty(*args, env={**path, 'SYSTEMD_LESS': 'FR'}, unset=('PAGER', 'SYSTEMD_PAGER'))
        self.assertIn('LESS=FR\n', read_gone(record) or '')
        # quitting the pager before the end is no error: more than a pipe holds (the SR-IOV host's
        # devices), into a pager that reads nothing, makes every write after its end fail with EPIPE
        root = os.path.join(TMP, 'pager-sriov')
        subprocess.run([sys.executable, os.path.join(SOURCE_ROOT, 'tests/fixtures/gen-host.py'),
                        os.path.join(SOURCE_ROOT, 'tests/fixtures/hosts/server-sriov.json'), root],
                       check=True, stdout=subprocess.DEVNULL)
        sock = os.path.join(TMP, 'pager-sriov.sock')
        p = start_daemon('pager-sriov', root, '--reader=unix:*', socket_path=sock)
        try:
            self.assertGreater(len(ctl('--socket', sock, '--json', 'devices').stdout), 65536 + 4096)
            rc, _, err = ctl_on_tty('--socket', sock, '--json', 'devices', env={'PAGER': 'true'})
            self.assertEqual((rc, err), (0, ''))
        finally:
            stop_daemon(p)
        # never for watch; nor when the call fails (the error is on stderr, exit 4)
        rc, tty, _ = ctl_on_tty('--socket', Local.socket, 'watch', '--snapshot', '--timeout', '1',
                                env={'PAGER': pager})
        self.assertIn('snapshot', tty)
        rc, tty, err = ctl_on_tty('--socket', Local.socket, 'group', '999', env={'PAGER': pager})
        self.assertEqual(rc, 4)
        self.assertIn('999', err)
        self.assertIsNone(read_gone(record))

    def test_exit_codes(self):
        """Every code of iommuctl(1)'s EXIT STATUS, from the case it names."""
        with open(os.path.join(SOURCE_ROOT, 'docs/iommuctl.1.scd')) as f:
            page = f.read()
        section = page.split('# EXIT STATUS')[1].split('\n# ')[0]
        self.assertEqual(re.findall(r'(?m)^\*(\d)\*$', section), [str(i) for i in range(7)])

        self.assertEqual(self.ctl('groups').returncode, 0)
        self.assertEqual(self.ctl('--frobnicate').returncode, 2)                    # usage
        self.assertEqual(self.ctl('groups', '--type', 'dma').returncode, 2)         # the daemon: invalid
        self.assertEqual(self.ctl('set-type', '1', 'DMA', '--dry-run').returncode, 3)  # needs admin
        self.assertEqual(self.ctl('group', '999').returncode, 4)                    # not found
        self.assertEqual(ctl('--socket', os.path.join(TMP, 'none.sock'), 'groups').returncode, 6)
        # refused by a check: a group whose network link the host uses
        nic = next(d for d in DUMP['devices'] if d['net_interfaces'])
        r = self.ctl('prepare', str(nic['group']), '--dry-run')
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn('in use by the host', r.stderr)
        # and by the policy: a group it marks critical (an admin may force it, but nobody asked)
        policy = os.path.join(TMP, 'critical-policy')
        os.makedirs(policy, exist_ok=True)
        with open(os.path.join(policy, '10-gpu.conf'), 'w') as f:
            f.write('[Match]\nVendor=10de\n[Policy]\nCritical=yes\n')
        sock = os.path.join(TMP, 'critical.sock')
        p = start_daemon('critical', gen_tree('critical-host'), '--reader=unix:*', '--operator=unix:*',
                         '--policy-directory=' + policy, socket_path=sock)
        try:
            r = ctl('--socket', sock, 'prepare', '01:00.0', '--dry-run')
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn('is critical', r.stderr)
        finally:
            stop_daemon(p)

    def test_filters(self):
        devices = {d['address']: d for d in DUMP['devices']}

        def members(g):
            return [devices[a] for a in g['devices'] if a in devices]

        def any_member(g, test):
            return any(test(d) for d in members(g))

        cases = [
            (['--viable'], lambda g: g['viable']),
            (['--viable=no'], lambda g: not g['viable']),
            (['--viable=yes'], lambda g: g['viable']),
            (['--driver', 'nvme'], lambda g: any_member(g, lambda d: d['driver'] == 'nvme')),
            (['--driver', 'none'], lambda g: any_member(g, lambda d: d['driver'] is None)),
            (['--driver', 'nvme', '--driver', 'snd_hda_intel'],
             lambda g: any_member(g, lambda d: d['driver'] in ('nvme', 'snd_hda_intel'))),
            (['--vendor', '10de'], lambda g: any_member(g, lambda d: d['vendor_id'] == '10de')),
            (['--vendor', 'nvidia'], lambda g: any_member(g, lambda d: 'nvidia' in (d['vendor_name'] or '').lower())),
            (['--class', '03'], lambda g: any_member(g, lambda d: d['class'].startswith('03'))),
            (['--class', '0403'], lambda g: any_member(g, lambda d: d['class'].startswith('0403'))),
            # the desktop's groups are all identity
            (['--type', 'DMA'], lambda g: g['type'] == 'DMA'),
            (['--type', 'identity', '--type', 'DMA'], lambda g: g['type'] in ('identity', 'DMA')),
            (['--viable=no', '--driver', 'none'], lambda g: not g['viable'] and any_member(g, lambda d: d['driver'] is None)),
        ]
        all_ids = [g['id'] for g in DUMP['groups']]
        for args, want in cases:
            with self.subTest(args=args):
                expected = [g for g in DUMP['groups'] if want(g)]
                r = self.ctl('--json', 'groups', *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual([g['id'] for g in json.loads(r.stdout)], [g['id'] for g in expected])
                # the table and status show the same groups
                rows = self.ctl('--no-legend', 'groups', *args).stdout.splitlines()
                self.assertEqual([int(row.split()[0]) for row in rows if not row.startswith(' ')],
                                 [g['id'] for g in expected])
                status = self.ctl('--no-legend', 'status', *args).stdout.split('\n\n')[1]
                self.assertEqual([int(row.split()[0]) for row in status.splitlines()], [g['id'] for g in expected])
        # the fixture makes every filter above choose some groups and leave others
        self.assertTrue(all(0 < len([g for g in DUMP['groups'] if want(g)]) < len(all_ids)
                            for args, want in cases if '--type' not in args))

    def test_state_filter(self):
        states = {int(row.split()[0]): row.split()[2]
                  for row in self.ctl('--no-legend', 'groups').stdout.splitlines() if not row.startswith(' ')}
        for state in ('host', 'in_use', 'in-use', 'failed'):
            with self.subTest(state=state):
                r = self.ctl('--json', 'groups', '--state', state)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual([g['id'] for g in json.loads(r.stdout)],
                                 [i for i, s in states.items() if s == state.replace('-', '_')])

    def test_history_formats(self):
        nic = next(d for d in DUMP['devices'] if not d['net_interfaces'] and d['group'] is not None)
        self.assertEqual(self.ctl('prepare', str(nic['group']), '--dry-run').returncode, 0)
        entries = json.loads(self.ctl('--json', 'history').stdout)
        self.assertGreater(len(entries), 0)
        lines = self.ctl('history').stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ['ID', 'STARTED', 'OPERATION'])
        self.assertEqual(lines[-1], f'{len(entries)} operation{"s" if len(entries) > 1 else ""} listed.')
        bare = self.ctl('--no-legend', 'history').stdout.splitlines()
        self.assertEqual([line.split()[0] for line in bare if not line.startswith(' ')],
                         [str(e['operation_id']) for e in entries])
        self.assertEqual(len(json.loads(self.ctl('--json', 'history', '-n', '1').stdout)), 1)


class Sanitized(unittest.TestCase):
    """A driver name with terminal controls in it (ESC, BEL, an OSC that would retitle the window)."""
    EVIL = 'snd\x1b[31mevil\x07\x1b]0;owned\x07'
    SHOWN = r'snd\x1b[31mevil\x07\x1b]0;owned\x07'

    @classmethod
    def setUpClass(cls):
        root = gen_tree('evil-host')
        os.makedirs(os.path.join(root, 'sys/bus/pci/drivers', cls.EVIL))
        link = os.path.join(root, 'sys', next(d for d in DUMP['devices'] if d['address'] == '0000:01:00.1')['sysfs_path'],
                            'driver')
        os.unlink(link)
        os.symlink('../../../../bus/pci/drivers/' + cls.EVIL, link)
        cls.socket = os.path.join(TMP, 'evil.sock')
        cls.daemon = start_daemon('evil', root, '--reader=unix:*', socket_path=cls.socket)

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.daemon)

    def test_text_escaped(self):
        for args in (['groups'], ['group', '1'], ['device', '01:00.1'], ['devices'], ['tree'], ['status'],
                     ['graph']):
            with self.subTest(args=args):
                r = ctl('--socket', self.socket, *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn('\x1b', r.stdout)
                self.assertNotIn('\x07', r.stdout)
                if args != ['status']:  # its one-line members show names, not drivers
                    self.assertIn(self.SHOWN.replace('\\', '\\\\') if args == ['graph'] else self.SHOWN, r.stdout)
        # on a terminal, with colour: no ESC but those of our own colours
        rc, tty, _ = ctl_on_tty('--socket', self.socket, '--no-pager', '--color=always', 'group', '1')
        self.assertEqual(rc, 0)
        self.assertIn(self.SHOWN, tty)
        self.assertNotIn('\x1b', SGR.sub('', tty))
        self.assertNotIn('\x07', tty)

    def test_json_keeps_the_value(self):
        r = ctl('--socket', self.socket, '--json', 'device', '01:00.1')
        self.assertEqual(json.loads(r.stdout)['driver'], self.EVIL)
        self.assertNotIn('\x1b', r.stdout)  # JSON escapes it itself

    def test_graph_renders(self):
        r = ctl('--socket', self.socket, 'graph')
        svg = subprocess.run(['dot', '-Tsvg'], input=r.stdout, capture_output=True, text=True)
        self.assertEqual(svg.returncode, 0, svg.stderr)


class GroupDetail(unittest.TestCase):
    """What core says of a group beyond the kernel's files, as iommuctl shows it: host uses, the
    type-change verdicts, and a group the kernel shows without members."""

    @classmethod
    def setUpClass(cls):
        root = gen_tree('detail-host')
        os.makedirs(os.path.join(root, 'sys/kernel/iommu_groups/42/devices'))
        with open(os.path.join(root, 'sys/kernel/iommu_groups/42/type'), 'w') as f:
            f.write('DMA\n')
        cls.socket = os.path.join(TMP, 'detail.sock')
        cls.daemon = start_daemon('detail', root, '--reader=unix:*', socket_path=cls.socket)

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.daemon)

    def ctl(self, *args):
        r = ctl('--socket', self.socket, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_host_uses_and_verdicts(self):
        nic = next(d for d in DUMP['devices'] if d['net_interfaces'])
        out = self.ctl('group', str(nic['group']))
        self.assertRegex(out, r'(?m)^  Host uses: .*' + re.escape(nic['net_interfaces'][0]))
        verdicts = out.split('Domain type change:')[1]
        for t in ('identity', 'DMA', 'DMA-FQ', 'auto'):
            self.assertRegex(verdicts, rf'(?m)^  {t}: ')
        self.assertIn('the group has this type already', verdicts)

    def test_empty_group(self):
        out = self.ctl('group', '42')
        self.assertIn('Empty: the kernel shows the group without a PCI member', out)
        row = next(line for line in self.ctl('--no-legend', 'groups').splitlines() if line.startswith('42 '))
        self.assertEqual(row.split()[:6], ['42', 'DMA', 'host', 'yes', '-', '(empty)'])
        self.assertIn('(empty)', next(line for line in self.ctl('--no-legend').split('\n\n')[1].splitlines()
                                      if line.startswith('42 ')))
        self.assertIn('[no PCI member] [group 42: DMA, viable', self.ctl('tree'))
        laid = json.loads(subprocess.run(['dot', '-Tjson'], input=self.ctl('graph'), capture_output=True, text=True,
                                         check=True).stdout)
        cluster = next(o for o in laid['objects'] if o['name'] == 'cluster_group_42')
        self.assertEqual([laid['objects'][i]['label'] for i in cluster['nodes']], ['no PCI member'])


def parent_depth(devices, address):
    depth = 0
    while devices[address]['parent'] in devices:
        address = devices[address]['parent']
        depth += 1
    return depth


class Topology(unittest.TestCase):
    """tree and graph on the desktop fixture and every captured host, checked against the dump."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which('dot'):
            raise unittest.SkipTest('no dot (graphviz)')

    def hosts(self):
        yield 'desktop', gen_tree('topology-desktop')
        captured = os.path.join(SOURCE_ROOT, 'tests/fixtures/captured')
        for name in sorted(os.listdir(captured)):
            yield name, os.path.join(captured, name)

    def each_host(self, check):
        for name, root in self.hosts():
            with self.subTest(host=name):
                dump = json.loads(subprocess.run([IOMMUD, '--dump', '--compact', '--root', root], check=True,
                                                 capture_output=True, text=True).stdout)
                sock = os.path.join(TMP, f'topology-{name}.sock')
                p = start_daemon(f'topology-{name}', root, '--reader=unix:*', socket_path=sock)
                try:
                    check(sock, dump)
                finally:
                    stop_daemon(p)

    def test_tree(self):
        def check(sock, dump):
            devices = {d['address']: d for d in dump['devices']}
            groups = {g['id']: g for g in dump['groups']}
            r = ctl('--socket', sock, 'tree', env={'LC_ALL': 'C.UTF-8'})
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            seen = []
            for line in lines:
                m = re.match(r'^((?:│  |   )*)(├─|└─) ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])  (.*)$', line)
                if not m:
                    self.assertRegex(line, r'^\[[0-9a-f]{4}:[0-9a-f]{2}\]$')
                    continue
                address, rest = m.group(3), m.group(4)
                d = devices[address]
                seen.append(address)
                self.assertEqual(len(m.group(1)) // 3, parent_depth(devices, address), line)
                self.assertIn(f'({d["driver"] or "no driver"})', rest)
                if d['group'] is None:
                    self.assertTrue(rest.endswith('[no IOMMU group]'), line)
                    continue
                g = groups[d['group']]
                self.assertIn(f'[group {g["id"]}: {g["type"]}, {"viable" if g["viable"] else "not viable"}', rest)
            self.assertEqual(sorted(seen), sorted(devices))
            # a child's line comes below its parent's, before the parent's next sibling
            for address, d in devices.items():
                if d['parent'] in devices:
                    self.assertLess(seen.index(d['parent']), seen.index(address))
            # ASCII outside a UTF-8 locale
            ascii_tree = ctl('--socket', sock, 'tree', env={'LC_ALL': 'C'}).stdout
            self.assertNotIn('├', ascii_tree)
            self.assertEqual(len(re.findall(r'(?m)^[ |]*[|`]- ', ascii_tree)), len(devices))
        self.each_host(check)

    def test_graph(self):
        def check(sock, dump):
            r = ctl('--socket', sock, 'graph')
            self.assertEqual(r.returncode, 0, r.stderr)
            svg = subprocess.run(['dot', '-Tsvg'], input=r.stdout, capture_output=True, text=True)
            self.assertEqual(svg.returncode, 0, svg.stderr)
            self.assertIn('<svg', svg.stdout)
            laid = subprocess.run(['dot', '-Tjson'], input=r.stdout, capture_output=True, text=True)
            self.assertEqual(laid.returncode, 0, laid.stderr)
            graph = json.loads(laid.stdout)
            objects = graph['objects']
            clusters = {o['name']: o for o in objects if o['name'].startswith('cluster_group_')}
            self.assertEqual(sorted(clusters), sorted(f'cluster_group_{g["id"]}' for g in dump['groups']))
            for g in dump['groups']:
                c = clusters[f'cluster_group_{g["id"]}']
                self.assertEqual(sorted(objects[i]['name'] for i in c.get('nodes', [])), sorted(g['devices']))
                self.assertEqual(c['color'], '#1e8449' if g['viable'] else '#c0392b')
                self.assertIn(f'group {g["id"]} · {g["type"]}', c['label'])
            # one edge from each device's bridge, or its root bus, to it
            names = {o['_gvid']: o['name'] for o in objects if 'nodes' not in o}
            edges = sorted((names[e['tail']], names[e['head']]) for e in graph['edges'])
            devices = {d['address'] for d in dump['devices']}
            self.assertEqual(edges, sorted((d['parent'] if d['parent'] in devices else 'bus ' + d['address'][:7],
                                            d['address']) for d in dump['devices']))
        self.each_host(check)

    def test_readme_picture(self):
        """docs/host-graph.svg is `iommuctl graph | dot -Tsvg` of the captured host the README names:
        every group a cluster with its members, every device a node, and the command is stated."""
        host = 'tests/fixtures/captured/hypervisor-6.12'
        with open(os.path.join(SOURCE_ROOT, 'README.md')) as f:
            readme = f.read()
        self.assertIn('![iommuctl graph of ' + host + '](docs/host-graph.svg)', readme)
        self.assertIn('build/daemon/iommud --root ' + host, readme)
        self.assertIn('build/client/iommuctl graph | dot -Tsvg > docs/host-graph.svg', readme)
        dump = json.loads(subprocess.run([IOMMUD, '--dump', '--compact', '--root', os.path.join(SOURCE_ROOT, host)],
                                         check=True, capture_output=True, text=True).stdout)
        with open(os.path.join(SOURCE_ROOT, 'docs/host-graph.svg')) as f:
            svg = f.read()
        self.assertIn('<svg', svg)
        titles = re.findall(r'<g id="(node|clust)\d+" class="(?:node|cluster)">\s*<title>([^<]*)</title>', svg)
        self.assertEqual(sorted(t for kind, t in titles if kind == 'clust'),
                         sorted(['cluster_legend'] + [f'cluster_group_{g["id"]}' for g in dump['groups']]))
        nodes = {t for kind, t in titles if kind == 'node'}
        self.assertTrue({d['address'] for d in dump['devices']} <= nodes)


class Completion(unittest.TestCase):
    """The bash completion (client/iommuctl.bash) with bash-completion, against the local daemon."""

    def complete(self, *words, socket_path=None):
        """The candidates bash offers for the last word of: iommuctl --socket S WORDS..."""
        line = [IOMMUCTL, '--socket', socket_path or Local.socket, *words]
        # bash splits "--color=al" into three words; the line keeps it whole
        script = (f'source /usr/share/bash-completion/bash_completion && source {COMPLETION} && '
                  'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_LINE=${COMP_LINE// = /=}; '
                  'COMP_LINE=${COMP_LINE% =}; [[ ${COMP_WORDS[-1]} == = ]] && COMP_LINE+="="; '
                  'COMP_POINT=${#COMP_LINE}; _iommuctl; printf "%s\\n" "${COMPREPLY[@]}"')
        out = subprocess.run(['bash', '-c', script, 'bash', *line], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return sorted(filter(None, out.stdout.splitlines()))

    def test_verbs_and_options(self):
        self.assertEqual(self.complete('gr'), ['graph', 'group', 'groups'])
        self.assertEqual(self.complete('t'), ['tree'])
        self.assertEqual(self.complete('hi'), ['history'])
        self.assertEqual(sorted(self.complete('')), sorted(Conventions.VERBS))
        self.assertIn('--dry-run', self.complete('--d'))
        self.assertEqual(self.complete('set-type', '1', 'D'), ['DMA', 'DMA-FQ'])
        self.assertEqual(self.complete('policy', ''), ['check'])
        # every option of --help is offered
        offered = self.complete('-')
        for option in re.findall(r'(?m)^  (-[-a-z]+)', ctl('--help').stdout):
            self.assertTrue(option in offered or option + '=' in offered, option)

    def test_option_values(self):
        self.assertEqual(self.complete('--color', '=', ''), ['always', 'auto', 'never'])
        self.assertEqual(self.complete('--color', '=', 'n'), ['never'])
        self.assertEqual(self.complete('groups', '--viable', '=', ''), ['no', 'yes'])
        # without '=' the next word is the verb again: no values of --color or --viable
        self.assertEqual(self.complete('--color', 'gr'), ['graph', 'group', 'groups'])
        self.assertEqual(self.complete('--viable', 'gro'), ['group', 'groups'])
        self.assertEqual(self.complete('groups', '--state', 'in'), ['in_use'])
        self.assertEqual(self.complete('groups', '--type', 'DMA'), ['DMA', 'DMA-FQ'])
        drivers = sorted({d['driver'] for d in DUMP['devices'] if d['driver']} | {'none'})
        self.assertEqual(self.complete('groups', '--driver', ''), drivers)
        self.assertEqual(self.complete('history', '--group', ''), sorted(str(g['id']) for g in DUMP['groups']))
        # after "--" every word is an argument: the verb's first
        self.assertEqual(self.complete('--', 'gro'), ['group', 'groups'])

    def test_groups_and_addresses_from_the_daemon(self):
        groups = sorted(str(g['id']) for g in DUMP['groups'])
        addresses = sorted(d['address'] for d in DUMP['devices'])
        self.assertEqual(self.complete('group', ''), groups)
        self.assertEqual(self.complete('device', ''), addresses)
        self.assertEqual(self.complete('prepare', ''), sorted(groups + addresses))
        # bash splits words at ':'; the candidates continue the part after the last one.
        first = addresses[0]
        self.assertEqual(self.complete('device', first[:9]),
                         sorted(a[len(first[:8]):] for a in addresses if a.startswith(first[:9])))

    def test_no_daemon_no_candidates(self):
        self.assertEqual(self.complete('group', '', socket_path=os.path.join(TMP, 'nowhere.sock')), [])


class EveryHost(unittest.TestCase):
    """The lists on every fixture and captured host: broken files, SR-IOV, AMD, IOMMU off, 4096
    devices, real kernels. Each of them exercises fields the desktop does not."""

    def check_host(self, name, root):
        dump = json.loads(subprocess.run([IOMMUD, '--dump', '--compact', '--root', root], check=True,
                                         capture_output=True, text=True).stdout)
        sock = os.path.join(TMP, name + '.sock')
        p = start_daemon(name, root, '--reader=unix:*', socket_path=sock)
        try:
            def get(*args):
                r = ctl('--socket', sock, '--json', *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                return json.loads(r.stdout)
            self.assertEqual(kernel_views(get('groups')), kernel_views(dump['groups']))
            self.assertEqual(get('devices'), dump['devices'])
            self.assertEqual(get('units'), dump['units'])
            self.assertEqual(get('status')['host'], dump['host'])
        finally:
            stop_daemon(p)

    def test_fixture_hosts(self):
        hosts = os.path.join(SOURCE_ROOT, 'tests/fixtures/hosts')
        for f in sorted(os.listdir(hosts)):
            name = f.removesuffix('.json')
            # Its tree takes most of a minute to generate; dump-fixtures covers it, and a run by
            # hand showed iommuctl's multi-MB answers for it equal to the dump.
            if name == 'synthetic-4096' and not os.environ.get('IOMMUCTL_TEST_LARGE'):
                continue
            with self.subTest(host=name):
                root = os.path.join(TMP, 'every-' + name)
                subprocess.run([sys.executable, os.path.join(SOURCE_ROOT, 'tests/fixtures/gen-host.py'),
                                os.path.join(hosts, f), root], check=True, stdout=subprocess.DEVNULL)
                self.check_host('every-' + name, root)

    def test_captured_hosts(self):
        captured = os.path.join(SOURCE_ROOT, 'tests/fixtures/captured')
        for name in sorted(os.listdir(captured)):
            with self.subTest(host=name):
                self.check_host('captured-' + name, os.path.join(captured, name))


class Denied(unittest.TestCase):
    def test_no_role_exits_3(self):
        sock = os.path.join(TMP, 'denied.sock')
        p = start_daemon('denied', gen_tree('denied-host'), '--reader=', '--operator=', '--admin=uid:12345',
                         socket_path=sock)
        try:
            for verb in (['groups'], ['status'], ['group', '1'], ['rescan']):
                with self.subTest(verb=verb):
                    r = ctl('--socket', sock, *verb)
                    self.assertEqual(r.returncode, 3, r.stderr)
                    self.assertIn('permission denied', r.stderr)
        finally:
            stop_daemon(p)


class Watch(unittest.TestCase):
    @staticmethod
    def spawn(*args):
        """Starts iommuctl with a thread feeding its output lines into a queue (select() on a
        buffered pipe would miss lines already read into the buffer)."""
        proc = subprocess.Popen([IOMMUCTL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        proc.lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                proc.lines.put(line)
            proc.lines.put(None)
        threading.Thread(target=pump, daemon=True).start()
        return proc

    def read_line(self, proc, timeout=10):
        try:
            line = proc.lines.get(timeout=timeout)
        except queue.Empty:
            self.fail('no event from watch')
        if line is None:
            self.fail('watch ended: ' + proc.stderr.read())
        return line

    def test_watch_sees_unbind(self):
        root = gen_tree('watch-host')
        sock = os.path.join(TMP, 'watch.sock')
        p = start_daemon('watch', root, '--reader=unix:*', '--operator=unix:*', socket_path=sock)
        w = self.spawn('--socket', sock, '--json', 'watch', '--snapshot')
        people = self.spawn('--socket', sock, 'watch', '--snapshot')
        try:
            first = json.loads(self.read_line(w))
            self.assertEqual(first['event'], 'snapshot')
            self.assertEqual(first['snapshot']['group_count'], len(DUMP['groups']))
            self.assertIn('snapshot', self.read_line(people))

            audio = next(d for d in DUMP['devices'] if d['address'] == '0000:01:00.1')
            os.unlink(os.path.join(root, 'sys', audio['sysfs_path'], 'driver'))
            r = ctl('--socket', sock, 'rescan')
            self.assertEqual(r.returncode, 0, r.stderr)

            while True:
                ev = json.loads(self.read_line(w))
                if ev['event'] == 'driver_changed':
                    break
            self.assertEqual(ev['address'], '0000:01:00.1')
            self.assertEqual(ev['old_driver'], 'snd_hda_intel')
            self.assertIsNone(ev['new_driver'])
            self.assertIsNone(ev['device']['driver'])
            while 'driver_changed' not in (line := self.read_line(people)):
                pass
            self.assertIn('0000:01:00.1', line)
            self.assertIn('snd_hda_intel -> -', line)
            self.assertTrue(line.rstrip().endswith('(a rescan of the host)'), line)
            # the group's status changed too (its type-change verdicts), with the cause
            while 'changed:' not in (line := self.read_line(people)):
                pass
            self.assertRegex(line, r'group 1  host -> host  changed: [a-z_, ]+  \(a rescan of the host\)$')

            # Ctrl-C and SIGTERM end a watch cleanly.
            w.send_signal(signal.SIGTERM)
            people.send_signal(signal.SIGINT)
            self.assertEqual(w.wait(timeout=10), 0, w.stderr.read())
            self.assertEqual(people.wait(timeout=10), 0, people.stderr.read())
        finally:
            for proc in (w, people):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
            stop_daemon(p)


def openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, cwd=TMP, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_cert(name, ca, subject, ext):
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.csr', '-subj', subject)
    with open(os.path.join(TMP, name + '.ext'), 'w') as f:
        f.write(ext)
    openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.crt', '-CAkey', ca + '.key', '-CAcreateserial',
            '-days', '2', '-out', name + '.crt', '-extfile', name + '.ext')


def make_ca(name):
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.crt', '-days', '2', '-subj', '/CN=' + name)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which('openssl'):
            raise unittest.SkipTest('no openssl')
        make_ca('ca')
        make_ca('other-ca')
        make_cert('server', 'ca', '/CN=iommud-test',
                  'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
        make_cert('client', 'ca', '/CN=admin1', 'extendedKeyUsage=clientAuth\n')
        cls.port = free_port()
        cls.daemon = start_daemon('tls', gen_tree('tls-host'), f'--listen-tls=127.0.0.1:{cls.port}',
                                  '--tls-certificate=' + os.path.join(TMP, 'server.crt'),
                                  '--tls-key=' + os.path.join(TMP, 'server.key'),
                                  '--tls-client-ca=' + os.path.join(TMP, 'ca.crt'),
                                  '--admin=cn:admin1', wait_tcp=('127.0.0.1', cls.port))

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.daemon)

    def tls_args(self, ca='ca', host=None):
        return ['--host', host or f'127.0.0.1:{self.port}', '--ca', os.path.join(TMP, ca + '.crt'),
                '--cert', os.path.join(TMP, 'client.crt'), '--key', os.path.join(TMP, 'client.key')]

    def test_groups_over_tls(self):
        r = ctl(*self.tls_args(), '--json', 'groups')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(kernel_views(json.loads(r.stdout)), kernel_views(DUMP['groups']))

    def test_by_host_name(self):
        r = ctl(*self.tls_args(host=f'localhost:{self.port}'), 'group', '1')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('GA102', r.stdout)

    def test_wrong_ca_fails_clearly(self):
        r = ctl(*self.tls_args(ca='other-ca'), 'groups')
        self.assertEqual(r.returncode, 6)
        self.assertIn('certificate', r.stderr)
        self.assertIn('127.0.0.1', r.stderr)

    def test_no_client_certificate_fails(self):
        r = ctl('--host', f'127.0.0.1:{self.port}', '--ca', os.path.join(TMP, 'ca.crt'), 'groups')
        self.assertIn(r.returncode, (3, 6), r.stderr)
        self.assertTrue(r.stderr.strip())

    def test_connection_refused(self):
        r = ctl('--host', f'127.0.0.1:{free_port()}', '--ca', os.path.join(TMP, 'ca.crt'), 'groups')
        self.assertEqual(r.returncode, 6)
        self.assertIn('refused', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
