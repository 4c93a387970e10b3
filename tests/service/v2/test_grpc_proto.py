"""service/v2/grpc/inference.proto is wire-compatible with the protocol's clients: every message, field
(number, type, cardinality), enum value and RPC it declares is declared so by tritonclient's own
generated code. Each side is read in a fresh process: both define the package ``inference``, and one
process cannot load both into protobuf's default descriptor pool."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

DUMP = textwrap.dedent(
    """
    import importlib, json, sys
    messages, enums, methods = {}, {}, {}

    def walk(message):
        fields = {}
        for f in message.fields:
            kind = f.message_type.full_name if f.message_type else f.enum_type.full_name if f.enum_type else f.type
            fields[f.name] = [f.number, f.type, f.is_repeated, kind]
        messages[message.full_name] = fields
        for nested in message.nested_types:
            walk(nested)
        for enum in message.enum_types:
            enums[enum.full_name] = {v.name: v.number for v in enum.values}

    for name in sys.argv[1:]:
        descriptor = importlib.import_module(name).DESCRIPTOR
        for message in descriptor.message_types_by_name.values():
            walk(message)
        for enum in descriptor.enum_types_by_name.values():
            enums[enum.full_name] = {v.name: v.number for v in enum.values}
        for service in descriptor.services_by_name.values():
            for m in service.methods:
                methods[f"{service.full_name}/{m.name}"] = [m.input_type.full_name, m.output_type.full_name]
    print(json.dumps({"messages": messages, "enums": enums, "methods": methods}))
    """
)


def dump(*modules: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", DUMP, *modules], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout)


def test_the_proto_subset_matches_the_clients_definitions() -> None:
    pytest.importorskip("tritonclient.grpc")
    ours = dump("service.v2.grpc.inference_pb2")
    theirs = dump("tritonclient.grpc.service_pb2", "tritonclient.grpc.model_config_pb2")
    assert len(ours["methods"]) == 8
    for method, types in ours["methods"].items():
        assert theirs["methods"][method] == types, method
    for message, fields in ours["messages"].items():
        assert message in theirs["messages"], message
        for field, declared in fields.items():
            assert theirs["messages"][message].get(field) == declared, f"{message}.{field}"
    for enum, values in ours["enums"].items():
        assert values.items() <= theirs["enums"][enum].items(), enum
