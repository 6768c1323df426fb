#!/usr/bin/python3
# The gRPC transport (daemon/grpc) against stock python3-grpcio, python3-h2 and raw sockets.
#
# Runs grpc-test-server (the real transport with IommuManager stubs) and checks what a stock client
# sees: health, reflection, mutual TLS, status codes, limits, malformed input and shutdown.
# Needs: GRPC_TEST_SERVER (the binary), IOMMUD_PROTO_DIR (proto/), /usr/bin/python3 with grpcio,
# grpc_tools, h2; openssl on PATH.
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

SERVER = os.environ.get('GRPC_TEST_SERVER')
PROTO_DIR = os.environ.get('IOMMUD_PROTO_DIR')

TMP = None
PB = {}  # generated modules


def setUpModule():
    global TMP
    if not SERVER or not PROTO_DIR:
        raise unittest.SkipTest('GRPC_TEST_SERVER / IOMMUD_PROTO_DIR not set')
    TMP = tempfile.mkdtemp(prefix='iommud-grpc-test-')
    generate_stubs()
    make_pki()


def tearDownModule():
    for p in Server.running:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout:
            p.stdout.close()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


# ---- stubs from our own protos ------------------------------------------------------------------

def generate_stubs():
    src = os.path.join(TMP, 'src')
    out = os.path.join(TMP, 'out')
    os.makedirs(out)
    # grpc/health/... would generate a top-level "grpc" package that shadows grpcio: rename dirs.
    copies = {
        'iommud/v1/iommud.proto': 'iommud/v1/iommud.proto',
        'grpc/health/v1/health.proto': 'pyhealth/health.proto',
        'grpc/reflection/v1/reflection.proto': 'pyreflection/v1/reflection.proto',
        'grpc/reflection/v1alpha/reflection.proto': 'pyreflection/v1alpha/reflection.proto',
    }
    for frm, to in copies.items():
        os.makedirs(os.path.dirname(os.path.join(src, to)), exist_ok=True)
        shutil.copy(os.path.join(PROTO_DIR, frm), os.path.join(src, to))
    subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', '-I', src, '--python_out', out,
                    '--grpc_python_out', out] + list(copies.values()), check=True)
    sys.path.insert(0, out)
    import importlib
    PB['iommud'] = importlib.import_module('iommud.v1.iommud_pb2')
    PB['iommud_grpc'] = importlib.import_module('iommud.v1.iommud_pb2_grpc')
    PB['health'] = importlib.import_module('pyhealth.health_pb2')
    PB['health_grpc'] = importlib.import_module('pyhealth.health_pb2_grpc')
    PB['refl'] = importlib.import_module('pyreflection.v1.reflection_pb2')
    PB['refl_alpha'] = importlib.import_module('pyreflection.v1alpha.reflection_pb2')


# ---- test PKI -----------------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, cwd=TMP, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(name):
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.crt', '-subj', '/CN=' + name, '-days', '2',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign')


def make_cert(name, cn, ca, ext):
    with open(os.path.join(TMP, name + '.ext'), 'w') as f:
        f.write(ext)
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.csr', '-subj', '/O=iommud-test/CN=' + cn)
    openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.crt', '-CAkey', ca + '.key',
            '-CAcreateserial', '-out', name + '.crt', '-days', '2', '-extfile', name + '.ext')


def make_pki():
    make_ca('ca')
    make_ca('rogue-ca')
    make_cert('server', 'localhost', 'ca',
              'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
    for role in ('reader', 'operator', 'admin'):
        make_cert('client-' + role, role, 'ca', 'extendedKeyUsage=clientAuth\n')
    make_cert('client-rogue', 'admin', 'rogue-ca', 'extendedKeyUsage=clientAuth\n')


def pki(name):
    with open(os.path.join(TMP, name), 'rb') as f:
        return f.read()


# ---- the server under test ----------------------------------------------------------------------

class Server:
    counter = 0
    running = []  # killed at exit, so a failing test never leaves a server behind

    def __init__(self, *extra, tls=False):
        Server.counter += 1
        self.sock = os.path.join(TMP, 'grpc-%d.sock' % Server.counter)
        args = [SERVER, '--unix', self.sock] + list(extra)
        if tls:
            args += ['--tls', '127.0.0.1:0', '--cert', os.path.join(TMP, 'server.crt'),
                     '--key', os.path.join(TMP, 'server.key'), '--ca', os.path.join(TMP, 'ca.crt')]
        if os.environ.get('GRPC_TEST_DEBUG'):
            args.append('--debug')
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        Server.running.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith('READY'):
            self.proc.kill()
            raise RuntimeError('test server did not start: %r' % line)
        fields = dict(kv.split('=') for kv in line.split()[1:])
        self.tls_port = int(fields['tls_port'])
        self.tcp_port = int(fields['tcp_port'])

    def unix_channel(self, options=()):
        return grpc.insecure_channel('unix:' + self.sock, options=list(options))

    def tls_channel(self, client='client-reader', trust='ca'):
        kw = {'root_certificates': pki(trust + '.crt')}
        if client:
            kw['private_key'] = pki(client + '.key')
            kw['certificate_chain'] = pki(client + '.crt')
        creds = grpc.ssl_channel_credentials(**kw)
        return grpc.secure_channel('localhost:%d' % self.tls_port, creds)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.stats = {}
        for line in self.proc.stdout.read().splitlines():
            if line.startswith('STATS'):
                self.stats = {k: int(v) for k, v in (kv.split('=') for kv in line.split()[1:])}
        return self.proc.returncode


def health_check(channel, service='', timeout=5):
    stub = PB['health_grpc'].HealthStub(channel)
    return stub.Check(PB['health'].HealthCheckRequest(service=service), timeout=timeout).status


def raw_unary(channel, path):
    return channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)


class ReflectionSession:
    """One bidi ServerReflectionInfo stream; requests are sent one at a time without half-close."""

    def __init__(self, channel, version='v1'):
        mod = PB['refl'] if version == 'v1' else PB['refl_alpha']
        self.mod = mod
        self.q = queue.Queue()
        method = '/grpc.reflection.%s.ServerReflection/ServerReflectionInfo' % version
        call = channel.stream_stream(method, request_serializer=mod.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=mod.ServerReflectionResponse.FromString)
        self.responses = call(iter(self.q.get, None), timeout=10)

    def ask(self, **kw):
        self.q.put(self.mod.ServerReflectionRequest(**kw))
        return next(self.responses)

    def close(self):
        self.q.put(None)
        return list(self.responses)


# ---- raw HTTP/2 ---------------------------------------------------------------------------------

def h2_connect(path):
    import h2.config
    import h2.connection
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def grpc_headers(path, extra=()):
    return [(':method', 'POST'), (':scheme', 'http'), (':path', path), (':authority', 'localhost'),
            ('content-type', 'application/grpc'), ('te', 'trailers')] + list(extra)


def h2_events_until(s, conn, stream_id, want_end=True, limit=10.0):
    """Collects (headers, trailers, data, reset, goaway) for one stream."""
    import h2.events
    res = {'headers': {}, 'data': b'', 'reset': None, 'ended': False, 'goaway': None, 'closed': False}
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            res['closed'] = True
            break
        for ev in conn.receive_data(chunk):
            sid = getattr(ev, 'stream_id', None)
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)) and sid == stream_id:
                res['headers'].update(dict(ev.headers))
            elif isinstance(ev, h2.events.DataReceived) and sid == stream_id:
                res['data'] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamReset) and sid == stream_id:
                res['reset'] = ev.error_code
            elif isinstance(ev, h2.events.StreamEnded) and sid == stream_id:
                res['ended'] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                res['goaway'] = ev.error_code
        out = conn.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                pass
        if want_end and (res['ended'] or res['reset'] is not None or res['goaway'] is not None):
            break
    return res


def frame(payload, flag=0):
    return bytes([flag]) + len(payload).to_bytes(4, 'big') + payload


# ---- tests --------------------------------------------------------------------------------------

class UnixTransport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server('--max-message', str(1 << 20), tls=True)
        cls.channel = cls.server.unix_channel()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.server.stop()
        assert rc == 0, 'server exit status %r' % rc

    def tearDown(self):
        self.assertTrue(self.server.alive(), 'server died')

    def test_health_check_serving(self):
        SERVING = PB['health'].HealthCheckResponse.SERVING
        self.assertEqual(health_check(self.channel), SERVING)
        self.assertEqual(health_check(self.channel, 'iommud.v1.IommuManager'), SERVING)
        self.assertEqual(health_check(self.channel, 'grpc.health.v1.Health'), SERVING)

    def test_health_check_unknown_service(self):
        with self.assertRaises(grpc.RpcError) as e:
            health_check(self.channel, 'no.such.Service')
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_health_watch(self):
        stub = PB['health_grpc'].HealthStub(self.channel)
        call = stub.Watch(PB['health'].HealthCheckRequest(service=''))
        first = next(call)
        self.assertEqual(first.status, PB['health'].HealthCheckResponse.SERVING)
        call.cancel()
        unknown = stub.Watch(PB['health'].HealthCheckRequest(service='later.Service'))
        self.assertEqual(next(unknown).status, PB['health'].HealthCheckResponse.SERVICE_UNKNOWN)
        unknown.cancel()
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_reflection_list_services(self):
        for version in ('v1', 'v1alpha'):
            r = ReflectionSession(self.channel, version)
            resp = r.ask(list_services='*')
            names = {s.name for s in resp.list_services_response.service}
            self.assertIn('iommud.v1.IommuManager', names)
            self.assertIn('grpc.health.v1.Health', names)
            self.assertIn('grpc.reflection.v1.ServerReflection', names)
            self.assertIn('grpc.reflection.v1alpha.ServerReflection', names)
            r.close()

    def test_reflection_describe_without_our_proto(self):
        from google.protobuf import descriptor_pb2, descriptor_pool
        r = ReflectionSession(self.channel)
        pool = descriptor_pool.DescriptorPool()
        resp = r.ask(file_containing_symbol='iommud.v1.IommuManager')
        blobs = resp.file_descriptor_response.file_descriptor_proto
        self.assertGreaterEqual(len(blobs), 1)
        fd = descriptor_pb2.FileDescriptorProto.FromString(blobs[0])
        self.assertEqual(fd.name, 'iommud/v1/iommud.proto')
        for b in blobs:
            pool.Add(descriptor_pb2.FileDescriptorProto.FromString(b))
        method = pool.FindMethodByName('iommud.v1.IommuManager.GetHost')
        self.assertEqual(method.output_type.full_name, 'iommud.v1.GetHostResponse')
        group = pool.FindMessageTypeByName('iommud.v1.Group')
        self.assertIn('domain_type', group.fields_by_name)
        self.assertEqual(group.fields_by_name['devices'].message_type.full_name, 'iommud.v1.Device')

        # Methods, nested types and fields resolve too; unknown symbols are NOT_FOUND in-band.
        for sym in ('iommud.v1.IommuManager.Watch', 'iommud.v1.WatchEvent.DriverChanged',
                    'iommud.v1.Device.address', 'grpc.health.v1.HealthCheckResponse.ServingStatus'):
            resp = r.ask(file_containing_symbol=sym)
            self.assertTrue(resp.HasField('file_descriptor_response'), sym)
        resp = r.ask(file_containing_symbol='no.such.Thing')
        self.assertEqual(resp.error_response.error_code, 5)
        resp = r.ask(file_by_filename='grpc/health/v1/health.proto')
        fd = descriptor_pb2.FileDescriptorProto.FromString(resp.file_descriptor_response.file_descriptor_proto[0])
        self.assertEqual(fd.package, 'grpc.health.v1')
        resp = r.ask(file_by_filename='nope.proto')
        self.assertEqual(resp.error_response.error_code, 5)
        resp = r.ask(all_extension_numbers_of_type='iommud.v1.Group')
        self.assertEqual(resp.all_extension_numbers_response.base_type_name, 'iommud.v1.Group')
        self.assertEqual(r.close(), [])

    def test_get_host_test_double(self):
        stub = PB['iommud_grpc'].IommuManagerStub(self.channel)
        resp = stub.GetHost(PB['iommud'].GetHostRequest(), timeout=5)
        self.assertEqual(resp.host.kernel_release, '6.1.0-test-double')
        self.assertEqual(resp.host.vfio.allow_unsafe_interrupts, -1)
        self.assertEqual(resp.group_count, 3)

    def test_not_wired_methods_unimplemented(self):
        stub = PB['iommud_grpc'].IommuManagerStub(self.channel)
        for call, req in ((stub.ListGroups, PB['iommud'].ListGroupsRequest(type=['DMA'])),
                          (stub.GetGroup, PB['iommud'].GetGroupRequest(id=1)),
                          (stub.SetDomainType, PB['iommud'].SetDomainTypeRequest(group=1, type='identity')),
                          (stub.ApplyPolicy, PB['iommud'].ApplyPolicyRequest())):
            with self.assertRaises(grpc.RpcError) as e:
                call(req, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            self.assertEqual(e.exception.details(), 'not wired yet')

    def test_unknown_method(self):
        for path in ('/iommud.v1.IommuManager/NoSuchMethod', '/no.Such/Service', '/x'):
            with self.assertRaises(grpc.RpcError) as e:
                raw_unary(self.channel, path)(b'', timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED, path)
            self.assertIn('unknown method', e.exception.details())

    def test_oversize_message(self):
        with self.assertRaises(grpc.RpcError) as e:
            raw_unary(self.channel, '/iommud.v1.IommuManager/GetHost')(b'\x00' * ((1 << 20) + 1), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn('larger than max', e.exception.details())
        # The connection is still good.
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_garbage_protobuf(self):
        for garbage in (b'\xff\xff\xff\xff', b'\x0a\x05ab', b'\x07'):
            with self.assertRaises(grpc.RpcError) as e:
                raw_unary(self.channel, '/grpc.health.v1.Health/Check')(garbage, timeout=5)
            self.assertIn(e.exception.code(), (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT))
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_deadline(self):
        stub = PB['iommud_grpc'].IommuManagerStub(self.channel)
        call = stub.Watch(PB['iommud'].WatchRequest(send_snapshot=True), timeout=0.5)
        first = next(call)
        self.assertEqual(first.snapshot.host.kernel_release, '6.1.0-test-double')
        with self.assertRaises(grpc.RpcError) as e:
            next(call)
        self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_many_concurrent_calls(self):
        # More than SETTINGS_MAX_CONCURRENT_STREAMS (100): grpcio queues, nothing fails.
        stub = PB['health_grpc'].HealthStub(self.channel)
        futures = [stub.Check.future(PB['health'].HealthCheckRequest(), timeout=10) for _ in range(250)]
        self.assertTrue(all(f.result().status == PB['health'].HealthCheckResponse.SERVING for f in futures))

    def test_metadata_flood(self):
        # 20 KB of metadata against a 16 KiB header list limit: refused, server fine.
        md = [('x-flood-%d' % i, 'v' * 200) for i in range(100)]
        with self.assertRaises(grpc.RpcError) as e:
            raw_unary(self.channel, '/grpc.health.v1.Health/Check')(b'', metadata=md, timeout=5)
        self.assertIn(e.exception.code(), (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL))
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_raw_header_flood_goaway(self):
        s, conn = h2_connect(self.server.sock)
        big = [('x-flood-%d' % i, 'y' * 1000) for i in range(20)]
        sid = None
        cut_off = False
        for _ in range(12):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check', big), end_stream=True)
            try:
                s.sendall(conn.data_to_send())
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True  # the server already sent GOAWAY and closed
                break
        if not cut_off:
            res = h2_events_until(s, conn, sid, want_end=False, limit=3)
            self.assertTrue(res['goaway'] is not None or res['closed'], res)
        s.close()
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_raw_bad_length_prefix(self):
        cases = [
            (b'\x02\x00\x00\x00\x00', '13'),                    # flag byte neither 0 nor 1
            (b'\x00\x00\x00\x00\x64' + b'\x0a\x00', '13'),      # declares 100 bytes, stream ends after 2
            (frame(b'', flag=1), '13'),                         # compressed without grpc-encoding
            (b'\x00\x00\x00', '13'),                            # prefix itself truncated
            (frame(b'') + frame(b''), '12'),                    # two messages on a unary method
            (b'', '12'),                                        # no message at all
            (b'\x00\xff\xff\xff\xff', '8'),                     # 4 GiB declared
        ]
        for body, status in cases:
            s, conn = h2_connect(self.server.sock)
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check'))
            conn.send_data(sid, body, end_stream=True)
            s.sendall(conn.data_to_send())
            res = h2_events_until(s, conn, sid)
            s.close()
            self.assertEqual(res['headers'].get(':status'), '200', (body, res))
            self.assertEqual(res['headers'].get('grpc-status'), status, (body, res))

    def test_raw_compressed_with_unknown_encoding(self):
        s, conn = h2_connect(self.server.sock)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check', [('grpc-encoding', 'snappy')]))
        conn.send_data(sid, frame(b'xx', flag=1), end_stream=True)
        s.sendall(conn.data_to_send())
        res = h2_events_until(s, conn, sid)
        s.close()
        self.assertEqual(res['headers'].get('grpc-status'), '12', res)

    def test_raw_not_grpc_content_type(self):
        s, conn = h2_connect(self.server.sock)
        sid = conn.get_next_available_stream_id()
        hdrs = [h for h in grpc_headers('/grpc.health.v1.Health/Check') if h[0] != 'content-type']
        conn.send_headers(sid, hdrs + [('content-type', 'text/html')], end_stream=True)
        s.sendall(conn.data_to_send())
        res = h2_events_until(s, conn, sid)
        s.close()
        self.assertEqual(res['headers'].get(':status'), '415', res)

    def test_raw_bad_grpc_timeout(self):
        s, conn = h2_connect(self.server.sock)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check', [('grpc-timeout', '123456789S')]))
        conn.send_data(sid, frame(b''), end_stream=True)
        s.sendall(conn.data_to_send())
        res = h2_events_until(s, conn, sid)
        s.close()
        self.assertEqual(res['headers'].get('grpc-status'), '13', res)

    def test_bad_http2_preface(self):
        for junk in (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', b'\x16\x03\x01\x02\x00' + b'\x00' * 100,
                     b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + b'\xff' * 64):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(self.server.sock)
            s.sendall(junk)
            closed = False
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    if not s.recv(65536):
                        closed = True
                        break
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
                    break
            s.close()
            self.assertTrue(closed, junk)
            self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_unix_role_is_enforced(self):
        # This server gives Unix peers "admin"; a reader-only server is checked in Authorization.
        stub = PB['iommud_grpc'].IommuManagerStub(self.channel)
        with self.assertRaises(grpc.RpcError) as e:
            stub.BlockGroup(PB['iommud'].BlockGroupRequest(group=1), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


    def test_flow_control_large_stream(self):
        # 400 x 16 KiB through HTTP/2 flow control, the output high-water mark and deferred data.
        flood = self.channel.unary_stream('/iommud.test.Transport/Flood',
                                          request_serializer=PB['iommud'].GetGroupRequest.SerializeToString,
                                          response_deserializer=PB['iommud'].GetHostResponse.FromString)
        n = 0
        for msg in flood(PB['iommud'].GetGroupRequest(id=400), timeout=30):
            self.assertEqual(len(msg.host.cmdline), 16 * 1024)
            n += 1
        self.assertEqual(n, 400)

    def test_slow_reader_bounded(self):
        # A client that opens a stream and never reads nor grants window: the server's queue for
        # it stops at the send-queue bound, its memory stays bounded, and others are served.
        import h2.settings
        s, conn = h2_connect(self.server.sock)
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers('/iommud.test.Transport/Flood'))
        conn.send_data(sid, frame(b''), end_stream=True)
        s.sendall(conn.data_to_send())
        time.sleep(1.5)
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)
        with open('/proc/%d/status' % self.server.proc.pid) as f:
            rss_kb = int([l for l in f if l.startswith('VmRSS:')][0].split()[1])
        self.assertLess(rss_kb, 200 * 1024)
        s.close()
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)

    def test_stalled_reader_with_open_window_gets_its_status(self):
        # A client that grants all the window there is and then stops reading: DATA frames wait at
        # the output high-water mark, the stream's queue overflows, and the stream still ends with
        # RESOURCE_EXHAUSTED in trailers after the waiting frame, not with a reset.
        import h2.settings
        s, conn = h2_connect(self.server.sock)
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        conn.increment_flow_control_window(2**31 - 1 - 65535)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers('/iommud.test.Transport/Flood'))
        conn.send_data(sid, frame(b''), end_stream=True)  # id 0: messages until the call fails
        s.sendall(conn.data_to_send())
        time.sleep(2)  # 16 KiB a millisecond: the 4 MiB send queue is full long before
        res = h2_events_until(s, conn, sid, limit=20)
        s.close()
        self.assertIsNone(res['reset'], 'the stream was reset instead of ended with a status')
        self.assertTrue(res['ended'])
        self.assertEqual(res['headers'].get('grpc-status'), str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]))
        data, end, n = res['data'], 0, 0
        while end < len(data):  # whole gRPC messages, the last one included
            end += 5 + int.from_bytes(data[end + 1:end + 5], 'big')
            n += 1
        self.assertEqual(end, len(data), 'a message was cut')
        self.assertGreater(n, 0)
        self.assertEqual(health_check(self.channel), PB['health'].HealthCheckResponse.SERVING)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(tls=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.assertTrue(self.server.alive(), 'server died')

    def test_trusted_client(self):
        with self.server.tls_channel('client-reader') as ch:
            self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
            stub = PB['iommud_grpc'].IommuManagerStub(ch)
            self.assertEqual(stub.GetHost(PB['iommud'].GetHostRequest(), timeout=5).host.kernel_release,
                             '6.1.0-test-double')

    def test_no_client_certificate_refused(self):
        with self.server.tls_channel(client=None) as ch:
            with self.assertRaises(grpc.RpcError) as e:
                health_check(ch, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_untrusted_client_certificate_refused(self):
        with self.server.tls_channel('client-rogue') as ch:
            with self.assertRaises(grpc.RpcError) as e:
                health_check(ch, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_plaintext_on_tls_port_refused(self):
        with grpc.insecure_channel('127.0.0.1:%d' % self.server.tls_port) as ch:
            with self.assertRaises(grpc.RpcError) as e:
                health_check(ch, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_permission_denied_names_role(self):
        with self.server.tls_channel('client-reader') as ch:
            stub = PB['iommud_grpc'].IommuManagerStub(ch)
            with self.assertRaises(grpc.RpcError) as e:
                stub.SetDomainType(PB['iommud'].SetDomainTypeRequest(group=1, type='identity'), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn('admin', e.exception.details())
            with self.assertRaises(grpc.RpcError) as e:
                stub.PrepareGroup(PB['iommud'].PrepareGroupRequest(group=1), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn('operator', e.exception.details())
        with self.server.tls_channel('client-operator') as ch:
            stub = PB['iommud_grpc'].IommuManagerStub(ch)
            with self.assertRaises(grpc.RpcError) as e:
                stub.PrepareGroup(PB['iommud'].PrepareGroupRequest(group=1), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        with self.server.tls_channel('client-admin') as ch:
            stub = PB['iommud_grpc'].IommuManagerStub(ch)
            with self.assertRaises(grpc.RpcError) as e:
                stub.SetDomainType(PB['iommud'].SetDomainTypeRequest(group=1, type='identity'), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class TlsReload(unittest.TestCase):
    def test_sighup_rotates_server_certificate(self):
        # The server reads its TLS files from copies the test then replaces with a certificate
        # from another CA (which also signs the new client certificates).
        d = tempfile.mkdtemp(dir=TMP)
        for f in ('server.crt', 'server.key', 'ca.crt'):
            shutil.copy(os.path.join(TMP, f), os.path.join(d, f))
        make_ca('ca2')
        make_cert('server2', 'localhost', 'ca2',
                  'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
        make_cert('client2-reader', 'reader', 'ca2', 'extendedKeyUsage=clientAuth\n')
        args = [SERVER, '--unix', os.path.join(d, 'grpc.sock'), '--tls', '127.0.0.1:0',
                '--cert', os.path.join(d, 'server.crt'), '--key', os.path.join(d, 'server.key'),
                '--ca', os.path.join(d, 'ca.crt')]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        Server.running.append(proc)
        try:
            port = int(dict(kv.split('=') for kv in proc.stdout.readline().split()[1:])['tls_port'])

            def check(client, trust):
                creds = grpc.ssl_channel_credentials(root_certificates=pki(trust + '.crt'),
                                                     private_key=pki(client + '.key'),
                                                     certificate_chain=pki(client + '.crt'))
                with grpc.secure_channel('localhost:%d' % port, creds) as ch:
                    return health_check(ch)

            self.assertEqual(check('client-reader', 'ca'), PB['health'].HealthCheckResponse.SERVING)

            # A broken file set is refused and the old one stays in use.
            with open(os.path.join(d, 'server.key'), 'w') as f:
                f.write('garbage')
            proc.send_signal(signal.SIGHUP)
            self.assertNotEqual(proc.stdout.readline().split(), ['RELOADED', '0'])
            self.assertEqual(check('client-reader', 'ca'), PB['health'].HealthCheckResponse.SERVING)

            for src, dst in (('server2.crt', 'server.crt'), ('server2.key', 'server.key'), ('ca2.crt', 'ca.crt')):
                shutil.copy(os.path.join(TMP, src), os.path.join(d, dst))
            proc.send_signal(signal.SIGHUP)
            self.assertEqual(proc.stdout.readline().split(), ['RELOADED', '0'])
            self.assertEqual(check('client2-reader', 'ca2'), PB['health'].HealthCheckResponse.SERVING)
            with self.assertRaises(grpc.RpcError) as e:
                check('client-reader', 'ca')
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)


class Authorization(unittest.TestCase):
    def test_unix_reader_denied_mutations(self):
        server = Server('--unix-role', 'reader')
        try:
            with server.unix_channel() as ch:
                stub = PB['iommud_grpc'].IommuManagerStub(ch)
                stub.GetHost(PB['iommud'].GetHostRequest(), timeout=5)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.ApplyPolicy(PB['iommud'].ApplyPolicyRequest(), timeout=5)
                self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
                self.assertIn('requires role admin', e.exception.details())
        finally:
            self.assertEqual(server.stop(), 0)

    def test_unix_none_reads_denied_but_health_open(self):
        server = Server('--unix-role', 'none')
        try:
            with server.unix_channel() as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
                with self.assertRaises(grpc.RpcError) as e:
                    PB['iommud_grpc'].IommuManagerStub(ch).GetHost(PB['iommud'].GetHostRequest(), timeout=5)
                self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
                self.assertIn('reader', e.exception.details())
        finally:
            self.assertEqual(server.stop(), 0)


class Listeners(unittest.TestCase):
    def test_insecure_tcp_loopback(self):
        server = Server('--tcp-insecure', '127.0.0.1:0')
        try:
            with grpc.insecure_channel('127.0.0.1:%d' % server.tcp_port) as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_insecure_tcp_refused_off_loopback(self):
        p = subprocess.run([SERVER, '--tcp-insecure', '0.0.0.0:0'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn('READY', p.stdout)


class Limits(unittest.TestCase):
    def test_idle_connections_over_the_limit(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        server = Server('--max-connections', '50', '--handshake-timeout-ms', '60000')
        socks = []
        try:
            for _ in range(1000):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(server.sock)
                s.setblocking(False)
                socks.append(s)
            # Excess connections are accepted and closed at once; the first 50 are kept.
            time.sleep(1.0)
            closed = 0
            for s in socks:
                try:
                    if s.recv(1) == b'':
                        closed += 1
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed += 1
            self.assertGreaterEqual(closed, 950 - 5)
            self.assertLessEqual(1000 - closed, 50)
            self.assertTrue(server.alive())
            for s in socks:
                s.close()
            socks = []
            # Once they are gone, a fresh client is served.
            deadline = time.time() + 10
            while True:
                try:
                    with server.unix_channel() as ch:
                        self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
                    break
                except grpc.RpcError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            for s in socks:
                s.close()
            self.assertEqual(server.stop(), 0)
        self.assertGreaterEqual(server.stats['refused'], 945)
        self.assertLessEqual(server.stats['accepted'], 60)

    def test_silent_connection_times_out(self):
        server = Server('--handshake-timeout-ms', '300')
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(server.sock)
            start = time.time()
            data = b''
            while True:
                chunk = s.recv(65536)  # the server's SETTINGS, then EOF
                if not chunk:
                    break
                data += chunk
            self.assertLess(time.time() - start, 4)
            s.close()
        finally:
            self.assertEqual(server.stop(), 0)


    def test_connection_buffer_limit(self):
        # Three streams each park 900 KB of an unfinished 2 MB message; the budget is 2 MB, so
        # the third is refused while the first two stay open.
        server = Server('--max-connection-buffer', str(2 << 20), '--max-message', str(4 << 20))
        try:
            s, conn = h2_connect(server.sock)
            # Take the server's SETTINGS and connection WINDOW_UPDATE before sending a lot.
            conn.receive_data(s.recv(65536))
            s.sendall(conn.data_to_send())
            chunk = b'\x00' * (900 * 1024)
            sids = []
            for _ in range(3):
                sid = conn.get_next_available_stream_id()
                sids.append(sid)
                conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check'))
                body = b'\x00' + (2 << 20).to_bytes(4, 'big') + chunk
                while body:
                    n = min(len(body), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    self.assertGreater(n, 0)
                    conn.send_data(sid, body[:n])
                    body = body[n:]
                s.sendall(conn.data_to_send())
            res = h2_events_until(s, conn, sids[2])
            self.assertEqual(res['headers'].get('grpc-status'), '8', res)
            self.assertIn('memory budget', res['headers'].get('grpc-message', ''))
            s.close()
            with server.unix_channel() as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_silent_tls_connection_times_out(self):
        server = Server('--handshake-timeout-ms', '1500', tls=True)
        try:
            s = socket.create_connection(('127.0.0.1', server.tls_port), timeout=5)
            start = time.time()
            while s.recv(65536):
                pass
            self.assertLess(time.time() - start, 6)
            s.close()
            with server.tls_channel() as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_rapid_reset(self):
        # CVE-2023-44487: open-and-cancel streams in a loop. nghttp2's token bucket (1000 + 33/s)
        # answers with GOAWAY; other clients keep being served.
        server = Server()
        try:
            s, conn = h2_connect(server.sock)
            import h2.errors
            goaway = None
            for i in range(1500):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check'))
                conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
                try:
                    s.sendall(conn.data_to_send())
                except (BrokenPipeError, ConnectionResetError):
                    goaway = 'closed'
                    break
            if goaway is None:
                res = h2_events_until(s, conn, 1, want_end=False, limit=3)
                goaway = res['goaway'] if res['goaway'] is not None else ('closed' if res['closed'] else None)
            self.assertIsNotNone(goaway)
            s.close()
            with server.unix_channel() as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_idle_connection_goaway_then_reconnect(self):
        server = Server('--idle-timeout-ms', '300')
        try:
            with server.unix_channel() as ch:
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
                time.sleep(1.0)  # idle: GOAWAY, connection closed
                # grpcio does not read an idle connection, so it may notice the GOAWAY only when it
                # next writes (UNAVAILABLE once); the call after that reconnects.
                try:
                    health_check(ch)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
            # A raw client sees GOAWAY(NO_ERROR) after its last stream.
            s, conn = h2_connect(server.sock)
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, grpc_headers('/grpc.health.v1.Health/Check'))
            conn.send_data(sid, frame(b''), end_stream=True)
            s.sendall(conn.data_to_send())
            res = h2_events_until(s, conn, sid)
            self.assertEqual(res['headers'].get('grpc-status'), '0', res)
            res = h2_events_until(s, conn, sid, want_end=False, limit=3)
            self.assertEqual(res['goaway'], 0, res)
            s.close()
        finally:
            self.assertEqual(server.stop(), 0)


class Shutdown(unittest.TestCase):
    def test_sigterm_drains_and_exits(self):
        server = Server()
        ch = server.unix_channel()
        stub = PB['iommud_grpc'].IommuManagerStub(ch)
        watch = stub.Watch(PB['iommud'].WatchRequest())
        next(watch)
        self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        start = time.time()
        server.proc.send_signal(signal.SIGTERM)
        # The watch never finishes on its own: the drain timeout (2 s) cuts it off.
        with self.assertRaises(grpc.RpcError) as e:
            for _ in watch:
                pass
        self.assertIn(e.exception.code(), (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                           grpc.StatusCode.INTERNAL))
        self.assertEqual(server.proc.wait(timeout=10), 0)
        self.assertLess(time.time() - start, 8)
        ch.close()
        self.assertFalse(os.path.exists(server.sock))

    def test_sigterm_lets_calls_in_flight_finish(self):
        server = Server()
        ch = server.unix_channel()
        flood = ch.unary_stream('/iommud.test.Transport/Flood',
                                request_serializer=PB['iommud'].GetGroupRequest.SerializeToString,
                                response_deserializer=PB['iommud'].GetHostResponse.FromString)
        # ~0.5 s of messages: well inside the 2 s drain time the test server grants.
        call = flood(PB['iommud'].GetGroupRequest(id=120), timeout=30)
        next(call)
        server.proc.send_signal(signal.SIGTERM)
        n = 1 + sum(1 for _ in call)  # GOAWAY names this stream as processed: it completes
        self.assertEqual(n, 120)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertEqual(server.proc.wait(timeout=10), 0)
        ch.close()

    def test_sigterm_idle_connection_goaway(self):
        server = Server()
        ch = server.unix_channel()
        self.assertEqual(health_check(ch), PB['health'].HealthCheckResponse.SERVING)
        start = time.time()
        server.proc.send_signal(signal.SIGTERM)
        # Idle connections get GOAWAY and close at once: no need to wait for the drain timeout.
        self.assertEqual(server.proc.wait(timeout=10), 0)
        self.assertLess(time.time() - start, 1.9)
        ch.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
