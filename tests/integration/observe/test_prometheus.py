#!/usr/bin/env python3
"""Debian's real Prometheus server scrapes iommud's metrics endpoint on a fixture host.

iommud runs with --metrics-listen on a loopback port; prometheus (the Debian package) scrapes it
every second into a throw-away TSDB, listening on loopback only. Everything is checked through
Prometheus's HTTP query API (/api/v1/query), as a dashboard would see it: the target is up, the
groups and operation counters hold the expected values at the start, after a dry run, and after a
real operation (a block of the fixture's free group), and gRPC requests are counted by method and
status. The endpoint itself answers 404 elsewhere and 501 to POST.

Needs: IOMMUD, IOMMUCTL, IOMMUD_SOURCE_ROOT; /usr/bin/prometheus.
"""
import json
import os
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import observe_common as oc

PROMETHEUS = '/usr/bin/prometheus'


class Prometheus:
    def __init__(self, tmp, target):
        self.port = oc.free_tcp_port()
        self.dir = os.path.join(tmp, 'prometheus')
        os.makedirs(self.dir)
        config = os.path.join(self.dir, 'prometheus.yml')
        with open(config, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'
                    'scrape_configs:\n  - job_name: iommud\n    static_configs:\n'
                    f'      - targets: ["{target}"]\n')
        self.log = open(os.path.join(self.dir, 'log'), 'w')
        self.proc = subprocess.Popen([PROMETHEUS, '--config.file=' + config,
                                      '--storage.tsdb.path=' + os.path.join(self.dir, 'data'),
                                      f'--web.listen-address=127.0.0.1:{self.port}'],
                                     stdout=self.log, stderr=self.log)

    def api(self, path, **params):
        url = f'http://127.0.0.1:{self.port}/api/v1/{path}?' + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        if body.get('status') != 'success':
            raise RuntimeError(f'{path}: {body}')
        return body['data']

    def query(self, expr):
        """The instant vector of expr as {labels-without-__name__: float}."""
        result = self.api('query', query=expr)['result']
        return {tuple(sorted((k, v) for k, v in s['metric'].items() if k not in ('__name__', 'job', 'instance'))):
                float(s['value'][1]) for s in result}

    def scalar(self, expr):
        values = list(self.query(expr).values())
        return values[0] if len(values) == 1 else None

    def wait_up(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('prometheus exited: ' + open(self.log.name).read()[-2000:])
            try:
                targets = self.api('targets')['activeTargets']
                if targets and targets[0]['health'] == 'up':
                    return
            except (OSError, RuntimeError, KeyError, IndexError):
                pass
            time.sleep(0.2)
        raise RuntimeError('the iommud target never came up: ' + open(self.log.name).read()[-2000:])

    def wait_for(self, expr, expected, timeout=20):
        """Polls until expr is the single value expected (a new scrape may be needed)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(expr)
            if value == expected:
                return value
            time.sleep(0.25)
        return value

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not oc.IOMMUD or not oc.IOMMUCTL:
            raise unittest.SkipTest('IOMMUD / IOMMUCTL not set')
        if not os.access(PROMETHEUS, os.X_OK):
            raise AssertionError(f'{PROMETHEUS} is missing: install Debian\'s prometheus package (.ci/install-deps)')
        cls.tmp = oc.tmpdir('iommud-prometheus-')
        cls.metrics_port = oc.free_tcp_port()
        cls.daemon = oc.Daemon(cls.tmp, 'iommud', oc.make_tree(cls.tmp), '--admin=unix:*',
                               f'--metrics-listen=127.0.0.1:{cls.metrics_port}').start()
        cls.prom = Prometheus(cls.tmp, f'127.0.0.1:{cls.metrics_port}')
        try:
            cls.prom.wait_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.daemon.stop()
        oc.rmtree(cls.tmp)

    def ctl_ok(self, *args):
        r = self.daemon.ctl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_a_start(self):
        p = self.prom
        self.assertEqual(p.scalar('sum(iommud_groups)'), oc.N_GROUPS)
        self.assertEqual(p.scalar('iommud_devices'), 17)
        self.assertEqual(p.scalar('iommud_build_info'), 1)
        self.assertEqual(p.query('iommud_groups{state!="host"}'), {})
        self.assertEqual(p.scalar('sum(iommud_operations_total)'), 0)
        # Every kind and result is there from the start, at zero.
        kinds = {dict(k)['kind'] for k in p.query('iommud_operations_total')}
        self.assertEqual(kinds, {'SetDomainType', 'PrepareGroup', 'ReleaseGroup', 'BlockGroup', 'UnblockGroup'})
        self.assertIsNotNone(p.scalar('iommud_host_uses{kind="unknown"}'))
        self.assertGreater(p.scalar('process_resident_memory_bytes'), 0)

    def test_b_dry_run_then_operation(self):
        p = self.prom
        out = self.ctl_ok('block', str(oc.FREE_GROUP), '--dry-run')
        self.assertIn('dry run', out)
        self.assertEqual(p.wait_for('iommud_operations_total{kind="BlockGroup",result="dry-run"}', 1), 1)
        self.assertEqual(p.scalar('sum(iommud_operations_total)'), 1)
        # A dry run changes nothing: every group is still the host's.
        self.assertEqual(p.scalar('sum(iommud_groups{state="host"})'), oc.N_GROUPS)

        self.ctl_ok('block', str(oc.FREE_GROUP))
        self.assertEqual(p.wait_for('iommud_operations_total{kind="BlockGroup",result="done"}', 1), 1)
        self.assertEqual(p.scalar('sum(iommud_operations_total)'), 2)
        self.assertEqual(p.wait_for('sum(iommud_groups{state="blocked"})', 1), 1)
        self.assertEqual(p.scalar('sum(iommud_groups{state="host"})'), oc.N_GROUPS - 1)
        self.assertEqual(p.scalar('sum(iommud_groups)'), oc.N_GROUPS)
        # The operation that ran is in the duration histogram; the dry run is not.
        self.assertEqual(p.scalar('iommud_operation_duration_seconds_count{kind="BlockGroup"}'), 1)
        self.assertEqual(p.scalar('iommud_operation_duration_seconds_bucket{kind="BlockGroup",le="+Inf"}'), 1)
        self.assertEqual(p.scalar('iommud_grpc_requests_total{method="/iommud.v1.IommuManager/BlockGroup",'
                                  'code="OK"}'), 2)

    def test_c_refusal_and_status_codes(self):
        p = self.prom
        r = self.daemon.ctl('release', str(oc.FREE_GROUP))  # blocked, not prepared: nothing to give back
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(p.wait_for('iommud_operations_total{kind="ReleaseGroup",result="refused"}', 1), 1)
        self.assertEqual(p.scalar('iommud_grpc_requests_total{method="/iommud.v1.IommuManager/ReleaseGroup",'
                                  'code="NOT_FOUND"}'), 1)

    def test_d_http(self):
        base = f'http://127.0.0.1:{self.metrics_port}'
        with urllib.request.urlopen(base + '/metrics', timeout=5) as r:
            self.assertTrue(r.headers['Content-Type'].startswith('text/plain; version=0.0.4'))
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + '/', timeout=5)
        self.assertEqual(e.exception.code, 404)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(base + '/metrics', data=b'x', method='POST'), timeout=5)
        self.assertEqual(e.exception.code, 501)  # evhttp's answer to a method it does not allow


if __name__ == '__main__':
    unittest.main(verbosity=2)
