#!/usr/bin/env python3
"""The operation history: `iommuctl history` against the real daemon on a fixture host.

Operations of every ending (dry run, done, refused) are listed newest first with who asked (the login
uid and sudo's user of the calling process), kept across a restart with ids that go on, filtered by
group and count, as a table and as JSON. A daemon killed in the middle of an operation (the
IOMMUD_FAULT_AFTER_STEP test hook: SIGKILL right after step 1) leaves an entry that the next start
closes as rolled back, with the host as it was; a start line with no intent record behind it ends
as interrupted.

Needs: IOMMUD, IOMMUCTL, IOMMUD_SOURCE_ROOT.
"""
import json
import os
import time
import unittest

import observe_common as oc

LOGINUID = 1000


def as_person():
    """Runs in the client's child process: a login session's uid, as pam_loginuid sets it."""
    try:
        with open('/proc/self/loginuid', 'w') as f:
            f.write(str(LOGINUID))
    except OSError:
        pass  # without CAP_AUDIT_CONTROL; the test then expects no loginuid


def loginuid_settable():
    import subprocess
    r = subprocess.run(['cat', '/proc/self/loginuid'], preexec_fn=as_person, capture_output=True, text=True)
    return r.stdout.strip() == str(LOGINUID)


class HistoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not oc.IOMMUD or not oc.IOMMUCTL:
            raise unittest.SkipTest('IOMMUD / IOMMUCTL not set')
        cls.tmp = oc.tmpdir('iommud-history-')
        cls.root = oc.make_tree(cls.tmp)
        cls.daemon = oc.Daemon(cls.tmp, 'iommud', cls.root, '--admin=unix:*')

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        oc.rmtree(cls.tmp)

    def ctl(self, *args, ok=True, person=False):
        import subprocess
        env = dict(os.environ, SUDO_USER='alice', SUDO_UID=str(LOGINUID)) if person else None
        r = subprocess.run([oc.IOMMUCTL, '--socket', self.daemon.socket] + list(args), capture_output=True,
                           text=True, timeout=60, env=env, preexec_fn=as_person if person else None)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def history(self, *args):
        return json.loads(self.ctl('--json', 'history', *args).stdout)

    def override(self):
        with open(os.path.join(self.root, 'sys/bus/pci/devices', oc.FREE_DEVICE, 'driver_override')) as f:
            return f.read().strip()

    def test_history(self):
        d = self.daemon
        d.start()
        group = str(oc.FREE_GROUP)
        self.ctl('block', group, '--dry-run', person=True)
        self.ctl('block', group, person=True)
        self.assertNotEqual(self.ctl('release', group, ok=False).returncode, 0)
        self.ctl('unblock', group)

        h = self.history()
        self.assertEqual([(e['operation'], e['result'], e['dry_run']) for e in h],
                         [('UnblockGroup', 'done', False), ('ReleaseGroup', 'refused', False),
                          ('BlockGroup', 'done', False), ('BlockGroup', 'dry-run', True)])
        ids = [e['operation_id'] for e in h]
        self.assertEqual(ids, sorted(ids, reverse=True))
        block = h[2]
        self.assertEqual(block['group'], oc.FREE_GROUP)
        self.assertEqual(block['steps'], [f'set driver_override of {oc.FREE_DEVICE} to none'])
        self.assertGreater(block['duration_usec'], 0)
        self.assertLess(abs(block['started_unix_usec'] / 1e6 - time.time()), 120)
        # The person behind the call, not just uid 0.
        self.assertIn('sudo_user=alice', block['peer'])
        if loginuid_settable():
            self.assertIn(f'loginuid={LOGINUID}', block['peer'])
        self.assertIn('was not prepared by iommud', h[1]['message'])

        # Table: a row per entry, the reason of the refusal below it.
        out = self.ctl('history').stdout
        self.assertRegex(out.splitlines()[0], r'^ID\s+STARTED\s+OPERATION\s+GROUP\s+RESULT\s+TIME\s+WHO')
        self.assertIn('BlockGroup (dry run)', out)
        self.assertIn('refused', out)
        self.assertIn('was not prepared by iommud', out)

        # After a restart: still there, and new ids are above the old ones (ids are reserved in
        # blocks, so a restart may skip some; it never reuses one).
        d.stop()
        d.start()
        self.ctl('block', group, '--dry-run')
        h = self.history()
        self.assertEqual(len(h), 5)
        self.assertGreater(h[0]['operation_id'], max(ids))
        self.assertEqual([e['operation_id'] for e in self.history('-n', '2')], [h[0]['operation_id'], h[1]['operation_id']])
        self.assertEqual(self.history('--group', '4'), [])
        self.assertEqual(len(self.history('--group', group)), 5)

        # A crash during an operation: the daemon kills itself after step 1 of the block.
        d.stop()
        d.env = {'IOMMUD_FAULT_AFTER_STEP': '1'}
        d.start()
        r = self.ctl('block', group, ok=False)
        self.assertNotEqual(r.returncode, 0)
        d.proc.wait(timeout=20)
        self.assertEqual(d.proc.returncode, -9)
        self.assertEqual(self.override(), 'none')  # step 1 was done when it died
        d.env = None
        d.start()
        crashed = self.history('-n', '1')[0]
        self.assertEqual((crashed['operation'], crashed['result']), ('BlockGroup', 'rolled-back-after-crash'))
        self.assertIn('undone at the next start', crashed['message'])
        self.assertIn(self.override(), ('', '(null)'))  # no override, as before the block (a fixture shows a clear as empty)
        self.assertEqual(os.listdir(os.path.join(d.run, 'journal')), [])

        # A start whose end never came and no intent record: interrupted.
        d.stop()
        with open(os.path.join(d.state, 'history.jsonl'), 'a') as f:
            f.write(json.dumps({'event': 'start', 'id': 999, 'time_usec': int(time.time() * 1e6),
                                'operation': 'PrepareGroup', 'group': 4, 'peer': 'test', 'steps': []}) + '\n')
        d.start()
        e = self.history('--group', '4')[0]
        self.assertEqual((e['operation_id'], e['result']), (999, 'interrupted'))
        self.ctl('block', group, '--dry-run')
        self.assertEqual(self.history('-n', '1')[0]['operation_id'], 1000)


if __name__ == '__main__':
    unittest.main(verbosity=2)
