#!/usr/bin/python3
"""Polls /sys/bus/pci/devices every 2 ms until ADDRESS appears (or, with --gone, disappears), then
prints the time it saw the change (CLOCK_REALTIME). A shell loop is far too slow for that under TCG.

Usage: await-pci-change.py [--ready FILE] [--timeout S] (--gone ADDRESS | --new-since LISTING_FILE)
--ready FILE is created once polling runs: python starts slowly under TCG, so wait for it before
making the change."""
import argparse
import os
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gone", metavar="ADDRESS")
    parser.add_argument("--new-since", metavar="LISTING_FILE")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--ready", metavar="FILE")
    args = parser.parse_args()
    known = set(open(args.new_since).read().split()) if args.new_since else set()
    deadline = time.monotonic() + args.timeout
    if args.ready:
        open(args.ready, "w").close()
    while time.monotonic() < deadline:
        present = set(os.listdir("/sys/bus/pci/devices"))
        if args.gone and args.gone not in present:
            print(f"{time.time():.6f} {args.gone}")
            return 0
        if args.new_since and present - known:
            print(f"{time.time():.6f} {sorted(present - known)[0]}")
            return 0
        time.sleep(0.002)
    print("timed out", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
