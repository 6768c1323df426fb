#!/usr/bin/python3
"""The real iommud on a fixture host tree under attack: while each attack runs, root's and an
operator's calls over the Unix socket and a reader's calls over mutual TLS must keep succeeding with
p99 <= 100 ms, and the daemon's RSS must stay within its bound.

usage: test_abuse.py IOMMUD SOURCE_ROOT [H2LOAD]

Attacks (each bounded in time, each from peers without a role unless said otherwise): 1000
connections from one unprivileged uid (nobody, in a child process); 1000 TCP connections to the TLS
port that never say hello, and slowloris on both listeners; unfinished 4 MiB requests on every
stream a peer may open (RSS growth <= 64 MiB); zero-window readers of large responses (same bound);
header blocks at the limit; rapid reset; CONTINUATION flood; half-open TLS peers (a client that
stops answering) reaped by keepalive within KeepaliveSec + KeepaliveTimeoutSec; certificates with a
crafted CN (an embedded NUL, two CNs) refused. Then a soak of 1,000,000 small RPCs from 64 streams
(h2load on the plaintext loopback listener) with RSS flat within 5 % between the first and the last
100,000; and TLS: a resumed session succeeds, and after SIGHUP with a new certificate new
connections see it while an existing Watch stream goes on.

The daemon, the test PKI and the fixture come from tests/integration/daemon/test_daemon_grpc.py;
the probes and attackers run as child processes of this script (--probe, --attack), so that the
GIL of one never delays another. Figures are printed as TAP comments; docs/RELIABILITY.md keeps
them.
"""
import json
import os
import resource
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "daemon"))
import tap  # noqa: E402

P99_LIMIT = 0.100
RSS_GROWTH_LIMIT = 64 << 20
NOBODY = 65534
OPERATOR_UID = 4242
KEEPALIVE, KEEPALIVE_TIMEOUT = 2, 2
PROBE_SECONDS = 4.0
HOST_PATH = "/iommud.v1.IommuManager/GetHost"
HEALTH_PATH = "/grpc.health.v1.Health/Check"
REFLECTION_PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"

T = tap.Tap()


# ---- HTTP/2 by hand (no h2 library in Debian's python3 here) ----------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 4, 5


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def settings(**values):
    ids = {"initial_window_size": SETTINGS_INITIAL_WINDOW_SIZE, "max_frame_size": SETTINGS_MAX_FRAME_SIZE}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in values.items()))


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def hpack(headers):
    """Literal header fields without indexing, new names, no Huffman: nothing to keep in step."""
    out = b""
    for name, value in headers:
        out += b"\x00" + hpack_int(len(name), 7) + name.encode() + hpack_int(len(value), 7) + value.encode()
    return out


def grpc_headers(path, extra=()):
    return hpack([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                  ("content-type", "application/grpc"), ("te", "trailers")] + list(extra))


def grpc_message(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


class H2:
    """The client side of one connection, enough to obey flow control and see the server's frames."""

    def __init__(self, sock, window=None, answer_pings=True):
        self.sock = sock
        self.buf = b""
        self.conn_window = 65535
        self.initial_window = 65535
        self.windows = {}
        self.closed = set()  # streams the server ended or reset
        self.goaway = False
        self.eof = False
        self.answer_pings = answer_pings
        self.next_stream = 1
        hello = PREFACE + (settings(initial_window_size=window) if window is not None else settings())
        self.sock.sendall(hello)

    def new_stream(self):
        sid = self.next_stream
        self.next_stream += 2
        self.windows[sid] = self.initial_window
        return sid

    def pump(self):
        """Reads what is there without blocking; handles SETTINGS, PING, WINDOW_UPDATE, RST, GOAWAY."""
        while True:
            try:
                if isinstance(self.sock, ssl.SSLSocket):
                    # TLS records: no MSG_DONTWAIT, a non-blocking moment instead.
                    self.sock.settimeout(0)
                    try:
                        chunk = self.sock.recv(1 << 16)
                    finally:
                        self.sock.settimeout(None)
                else:
                    chunk = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except (ConnectionError, OSError, ssl.SSLError):
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if kind == SETTINGS and not flags & ACK:
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i:i + 6])
                    if key == SETTINGS_INITIAL_WINDOW_SIZE:
                        for s in self.windows:
                            self.windows[s] += value - self.initial_window
                        self.initial_window = value
                self.send(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK and self.answer_pings:
                self.send(frame(PING, ACK, 0, payload))
            elif kind == WINDOW_UPDATE:
                inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                if sid == 0:
                    self.conn_window += inc
                elif sid in self.windows:
                    self.windows[sid] += inc
            elif kind == RST_STREAM or (kind in (HEADERS, DATA) and flags & END_STREAM):
                self.closed.add(sid)
            elif kind == GOAWAY:
                self.goaway = True

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (ConnectionError, OSError, ssl.SSLError):
            self.eof = True
            return False

    def send_data(self, sid, data, end=False):
        """Sends as much of data as the windows allow; returns how much went."""
        n = min(len(data), self.conn_window, self.windows.get(sid, 0), 16384)
        if n <= 0 and data:
            return 0
        if not self.send(frame(DATA, END_STREAM if end and n == len(data) else 0, sid, data[:n])):
            return 0
        self.conn_window -= n
        self.windows[sid] -= n
        return n


# ---- the daemon's numbers ---------------------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def p99(values):
    if not values:
        return float("inf")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


# ---- probes: the legitimate clients, one process each -------------------------------------------------

def probe_main(kind, target, seconds, pki_dir):
    """Calls GetHost on a fresh connection every 20 ms for seconds; prints JSON with every latency and
    every failure. A fresh connection per call: a slot must be free for each."""
    import grpc
    lat, failures = [], []
    end = time.monotonic() + seconds
    creds = None
    if kind == "tls":
        def read(name):
            with open(os.path.join(pki_dir, name), "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(read("ca.crt"), read("reader.key"), read("reader.crt"))
    while time.monotonic() < end:
        opts = [("grpc.use_local_subchannel_pool", 1)]
        t0 = time.monotonic()
        try:
            if kind == "tls":
                ch = grpc.secure_channel(target, creds, options=opts)
            else:
                ch = grpc.insecure_channel(f"unix:{target}", options=opts)
            with ch:
                ch.unary_unary(HOST_PATH, request_serializer=lambda b: b, response_deserializer=lambda b: b)(
                    b"", timeout=2)
            lat.append(time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - every failure is a finding, reported whole
            failures.append(f"{time.monotonic() - t0:.3f}s: {str(e).splitlines()[0][:200]}")
        time.sleep(0.02)
    print(json.dumps({"lat": lat, "failures": failures}))


class Probes:
    """Root and the operator on the Unix socket, the reader over mutual TLS, all at once."""

    def __init__(self, d, seconds=PROBE_SECONDS):
        me = [sys.executable, os.path.abspath(__file__), "--probe"]
        args = str(seconds), os.path.join(TMP, "pki")
        self.procs = {
            "root/unix": subprocess.Popen(me + ["unix", d.sock, *args], stdout=subprocess.PIPE, text=True),
            "operator/unix": subprocess.Popen(me + ["unix", d.sock, *args], stdout=subprocess.PIPE, text=True,
                                              user=OPERATOR_UID, group=OPERATOR_UID),
            "reader/tls": subprocess.Popen(me + ["tls", f"127.0.0.1:{d.tls_port}", *args], stdout=subprocess.PIPE,
                                           text=True),
        }

    def results(self):
        out = {}
        for name, p in self.procs.items():
            text, _ = p.communicate(timeout=60)
            try:
                out[name] = json.loads(text)
            except ValueError:
                out[name] = {"lat": [], "failures": [f"probe output: {text!r}"]}
        return out


# ---- attackers: one process each, as the uid the case says ------------------------------------------

def unix_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def tcp_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def topped_up(conns, n, sock, **h2_args):
    """The connections still open (the daemon closes some), and new ones up to n while it accepts."""
    conns = [c for c in conns if not c.eof and not c.goaway]
    while len(conns) < n:
        try:
            conns.append(H2(unix_connect(sock), **h2_args))
        except OSError:
            break
    return conns


def attack_many_unix(args, end):
    """As many connections as one uid can open (1000 attempts, and again whenever one is closed), one
    Health.Check on each, all kept open."""
    conns = []
    attempts = 0
    while time.monotonic() < end:
        conns = [c for c in conns if not c.eof]
        while len(conns) < 1000 and attempts < 20000 and time.monotonic() < end:
            attempts += 1
            try:
                c = H2(unix_connect(args["sock"]))
                sid = c.new_stream()
                c.send(frame(HEADERS, END_HEADERS, sid, grpc_headers(HEALTH_PATH)) +
                       frame(DATA, END_STREAM, sid, grpc_message(b"")))
                conns.append(c)
            except OSError:
                break
        for c in conns:
            c.pump()
        time.sleep(0.05)
    return {"attempts": attempts, "open_at_end": len([c for c in conns if not c.eof])}


def attack_tls_silent(args, end):
    """1000 TCP connections to the TLS port that never send a ClientHello, reconnected whenever the
    daemon drops one; plus slowloris on both listeners: a byte every 0.5 s of a preface (Unix) and
    of a ClientHello (TLS)."""
    silent, slow_unix, slow_tls = [], [], []
    hello = bytes.fromhex("16030100") + b"\x00" * 200
    opened = dropped = 0
    next_byte = 0.0
    while time.monotonic() < end:
        alive = []
        for s in silent:
            try:
                if s.recv(1, socket.MSG_DONTWAIT) == b"":
                    s.close()
                    dropped += 1
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                dropped += 1
                continue
            alive.append(s)
        silent = alive
        while len(silent) < 1000 and time.monotonic() < end:
            try:
                silent.append(tcp_connect(args["tls_port"]))
                opened += 1
            except OSError:
                break
        if len(slow_unix) < 16:
            try:
                slow_unix.append([unix_connect(args["sock"]), 0])
            except OSError:
                pass
        if len(slow_tls) < 64:
            try:
                slow_tls.append([tcp_connect(args["tls_port"]), 0])
            except OSError:
                pass
        if time.monotonic() >= next_byte:
            next_byte = time.monotonic() + 0.5
            for group, data in ((slow_unix, PREFACE + settings()), (slow_tls, hello)):
                for entry in list(group):
                    s, pos = entry
                    try:
                        s.send(data[pos % len(data):pos % len(data) + 1])
                        entry[1] += 1
                    except OSError:
                        s.close()
                        group.remove(entry)
        time.sleep(0.02)
    return {"tls_connections_opened": opened, "dropped_by_daemon_and_reopened": dropped,
            "slowloris_unix": len(slow_unix), "slowloris_tls": len(slow_tls)}


def attack_big_requests(args, end):
    """Every connection and stream one peer may open, each a request declared 4 MiB long that never
    ends: the data goes as fast as the daemon's flow control lets it, streams the daemon resets are
    opened again."""
    conns = []
    chunk = b"\x00" * 16384
    opened = sent = 0
    while time.monotonic() < end:
        conns = topped_up(conns, 32, args["sock"])
        progressed = False
        for c in conns:
            c.pump()
            live = [s for s in c.windows if s not in c.closed]
            while len(live) < 100 and opened < 200000:
                sid = c.new_stream()
                opened += 1
                if not c.send(frame(HEADERS, END_HEADERS, sid, grpc_headers(HEALTH_PATH))):
                    break
                c.send_data(sid, b"\x00" + struct.pack(">I", (4 << 20) - 5))
                live.append(sid)
            for sid in live:
                n = c.send_data(sid, chunk)
                sent += n
                progressed |= n > 0
        if not progressed:
            time.sleep(0.01)
    return {"streams_opened": opened, "bytes_sent": sent}


def attack_zero_window(args, end):
    """Readers that never read: SETTINGS_INITIAL_WINDOW_SIZE=0 and no WINDOW_UPDATE, then as many
    reflection calls (allowed to every peer; the answer holds the whole API's descriptors) on as many
    streams and connections as the daemon takes."""
    conns = []
    opened = 0
    ask = grpc_message(b"\x22\x16iommud.v1.IommuManager")  # file_containing_symbol
    while time.monotonic() < end:
        conns = topped_up(conns, 32, args["sock"], window=0)
        for c in conns:
            c.pump()
            live = [s for s in c.windows if s not in c.closed]
            for _ in range(100 - len(live)):
                sid = c.new_stream()
                opened += 1
                c.send(frame(HEADERS, END_HEADERS, sid, grpc_headers(REFLECTION_PATH)))
                # Requests still flow: the daemon's window for us is untouched.
                c.send(frame(DATA, 0, sid, ask * 8))
        time.sleep(0.05)
    return {"streams_opened": opened}


def attack_headers(args, end):
    """Header blocks at the limit (16 KiB, 64 fields) and just over it, on every stream, again and
    again, in frames of 1 KiB."""
    sent = 0
    conns = []
    at_limit = grpc_headers(HEALTH_PATH, [(f"x-pad-{i:02d}", "v" * 200) for i in range(57)])
    over = grpc_headers(HEALTH_PATH, [(f"x-pad-{i:03d}", "v" * 300) for i in range(200)])
    while time.monotonic() < end:
        conns = topped_up(conns, 16, args["sock"])
        for c in conns:
            c.pump()
            for block in (at_limit, over):
                sid = c.new_stream()
                pieces = [block[i:i + 1024] for i in range(0, len(block), 1024)]
                out = frame(HEADERS, END_HEADERS if len(pieces) == 1 else 0, sid, pieces[0])
                for i, p in enumerate(pieces[1:], 1):
                    out += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, sid, p)
                if c.send(out + frame(DATA, END_STREAM, sid, grpc_message(b""))):
                    sent += 1
        time.sleep(0.01)
    return {"header_blocks_sent": sent}


def attack_rapid_reset(args, end):
    """HEADERS then RST_STREAM at once, in batches of 100, on new connections as the daemon closes them."""
    sent = 0
    conns = []
    while time.monotonic() < end:
        conns = topped_up(conns, 8, args["sock"])
        for c in conns:
            c.pump()
            out = b""
            for _ in range(100):
                sid = c.new_stream()
                out += frame(HEADERS, END_HEADERS, sid, grpc_headers(HEALTH_PATH)) + \
                    frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
            if c.send(out):
                sent += 100
            c.windows.clear()
        time.sleep(0.005)
    return {"streams_reset": sent}


def attack_continuation(args, end):
    """A HEADERS frame without END_HEADERS, then CONTINUATION frames that never end it."""
    frames = 0
    conns = []
    filler = frame(CONTINUATION, 0, 1, b"\x00\x01a\x01b" * 3000)
    while time.monotonic() < end:
        conns = [c for c in conns if not c.eof and not c.goaway]
        while len(conns) < 8:
            try:
                c = H2(unix_connect(args["sock"]))
                c.send(frame(HEADERS, 0, c.new_stream(), grpc_headers(HEALTH_PATH)))
                conns.append(c)
            except OSError:
                break
        for c in conns:
            c.pump()
            if c.send(filler * 4):
                frames += 4
        time.sleep(0.005)
    return {"continuation_frames": frames}


ATTACKS = {
    "many-unix": attack_many_unix,
    "tls-silent": attack_tls_silent,
    "big-requests": attack_big_requests,
    "zero-window": attack_zero_window,
    "headers": attack_headers,
    "rapid-reset": attack_rapid_reset,
    "continuation": attack_continuation,
}


def attack_main(name, args_json, seconds):
    # What is measured is the daemon's loop, not how this machine shares its CPUs between the
    # daemon and an attacker written in Python: the attacker yields the CPU to both.
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    result = ATTACKS[name](json.loads(args_json), time.monotonic() + seconds)
    print(json.dumps(result))


# ---- the cases --------------------------------------------------------------------------------------

TMP = None
dg = None  # test_daemon_grpc, imported in main()


def run_case(d, name, ramp=1.5, rss_bound=True):
    """Starts the attacker (as nobody), waits ramp seconds, runs the probes, and checks their p99 and
    failures, and the daemon's RSS growth while it ran."""
    args = json.dumps({"sock": d.sock, "tls_port": d.tls_port})
    seconds = ramp + PROBE_SECONDS + 1.5
    base = rss(d.proc.pid)
    cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
    attacker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--attack", name, args, str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                user=NOBODY, group=NOBODY)
    peak = base
    deadline = time.monotonic() + ramp
    while time.monotonic() < deadline:
        peak = max(peak, rss(d.proc.pid))
        time.sleep(0.05)
    probes = Probes(d)
    while any(p.poll() is None for p in probes.procs.values()):
        peak = max(peak, rss(d.proc.pid))
        time.sleep(0.05)
    results = probes.results()
    out, err = attacker.communicate(timeout=seconds + 30)
    peak = max(peak, rss(d.proc.pid))
    load = (cpu_seconds(d.proc.pid) - cpu0) / (time.monotonic() - t0)
    summary = []
    for who, r in results.items():
        q = p99(r["lat"])
        summary.append(f"{who} {len(r['lat'])} calls p99 {q * 1000:.1f} ms, {len(r['failures'])} failed")
        T.check(not r["failures"] and r["lat"] and q <= P99_LIMIT,
                f"{name}: {who}: {len(r['lat'])} calls succeed during the attack, p99 {q * 1000:.1f} ms <= 100 ms",
                "\n".join(r["failures"][:10]))
    growth = peak - base
    T.note(f"{name}: attacker {out.strip() or err.strip()[-300:]}; {'; '.join(summary)}; "
           f"RSS {base >> 20} MiB -> peak {peak >> 20} MiB (+{growth / (1 << 20):.1f} MiB); "
           f"daemon CPU {load * 100:.0f} %")
    if rss_bound:
        T.check(growth <= RSS_GROWTH_LIMIT, f"{name}: daemon RSS growth {growth / (1 << 20):.1f} MiB <= 64 MiB")
    T.check(d.alive(), f"{name}: the daemon is still running", d.log_text()[-3000:])
    return out


def tls_context(client="reader"):
    ctx = ssl.create_default_context(cafile=dg.pki("ca.crt"))
    ctx.load_cert_chain(dg.pki(f"{client}.crt"), dg.pki(f"{client}.key"))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def check_keepalive(d):
    """A TLS client with the reader's certificate that completes the handshake and the HTTP/2
    preface, opens a Watch, then answers nothing (a peer that vanished without FIN): the daemon's
    PING goes unanswered and it must close the connection within KeepaliveSec + KeepaliveTimeoutSec
    (plus a second of slack)."""
    raw = socket.create_connection(("127.0.0.1", d.tls_port))
    s = tls_context().wrap_socket(raw, server_hostname="localhost")
    c = H2(s, answer_pings=False)
    sid = c.new_stream()
    c.send(frame(HEADERS, END_HEADERS, sid, grpc_headers("/iommud.v1.IommuManager/Watch")) +
           frame(DATA, END_STREAM, sid, grpc_message(b"")))
    start = time.monotonic()
    limit = KEEPALIVE + KEEPALIVE_TIMEOUT + 1.0
    closed_at = None
    while time.monotonic() - start < limit + 5:
        select.select([s], [], [], 0.1)
        c.pump()
        if c.eof or c.goaway:
            closed_at = time.monotonic() - start
            break
    s.close()
    T.check(closed_at is not None and closed_at <= limit,
            f"keepalive: a TLS peer that stops answering is closed after "
            f"{'never' if closed_at is None else f'{closed_at:.1f} s'} (KeepaliveSec={KEEPALIVE} + "
            f"KeepaliveTimeoutSec={KEEPALIVE_TIMEOUT}, limit {limit:.0f} s)")
    # Not earlier either: then something else closed it (the other timeouts are 10 s and more; the
    # refusal log that would name the PING is rate limited after the attacks before).
    T.check(closed_at is not None and closed_at >= KEEPALIVE + KEEPALIVE_TIMEOUT - 0.5,
            "keepalive: it is the unanswered PING that closes it (not before KeepaliveSec + KeepaliveTimeoutSec)")
    return closed_at


def make_crafted_certs():
    """Certificates signed by the test CA whose subject names "admin" ambiguously."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import datetime
    with open(dg.pki("ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(dg.pki("ca.crt"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    names = {
        "cn-nul": [x509.NameAttribute(NameOID.COMMON_NAME, "admin\x00.tenant-b.example")],
        "cn-two": [x509.NameAttribute(NameOID.COMMON_NAME, "admin"), x509.NameAttribute(NameOID.COMMON_NAME, "other")],
        "cn-two-rdn": [x509.NameAttribute(NameOID.COMMON_NAME, "other"), x509.NameAttribute(NameOID.COMMON_NAME, "admin")],
    }
    now = datetime.datetime.now(datetime.timezone.utc)
    for name, attrs in names.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(dg.pki(f"{name}.crt"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(dg.pki(f"{name}.key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return list(names)


def check_crafted_cn(d):
    import grpc
    for name in make_crafted_certs():
        with d.tls_channel(name) as ch:
            try:
                dg.call_method(ch, "SetDomainType", dg.PB.api.SetDomainTypeRequest(group=1, type="DMA", dry_run=True))
                outcome = "OK"
            except grpc.RpcError as e:
                outcome = e.code().name
        T.check(outcome in ("UNAVAILABLE", "PERMISSION_DENIED", "UNAUTHENTICATED"),
                f"crafted CN ({name}) with --admin=cn:admin: SetDomainType is refused ({outcome})")


def check_soak(d, port, h2load):
    """1,000,000 Health.Check calls from 64 concurrent streams (h2load, 4 connections x 16 streams),
    in ten rounds of 100,000; the daemon's RSS after the first and after the last round must be
    within 5 % of each other."""
    body = os.path.join(TMP, "health-request")
    with open(body, "wb") as f:
        f.write(grpc_message(b""))
    # h2load counts HTTP statuses; gRPC puts its status in the trailers: one call shown whole first.
    nghttp = os.path.join(os.path.dirname(h2load), "nghttp")
    p = subprocess.run([nghttp, "-v", "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers",
                        f"http://127.0.0.1:{port}{HEALTH_PATH}"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    if not T.check("grpc-status: 0" in p.stdout, "soak: the request h2load repeats is a Health.Check answered "
                   "with grpc-status 0", p.stdout[-2000:]):
        return None
    samples, rates = [], []
    for _ in range(10):
        p = subprocess.run([h2load, "-n", "100000", "-c", "4", "-m", "16", "-d", body,
                            "-H", "content-type: application/grpc", "-H", "te: trailers",
                            f"http://127.0.0.1:{port}{HEALTH_PATH}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        done = [line for line in p.stdout.splitlines() if line.startswith("requests:")]
        rate = [line for line in p.stdout.splitlines() if line.startswith("finished in")]
        ok = p.returncode == 0 and done and " 100000 succeeded" in done[0]
        if not T.check(ok, f"soak: a round of 100,000 Health.Check calls succeeds", p.stdout[-2000:]):
            return None
        rates.append(rate[0] if rate else "")
        samples.append(rss(d.proc.pid))
    # The daemon's own count (metrics endpoint): every call answered OK, whatever h2load saw.
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{d.metrics_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    line = f'iommud_grpc_requests_total{{method="{HEALTH_PATH}",code="OK"}}'
    counted = [int(float(x.split()[-1])) for x in metrics.splitlines() if x.startswith(line)]
    T.check(counted and counted[0] >= 1000000, f"soak: the daemon counts {counted[0] if counted else '?'} "
            "Health.Check calls answered OK (iommud_grpc_requests_total)")
    first, last = samples[0], samples[-1]
    drift = (last - first) / first
    T.note(f"soak: RSS after each 100,000 calls (MiB): {[round(s / (1 << 20), 1) for s in samples]}; "
           f"first round {rates[0]}, last round {rates[-1]}")
    T.check(abs(drift) <= 0.05, f"soak: 1,000,000 calls, RSS {first >> 20} MiB after the first 100,000 and "
            f"{last >> 20} MiB after the last ({drift * 100:+.1f} %, within 5 %)")
    return samples


def check_tls_resume_and_reload(d):
    """A session resumed with the ticket of an earlier connection succeeds; after SIGHUP with a new
    server certificate, new connections get it and a Watch opened before goes on."""
    ctx = tls_context()
    first = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.tls_port)), server_hostname="localhost")
    c = H2(first)
    # TLS 1.3 tickets arrive after the handshake: read until the server's SETTINGS are in.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (first.session is None or not first.session.has_ticket):
        select.select([first], [], [], 0.1)
        c.pump()
    session = first.session
    first.close()
    second = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.tls_port)), server_hostname="localhost",
                             session=session)
    c2 = H2(second)
    sid = c2.new_stream()
    c2.send(frame(HEADERS, END_HEADERS, sid, grpc_headers(HOST_PATH)) + frame(DATA, END_STREAM, sid, grpc_message(b"")))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sid not in c2.closed and not c2.eof:
        select.select([second], [], [], 0.1)
        c2.pump()
    T.check(second.session_reused and sid in c2.closed and not c2.eof,
            f"TLS: a client resuming its session is served (session_reused={second.session_reused}, "
            f"{second.version()})", d.log_text()[-2000:])
    second.close()

    with d.tls_channel("reader") as ch:
        watch = dg.Watch(ch)
        old_der = ssl.PEM_cert_to_DER_cert(open(dg.pki("server.crt")).read())
        dg.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                   "-keyout", "server2.key", "-out", "server2.csr", "-subj", "/O=iommud-test/CN=localhost-rotated")
        dg.openssl("x509", "-req", "-in", "server2.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                   "-out", "server2.crt", "-days", "2", "-extfile", "server.ext")
        shutil.copy(dg.pki("server2.key"), dg.pki("server.key"))
        shutil.copy(dg.pki("server2.crt"), dg.pki("server.crt"))
        reloaded = d.reload()
        new = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", d.tls_port)),
                                        server_hostname="localhost")
        der = new.getpeercert(binary_form=True)
        new.close()
        new_der = ssl.PEM_cert_to_DER_cert(open(dg.pki("server2.crt")).read())
        T.check(reloaded and der == new_der and der != old_der,
                "TLS: after SIGHUP with a new certificate, a new connection gets the new certificate")
        # Drain what the stream sent so far (the snapshot), then make a change it must report.
        while watch.next(timeout=0.5)[0] is not None:
            pass
        dg.set_driver(d.tree, "0000:00:1f.6", None)
        with d.channel() as root:
            dg.call_method(root, "Rescan")
        t, ev = watch.wait_for(lambda e: True, 5)
        T.check(t is not None, "TLS: a Watch stream opened before the SIGHUP goes on and delivers the next event "
                "(a driver unbound, then Rescan)", f"got {ev!r}\n{d.log_text()[-2000:]}")
        watch.cancel()


def main():
    global TMP, dg
    if len(sys.argv) < 3:
        print("usage: test_abuse.py IOMMUD SOURCE_ROOT [H2LOAD]", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("not ok 1 - the abuse suite runs as root: its attackers and its operator are other uids")
        return 1
    iommud, source_root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    h2load = sys.argv[3] if len(sys.argv) > 3 else shutil.which("h2load")
    sys.argv = sys.argv[:1]  # test_daemon_grpc reads its own arguments at import
    import test_daemon_grpc
    dg = test_daemon_grpc
    dg.IOMMUD, dg.SOURCE_ROOT = iommud, source_root
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    TMP = dg.TMP = tempfile.mkdtemp(prefix="iommud-abuse-test-")
    os.chmod(TMP, 0o755)  # nobody and the operator reach the socket below it
    start = time.monotonic()
    d = None
    try:
        dg.generate_stubs()
        dg.make_pki()
        os.chmod(os.path.join(TMP, "pki"), 0o755)
        for name in ("ca.crt", "reader.crt", "reader.key"):
            os.chmod(dg.pki(name), 0o644)
        tree = dg.make_fixture()
        insecure, metrics = dg.free_tcp_port(), dg.free_tcp_port()
        d = dg.Daemon("abuse", tree, "--admin=uid:0 cn:admin", f"--operator=uid:{OPERATOR_UID}", "--reader=cn:reader",
                      f"--keepalive={KEEPALIVE}", f"--keepalive-timeout={KEEPALIVE_TIMEOUT}",
                      f"--listen-insecure-tcp=127.0.0.1:{insecure}", f"--metrics-listen=127.0.0.1:{metrics}",
                      tls_port=dg.free_tcp_port())
        d.tree, d.metrics_port = tree, metrics
        os.chmod(d.dir, 0o755)
        T.note(f"daemon RSS at start: {rss(d.proc.pid) / (1 << 20):.1f} MiB")
        probes = Probes(d).results()
        T.note("baseline, no attack: " + "; ".join(
            f"{who} {len(r['lat'])} calls p99 {p99(r['lat']) * 1000:.1f} ms, {len(r['failures'])} failed"
            for who, r in probes.items()))
        cases = [("many-unix", True), ("tls-silent", True), ("big-requests", True), ("zero-window", True),
                 ("headers", True), ("rapid-reset", True), ("continuation", True)]
        only = os.environ.get("ABUSE_CASES")
        for name, bound in cases:
            if only and name not in only.split(","):
                continue
            try:
                run_case(d, name, rss_bound=bound)
            except Exception:
                T.check(False, f"{name}: unexpected exception", traceback.format_exc())
        for name, fn, args in (("keepalive", check_keepalive, (d,)), ("crafted CN", check_crafted_cn, (d,)),
                               ("TLS resume and reload", check_tls_resume_and_reload, (d,))):
            if only and name not in only.split(","):
                continue
            try:
                fn(*args)
            except Exception:
                T.check(False, f"{name}: unexpected exception", traceback.format_exc())
        if not only or "soak" in only.split(","):
            if h2load:
                check_soak(d, insecure, h2load)
            else:
                T.check(False, "soak: h2load (nghttp2-client) is missing")
        T.check(d.stop() == 0, "after every attack the daemon exits 0 on SIGTERM", d.log_text()[-3000:])
    except Exception:
        T.check(False, "setup", traceback.format_exc())
    finally:
        log = d.log_text() if d and T.failed else ""
        for x in dg.DAEMONS:
            x.close()
        shutil.rmtree(TMP, ignore_errors=True)
    if log:
        T.note(f"daemon log (end):\n{log[-5000:]}")
    T.note(f"{T.count} checks, {T.failed} failed, {time.monotonic() - start:.1f} s")
    return 1 if T.failed or T.count == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        probe_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--attack":
        attack_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(main())
