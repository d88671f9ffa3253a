"""Our OIP proto must be wire-compatible with tritonclient's.

tritonclient's copy registers the same `inference.*` symbols, so it is read in
a subprocess and compared there against ours as a serialized descriptor.
"""

from __future__ import annotations

import json
import subprocess
import sys

from meshline.inference import grpc_service_pb2

SCRIPT = r"""
import json, sys
from google.protobuf import descriptor_pb2
import tritonclient.grpc.service_pb2 as triton

def describe(file_descriptor):
    out = {}
    for message in file_descriptor.message_types_by_name.values():
        stack = [message]
        while stack:
            m = stack.pop()
            out[m.full_name] = {f.name: [f.number, f.type, f.is_repeated] for f in m.fields}
            stack.extend(m.nested_types)
    service = file_descriptor.services_by_name["GRPCInferenceService"]
    out["__service__"] = {
        m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods
    }
    return out

print(json.dumps(describe(triton.DESCRIPTOR)))
"""


def _describe_ours() -> dict[str, dict[str, list[object]]]:
    out: dict[str, dict[str, list[object]]] = {}
    for message in grpc_service_pb2.DESCRIPTOR.message_types_by_name.values():
        stack = [message]
        while stack:
            m = stack.pop()
            out[m.full_name] = {f.name: [f.number, f.type, f.is_repeated] for f in m.fields}
            stack.extend(m.nested_types)
    service = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    out["__service__"] = {
        m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods
    }
    return out


def test_oip_messages_and_service_match_tritonclient() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    triton = json.loads(result.stdout)
    ours = _describe_ours()
    assert grpc_service_pb2.DESCRIPTOR.package == "inference"
    for name, fields in ours.items():
        if name == "__service__":
            continue
        assert name in triton, f"{name} is not in tritonclient's protocol"
        assert fields == triton[name], f"{name} differs from tritonclient's"
    for rpc, types in ours["__service__"].items():
        assert triton["__service__"][rpc] == types, rpc
    assert len(ours["__service__"]) == 9  # the six core RPCs and the repository extension
