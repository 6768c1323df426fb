#!/usr/bin/env python3
"""iommud's journal fields, checked in a private systemd-journald.

The test re-runs itself in a private mount namespace (unshare -m) with tmpfs on /run/systemd and
/run/log, starts Debian's systemd-journald there (volatile storage, no kernel log, no forwarding) and
connects iommud's stderr to journald's stdout stream exactly as systemd does for a service: the
stream header, then $JOURNAL_STREAM naming the socket's device and inode. iommud then logs through
the native protocol. After a dry run, a real operation and a refusal on group 5 of a fixture host,
`journalctl IOMMUD_GROUP=5 -o json` must show the group's story with MESSAGE_ID, IOMMUD_GROUP,
IOMMUD_OPERATION, IOMMUD_PEER (naming sudo's user) and PRIORITY; the catalog
(systemd/iommud.catalog) must compile with journalctl --update-catalog and explain every MESSAGE_ID
the daemon defines; and without $JOURNAL_STREAM the same daemon writes priority-prefixed lines to
stderr.

Needs root (mount namespaces), /lib/systemd/systemd-journald and journalctl; IOMMUD, IOMMUCTL,
IOMMUD_SOURCE_ROOT.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

import observe_common as oc

JOURNALD = '/lib/systemd/systemd-journald'
INSIDE = 'IOMMUD_TEST_JOURNAL_NAMESPACE'


def message_ids():
    """The IDs daemon/util/log-ids.h defines: name -> id."""
    with open(os.path.join(oc.SOURCE_ROOT, 'daemon/util/log-ids.h')) as f:
        return dict(re.findall(r'#define LOG_ID_(\w+) "([0-9a-f]{32})"', f.read()))


class JournalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not oc.IOMMUD or not oc.IOMMUCTL:
            raise unittest.SkipTest('IOMMUD / IOMMUCTL not set')
        cls.tmp = oc.tmpdir('iommud-journal-')
        for d in ('/run/systemd', '/run/log'):
            os.makedirs(d, exist_ok=True)
            subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', d], check=True)
        os.makedirs('/run/systemd/journal')
        os.makedirs('/run/systemd/journald.conf.d')
        with open('/run/systemd/journald.conf.d/test.conf', 'w') as f:
            f.write('[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToWall=no\n'
                    'ForwardToConsole=no\nForwardToKMsg=no\nRateLimitBurst=0\n')
        cls.journald = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not os.path.exists('/run/systemd/journal/stdout'):
            if time.monotonic() > deadline or cls.journald.poll() is not None:
                raise RuntimeError('systemd-journald did not start')
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.journald.terminate()
        cls.journald.wait(timeout=10)
        oc.rmtree(cls.tmp)

    def stream(self, identifier):
        """A journald stdout stream, set up as systemd sets one up for a service's stderr."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect('/run/systemd/journal/stdout')
        s.shutdown(socket.SHUT_RD)
        # identifier, unit id, priority, level prefix, forward to syslog, kmsg, console
        s.sendall(f'{identifier}\n\n6\n1\n0\n0\n0\n'.encode())
        st = os.fstat(s.fileno())
        return s, f'{st.st_dev}:{st.st_ino}'

    def journal(self, *matches):
        subprocess.run(['journalctl', '--flush'], capture_output=True)
        out = subprocess.run(['journalctl', '-D', '/run/log/journal', '-o', 'json', '--no-pager'] + list(matches),
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def test_a_fields(self):
        ids = message_ids()
        sock, stream = self.stream('iommud')
        d = oc.Daemon(self.tmp, 'journal', oc.make_tree(self.tmp), '--admin=unix:*',
                      env={'JOURNAL_STREAM': stream}, stderr=sock.fileno())
        d.start()
        env = {'SUDO_USER': 'alice'}
        group = str(oc.FREE_GROUP)
        for args in (('block', group, '--dry-run'), ('block', group)):
            r = d.ctl(*args, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(d.ctl('release', group, env=env).returncode, 0)
        d.stop()
        sock.close()

        ready = self.journal('MESSAGE_ID=' + ids['READY'])
        self.assertEqual(len(ready), 1, 'one READY entry')
        self.assertIn('logging to journal', ready[0]['MESSAGE'])
        self.assertEqual(ready[0]['SYSLOG_IDENTIFIER'], 'iommud')
        self.assertEqual(ready[0]['PRIORITY'], '6')

        story = self.journal('IOMMUD_GROUP=' + group)
        by_id = {}
        for e in story:
            by_id.setdefault(e.get('MESSAGE_ID'), []).append(e)
        for name in ('OPERATION_DRY_RUN', 'OPERATION_STARTED', 'OPERATION_DONE', 'OPERATION_REFUSED'):
            self.assertIn(ids[name], by_id, f'{name} in journalctl IOMMUD_GROUP={group}: {story}')
        started, done = by_id[ids['OPERATION_STARTED']][0], by_id[ids['OPERATION_DONE']][0]
        self.assertEqual(started['IOMMUD_OPERATION'], done['IOMMUD_OPERATION'])
        self.assertEqual(done['IOMMUD_GROUP'], group)
        self.assertIn('sudo_user=alice', done['IOMMUD_PEER'])
        self.assertIn('BlockGroup', done['MESSAGE'])
        refused = by_id[ids['OPERATION_REFUSED']][0]
        self.assertEqual(refused['PRIORITY'], '5')
        self.assertIn('was not prepared by iommud', refused['MESSAGE'])
        self.assertEqual(done['CODE_FILE'].split('/')[-1], 'operations.c')
        # Every entry of the group's story came through the native protocol, none through the stream.
        self.assertTrue(all('_TRANSPORT' in e and e['_TRANSPORT'] == 'journal' for e in story))

    def test_b_catalog(self):
        ids = message_ids()
        root = os.path.join(self.tmp, 'catalog-root')
        os.makedirs(os.path.join(root, 'usr/lib/systemd/catalog'))
        shutil.copy(os.path.join(oc.SOURCE_ROOT, 'systemd/iommud.catalog'),
                    os.path.join(root, 'usr/lib/systemd/catalog/iommud.catalog'))
        r = subprocess.run(['journalctl', '--root', root, '--update-catalog'], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), '', 'the catalog compiles without warnings')
        out = subprocess.run(['journalctl', '--root', root, '--list-catalog'] + list(ids.values()),
                             capture_output=True, text=True, check=True).stdout
        for name, mid in ids.items():
            self.assertIn(mid, out, f'{name} ({mid}) has a catalog entry')

    def test_c_stderr_without_journal(self):
        d = oc.Daemon(self.tmp, 'plain', oc.make_tree(self.tmp, 'plain-host'), '--admin=unix:*')
        d.start()
        d.ctl('block', str(oc.FREE_GROUP), '--dry-run')
        d.stop()
        log = d.log()
        self.assertRegex(log, r'(?m)^iommud: info: iommud \S+ ready: .* logging to stderr\.$')
        self.assertRegex(log, r'(?m)^iommud: info: Operation \d+ BlockGroup on group 5 .*dry run')


def main():
    if os.environ.get(INSIDE) != '1':
        if os.geteuid() != 0:
            print('not ok 1 - needs root for a private mount namespace and journald')
            return 1
        for tool in (JOURNALD, shutil.which('journalctl'), shutil.which('unshare')):
            if not tool or not os.access(tool, os.X_OK):
                print(f'not ok 1 - {tool or "journalctl/unshare"} is missing (package systemd, util-linux)')
                return 1
        env = dict(os.environ, **{INSIDE: '1'})
        return subprocess.run(['unshare', '--mount', '--propagation', 'private', sys.executable] + sys.argv,
                              env=env).returncode
    return 0 if unittest.main(verbosity=2, exit=False).result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
