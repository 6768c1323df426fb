#!/bin/bash
# Builds iommud three ways and runs every test suite; the last line is "N passed, N failed".
#
#   build/        gcc, -Dwerror=true: suites unit, integration, fuzz, abuse, package, vm
#   build-asan/   gcc with ASan+UBSan: suites unit, integration, fuzz
#   build-clang/  clang, -Dwerror=true: compiles everything (warnings are errors)
#
# SUITES="unit integration" limits what runs; NO_VM=1 skips the vm suite (it boots real kernels
# under QEMU and takes minutes). The package suite builds the .deb (dpkg-buildpackage) and runs
# lintian on it; the vm suite's systemd boot installs that .deb.
set -uo pipefail
cd "$(dirname "$0")/.."

suites=${SUITES:-unit integration fuzz abuse package vm}
failed_steps=()

# A failed build step counts as a failure of its own; failed tests are counted from meson's logs.
step() {
        echo "==> $*"
        if ! "$@"; then
                [ "$1" = run_suites ] || failed_steps+=("$*")
                return 1
        fi
}

configure() {
        local dir=$1
        shift
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" "$@" >/dev/null
        else
                meson setup "$dir" "$@" >/dev/null
        fi
}

run_suites() {
        local dir=$1
        shift
        local args=()
        for s in "$@"; do
                [ "$s" = vm ] && [ -n "${NO_VM:-}" ] && continue
                args+=(--suite "$s")
        done
        [ ${#args[@]} -eq 0 ] && return 0
        meson test -C "$dir" --print-errorlogs --num-processes 2 "${args[@]}"
}

step configure build -Dwerror=true -Dbuildtype=debugoptimized &&
        step ninja -C build &&
        step run_suites build $suites

# The abuse suite measures latency and RSS: meaningless under ASan, and slow there.
asan_suites=$(echo "$suites" | sed -e 's/\bvm\b//' -e 's/\bpackage\b//' -e 's/\babuse\b//')
step configure build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug &&
        step ninja -C build-asan &&
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                step run_suites build-asan $asan_suites

CC=clang step configure build-clang -Dwerror=true && step ninja -C build-clang

for s in "${failed_steps[@]}"; do
        echo "failed build step: $s"
done
exec python3 tests/summarize-results.py --build-failures "${#failed_steps[@]}" build build-asan
