#!/usr/bin/python3
"""Benchmark: Watch fan-out. How long 1,000 subscribers wait for a change, with stalled ones among them.

iommud serves the 65-device host of bench_hosts.py on a Unix socket. Worker processes
(watch-subscribers, a compiled nghttp2 client built with the benchmarks, which decodes only each
event's sequence) open 1,000 Watch streams over 20 connections; 10 more subscribers are raw HTTP/2
connections (python3-h2) that announce a flow-control window of 0 and never read: they must not delay
anyone. A compiled client keeps the measurement on the daemon: with Python subscribers (grpc.aio) on
the same two cores, decoding 1,000 events per change dominated the figure. Each round unbinds or binds one endpoint in the tree and calls Rescan; the latency of a
subscriber is the time from the Rescan call to its receipt of the round's last event (the sequence
number Rescan returns), so it includes the full re-read of the host that Rescan does first. Reported: p50, p99 and the maximum over every subscriber and round, and what
happened to the stalled subscribers.

Usage: bench-watch.py BUILD_DIR [--subscribers N] [--rounds N] [--workdir DIR]
Run it under `flock /work/heavy.lock`.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_hosts  # noqa: E402

SOURCE = bench_hosts.SOURCE
STREAMS_PER_CONNECTION = 50
WORKERS = 4
STALLED = 10
WATCH_PATH = "/iommud.v1.IommuManager/Watch"


def stubs(workdir):
    out = os.path.join(workdir, "py")
    if not os.path.exists(os.path.join(out, "iommud_pb2_grpc.py")):
        os.makedirs(out, exist_ok=True)
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(SOURCE, "proto/iommud/v1"),
                        "--python_out", out, "--grpc_python_out", out, "iommud.proto"], check=True)
    sys.path.insert(0, out)


def stalled_subscriber(sock):
    """An HTTP/2 client that asks for a Watch, grants a window of 0 and never reads again."""
    import h2.config
    import h2.connection
    import h2.settings

    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                          (":path", WATCH_PATH), ("content-type", "application/grpc"), ("te", "trailers")])
    conn.send_data(1, b"\0\0\0\0\0", end_stream=True)  # an empty WatchRequest
    s.sendall(conn.data_to_send())
    return s


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        m = re.search(r"^%s (\d+)" % name, r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    iommud = os.path.abspath(os.path.join(args.build_dir, "daemon", "iommud"))
    workdir = os.path.abspath(args.workdir or os.path.join(args.build_dir, "bench"))
    host = bench_hosts.host("small", workdir)
    tmp = tempfile.mkdtemp(dir=workdir)
    tree = os.path.join(tmp, "host")
    shutil.copytree(host, tree, symlinks=True)
    stubs(workdir)
    import grpc
    import iommud_pb2
    import iommud_pb2_grpc

    sock = os.path.join(tmp, "sock")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    d = subprocess.Popen([iommud, "--config=/dev/null", "--root", tree, "--udev=no", "--rescan-interval=0",
                          "--dbus=none", "--libvirt-uri=none", "--state-directory=" + tmp + "/state",
                          "--runtime-directory=" + tmp + "/run", "--policy-directory=" + tmp + "/p",
                          "--unix-socket=" + sock, f"--max-watchers={args.subscribers + STALLED + 10}",
                          f"--metrics-listen=127.0.0.1:{metrics_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs, stalled = [], []
    try:
        while not os.path.exists(sock):
            time.sleep(0.05)
        subscribers = os.path.join(args.build_dir, "tests", "bench", "watch-subscribers")
        connections = args.subscribers // STREAMS_PER_CONNECTION
        counts = [connections // WORKERS + (1 if w < connections % WORKERS else 0) for w in range(WORKERS)]
        for w, n in enumerate(counts):
            procs.append(subprocess.Popen([subscribers, sock, str(n), str(STREAMS_PER_CONNECTION),
                                           os.path.join(tmp, f"result-{w}.txt")]))
        stalled = [stalled_subscriber(sock) for _ in range(STALLED)]
        deadline = time.monotonic() + 120
        while metric(metrics_port, "iommud_watch_subscribers") != args.subscribers + STALLED:
            if time.monotonic() > deadline:
                sys.exit(f"only {metric(metrics_port, 'iommud_watch_subscribers')} subscribers after 120 s")
            time.sleep(0.2)

        channel = grpc.insecure_channel("unix:" + sock)
        stub = iommud_pb2_grpc.IommuManagerStub(channel)
        devices = os.path.join(tree, "sys/bus/pci/devices")
        endpoint = sorted(a for a in os.listdir(devices) if os.path.islink(os.path.join(devices, a, "driver")))[-1]
        link = os.path.join(devices, endpoint, "driver")
        target = os.readlink(link)
        marks, rescans = [], []
        for i in range(args.rounds):
            if i % 2 == 0:
                os.unlink(link)
            else:
                os.symlink(target, link)
            t0 = time.monotonic()
            resp = stub.Rescan(iommud_pb2.RescanRequest())
            marks.append((resp.sequence, t0))
            rescans.append(time.monotonic() - t0)
            time.sleep(0.15)
        time.sleep(1)
        stalled_left = metric(metrics_port, "iommud_watch_subscribers") - args.subscribers
        rss = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{d.pid}/status").read()).group(1))
        arrivals = []  # per subscriber: sequence -> arrival time
        for w, p in enumerate(procs):
            p.terminate()
            if p.wait(timeout=60) != 0:
                sys.exit(f"watch-subscribers {w} failed with {p.returncode}")
            mine = [{} for _ in range(counts[w] * STREAMS_PER_CONNECTION)]
            with open(os.path.join(tmp, f"result-{w}.txt")) as f:
                for line in f:
                    subscriber, seq, t = line.split()
                    mine[int(subscriber)][int(seq)] = float(t)
            arrivals += mine
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for s in stalled:
            s.close()
        d.terminate()
        d.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    latencies, missing = [], 0
    for seq, t0 in marks:
        for times in arrivals:
            if seq in times:
                latencies.append(times[seq] - t0)
            else:
                missing += 1
    latencies.sort()
    pct = lambda q: 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"## Watch fan-out: {args.subscribers} subscribers ({WORKERS} watch-subscribers processes, {STREAMS_PER_CONNECTION} "
          f"streams per connection) + {STALLED} that never read, {args.rounds} changes, "
          f"{time.strftime('%Y-%m-%d')}\n")
    rescans.sort()
    print("| samples | missing | p50 (ms) | p99 (ms) | max (ms) | Rescan call, median (ms) | stalled still subscribed "
          "| daemon peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(latencies)} | {missing} | {pct(0.5):.1f} | {pct(0.99):.1f} | {1000 * latencies[-1]:.1f} | "
          f"{1000 * rescans[len(rescans) // 2]:.1f} | {stalled_left} of {STALLED} | {rss / 1024:.1f} |")
    print("\nThe latency counts from the Rescan call, which re-reads the whole host before it publishes; the "
          "Rescan column is the call's own time, reply included.")


if __name__ == "__main__":
    main()
