#!/usr/bin/python3
"""Calls one IommuManager method and prints the reply as JSON, or "ERROR <status>: <message>".

Usage: iommud-call.py SOCKET STUBS_DIR METHOD [REQUEST_JSON]
Exit status: 0 on OK, 1 on a gRPC error."""
import sys

import grpc
from google.protobuf import json_format

sys.path.insert(0, sys.argv[2])
from iommud.v1 import iommud_pb2, iommud_pb2_grpc  # noqa: E402


def main():
    socket, _, method = sys.argv[1:4]
    request_json = sys.argv[4] if len(sys.argv) > 4 else "{}"
    stub = iommud_pb2_grpc.IommuManagerStub(grpc.insecure_channel("unix://" + socket))
    call = getattr(stub, method)
    input_type = iommud_pb2.DESCRIPTOR.services_by_name["IommuManager"].methods_by_name[method].input_type
    request = json_format.Parse(request_json, getattr(iommud_pb2, input_type.name)())
    try:
        reply = call(request, timeout=120)
    except grpc.RpcError as e:
        print(f"ERROR {e.code().name}: {e.details()}")
        return 1
    print(json_format.MessageToJson(reply, preserving_proto_field_name=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
