#!/usr/bin/python3
"""Follows iommud's Watch stream and appends one JSON line per event to a file, with the time it
arrived (CLOCK_REALTIME, comparable with `date +%s.%N` in the scenario).

Usage: watch-events.py SOCKET STUBS_DIR OUTPUT"""
import json
import sys
import time

import grpc

sys.path.insert(0, sys.argv[2])
from iommud.v1 import iommud_pb2, iommud_pb2_grpc  # noqa: E402


def subject(event):
    kind = event.WhichOneof("event")
    value = getattr(event, kind)
    for field in ("address", "id", "group"):
        if hasattr(value, field):
            return kind, str(getattr(value, field))
    return kind, ""


def main():
    channel = grpc.insecure_channel("unix://" + sys.argv[1])
    stub = iommud_pb2_grpc.IommuManagerStub(channel)
    with open(sys.argv[3], "a", buffering=1) as out:
        for event in stub.Watch(iommud_pb2.WatchRequest(send_snapshot=True)):
            kind, name = subject(event)
            out.write(json.dumps({"time": time.time(), "sequence": event.sequence, "kind": kind,
                                  "subject": name}) + "\n")


if __name__ == "__main__":
    main()
