#!/bin/bash
# Runs every benchmark of tests/bench against BUILD_DIR (default build/) and writes their tables to
# BUILD_DIR/bench/results.md. Minutes of CPU: on shared machines run it as
#   flock /work/heavy.lock tests/bench/run-all.sh build
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=$build/bench/results.md
mkdir -p "$build/bench"
ninja -C "$build" >/dev/null
{
        echo "# Benchmark results, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
        echo
        python3 tests/bench/bench-inventory.py "$build" --runs 5
        echo
        python3 tests/bench/bench-grpc.py "$build" --seconds 10
        echo
        /usr/bin/python3 tests/bench/bench-watch.py "$build" --subscribers 1000 --rounds 40
        echo
        echo "## uevent: core's handler per event (unbind and bind of an endpoint), 4000 events"
        echo
        echo "| host | devices | mean (µs) | median (µs) | p99 (µs) |"
        echo "|---|---:|---:|---:|---:|"
        for h in small large; do
                python3 -c "import sys; sys.path.insert(0, 'tests/bench'); import bench_hosts; bench_hosts.host('$h', '$build/bench')"
                "$build/tests/bench/bench-uevent" "$build/bench/host-$h" 4000 |
                        sed -E "s/devices=([0-9]+) .*mean_us=([0-9.]+) median_us=([0-9.]+) p99_us=([0-9.]+)/| $h | \1 | \2 | \3 | \4 |/"
        done
} | tee "$out"
