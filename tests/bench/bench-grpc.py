#!/usr/bin/env python3
"""Benchmark: iommud's gRPC server against a plain gRPC C++ server, with h2load, side by side in one run.

Servers, both on loopback TCP (h2c), one at a time:
  iommud    `iommud --listen-insecure-tcp`: unary GetGroup of a one-device group and of a
            13-device group on bench_hosts.py's "small13" host; ListGroups pages of the "large" host
  greeter   Debian's libgrpc++ running gRPC's own greeter example (grpc-hello/), unary SayHello
h2load (nghttp2-client) drives each with 16 connections x 16 concurrent streams for a fixed time
after a warm-up; requests/s come from h2load, latency percentiles from its per-request log, peak
RSS from the server's VmHWM. iommud's own counters (metrics) confirm that every call ended OK,
which h2load cannot see. ListGroups answers in pages: its largest page (page_size 1000, with every
group's status) is timed next to `iommud --dump`.

Usage: bench-grpc.py BUILD_DIR [--seconds N] [--workdir DIR]
Needs h2load, g++, protoc, grpc_cpp_plugin and libgrpc++-dev. Run it under `flock /work/heavy.lock`.
"""
import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_hosts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONNECTIONS, STREAMS = 16, 16


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


def build_greeter(workdir):
    exe = os.path.join(workdir, "greeter-server")
    if os.path.exists(exe):
        return exe
    out = os.path.join(workdir, "greeter-gen")
    os.makedirs(out, exist_ok=True)
    proto_dir = os.path.join(HERE, "grpc-hello")
    subprocess.run(["protoc", "-I", proto_dir, f"--cpp_out={out}", f"--grpc_out={out}",
                    f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}",
                    os.path.join(proto_dir, "helloworld.proto")], check=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["g++", "-O2", "-std=c++17", "-I", out, os.path.join(proto_dir, "greeter-server.cc"),
                    os.path.join(out, "helloworld.pb.cc"), os.path.join(out, "helloworld.grpc.pb.cc"),
                    "-o", exe + ".tmp"] + flags, check=True)
    os.rename(exe + ".tmp", exe)
    return exe


def grpc_frame(payload):
    return b"\0" + struct.pack(">I", len(payload)) + payload


def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def h2load(port, path, body, seconds, workdir, connections=CONNECTIONS, streams=STREAMS, requests=None):
    """Runs h2load; returns (req/s, succeeded, failed, p50 ms, p99 ms, mean s per request)."""
    body_file = os.path.join(workdir, "body.bin")
    log = os.path.join(workdir, "h2load.log")
    with open(body_file, "wb") as f:
        f.write(body)
    if os.path.exists(log):
        os.unlink(log)
    argv = ["h2load", "-c", str(connections), "-m", str(streams), "-t", "1", "-d", body_file,
            "-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", log]
    argv += ["-n", str(requests)] if requests else ["-D", str(seconds), "--warm-up-time", "2"]
    out = subprocess.run(argv + [f"http://127.0.0.1:{port}{path}"], check=True, capture_output=True,
                         text=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out)
    durations = sorted(int(line.split("\t")[2]) for line in open(log) if line.count("\t") >= 2)
    p = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))] / 1000.0  # noqa: E731
    mean = sum(durations) / len(durations) / 1e6 if durations else 0
    return rps, int(m.group(1)), int(m.group(2)), p(0.50), p(0.99), mean


def hwm_kib(pid):
    return int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def ok_calls(metrics, method):
    m = re.search(r'iommud_grpc_requests_total\{method="/iommud.v1.IommuManager/%s",code="OK"\} (\d+)' % method,
                  metrics)
    return int(m.group(1)) if m else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: install nghttp2-client")

    iommud = os.path.join(args.build_dir, "daemon", "iommud")
    workdir = args.workdir or os.path.join(args.build_dir, "bench")
    tree = bench_hosts.host("large", workdir)
    small = bench_hosts.host("small13", workdir)
    big_group = 66  # the 13-device group of small13 (checked below)
    greeter = build_greeter(workdir)
    tmp = tempfile.mkdtemp(dir=workdir)
    rows = []
    try:
        # The C++ server first: nothing of iommud runs meanwhile.
        port = free_port()
        g = subprocess.Popen([greeter, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
        wait_port(port, g)
        hello = grpc_frame(b"\x0a\x05world")
        r = h2load(port, "/helloworld.Greeter/SayHello", hello, args.seconds, tmp)
        greeter_hwm = hwm_kib(g.pid)
        g.terminate()
        g.wait()
        rows.append(("greeter (C++ libgrpc++)", "SayHello", r, greeter_hwm))

        def start_iommud(host):
            port, metrics_port = free_port(), free_port()
            d = subprocess.Popen([iommud, "--config=/dev/null", "--root", host, "--udev=no", "--rescan-interval=0",
                                  "--dbus=none", "--libvirt-uri=none", "--state-directory=" + tmp + "/state",
                                  "--runtime-directory=" + tmp + "/run", "--policy-directory=" + tmp + "/p",
                                  "--unix-socket=", f"--listen-insecure-tcp=127.0.0.1:{port}", "--reader=insecure:*",
                                  f"--metrics-listen=127.0.0.1:{metrics_port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port, d)
            return d, port, metrics_port

        # GetGroup on a host of 79 devices: the memory then is the server's, not a large model's.
        d, port, metrics_port = start_iommud(small)
        before = scrape(metrics_port)
        for label, group in (("1-device group", 10), ("13-device group", big_group)):
            r = h2load(port, "/iommud.v1.IommuManager/GetGroup", grpc_frame(b"\x08" + varint(group)), args.seconds,
                       tmp)
            rows.append((f"iommud", f"GetGroup, {label}", r, hwm_kib(d.pid)))
        after = scrape(metrics_port)
        ok = ok_calls(after, "GetGroup") - ok_calls(before, "GetGroup")
        succeeded = sum(r[2][1] for r in rows[1:])
        d.terminate()
        d.wait()

        d, port, metrics_port = start_iommud(tree)
        # ListGroupsRequest{page_size: 1000}: field 7, varint.
        lg = h2load(port, "/iommud.v1.IommuManager/ListGroups", grpc_frame(b"\x38\xe8\x07"), 0, tmp, connections=1,
                    streams=1,
                    requests=5)
        list_ok = ok_calls(scrape(metrics_port), "ListGroups")
        list_hwm = hwm_kib(d.pid)
        d.terminate()
        d.wait()

        dump_best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([iommud, "--dump", "--compact", "--root", tree], check=True, stdout=subprocess.DEVNULL)
            dump_best = min(dump_best, time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = rows[0][2][0]
    print(f"## gRPC: {CONNECTIONS} connections x {STREAMS} streams, {args.seconds} s each, h2load -t 1, "
          f"GetGroup on the {bench_hosts.n_devices(small)}-device host, {time.strftime('%Y-%m-%d')}\n")
    print("| server | call | req/s | x greeter | p50 (ms) | p99 (ms) | failed | peak RSS (MiB) | RSS / greeter's |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for server, call, (rps, good, bad, p50, p99, _), hwm in rows:
        print(f"| {server} | {call} | {rps:,.0f} | {rps / base:.2f} | {p50:.2f} | {p99:.2f} | {bad} | "
              f"{hwm / 1024:.1f} | {hwm / rows[0][3]:.2f} |")
    print(f"\niommud counted {ok} GetGroup calls ending OK (h2load: {succeeded} succeeded, warm-up included in "
          f"iommud's count).")
    print(f"\nListGroups, one page of 1000 groups of the {bench_hosts.n_devices(tree)}-device host: {lg[5]:.3f} s per call "
          f"(h2load, one stream, {list_ok} of {lg[1]} ended OK by iommud's count); `iommud --dump --compact`: "
          f"{dump_best:.3f} s; ratio {lg[5] / dump_best:.2f}; iommud peak RSS after it {list_hwm / 1024:.1f} MiB.")


if __name__ == "__main__":
    main()
