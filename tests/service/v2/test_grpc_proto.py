"""service/v2/grpc/inference.proto is wire-compatible with the protocol's clients: every message, field
(number, type, cardinality), enum value and RPC it declares is declared so by tritonclient's own
generated code. (The service's messages live in a descriptor pool of their own, messages.py, so both
load in one process.)"""

from __future__ import annotations

from typing import Any

import pytest

from service.v2.grpc import messages


def is_repeated(field: Any) -> bool:
    """The field's cardinality: ``is_repeated`` from protobuf 6.31, ``label`` before (7 removed it)."""
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def dump(*files: Any) -> dict[str, dict]:
    """Messages (field -> number, type, repeated, message or enum type), enums and RPCs of these files."""
    found: dict[str, dict] = {"messages": {}, "enums": {}, "methods": {}}

    def walk(message: Any) -> None:
        fields = {}
        for f in message.fields:
            kind = f.message_type.full_name if f.message_type else f.enum_type.full_name if f.enum_type else f.type
            fields[f.name] = (f.number, f.type, is_repeated(f), kind)
        found["messages"][message.full_name] = fields
        for nested in message.nested_types:
            walk(nested)
        for enum in message.enum_types:
            found["enums"][enum.full_name] = {v.name: v.number for v in enum.values}

    for descriptor in files:
        for message in descriptor.message_types_by_name.values():
            walk(message)
        for enum in descriptor.enum_types_by_name.values():
            found["enums"][enum.full_name] = {v.name: v.number for v in enum.values}
        for service in descriptor.services_by_name.values():
            for m in service.methods:
                found["methods"][f"{service.full_name}/{m.name}"] = (m.input_type.full_name, m.output_type.full_name)
    return found


def test_the_proto_subset_matches_the_clients_definitions() -> None:
    triton = pytest.importorskip("tritonclient.grpc")
    ours = dump(messages.DESCRIPTOR)
    theirs = dump(triton.service_pb2.DESCRIPTOR, triton.model_config_pb2.DESCRIPTOR)
    assert len(ours["methods"]) == 8
    for method, types in ours["methods"].items():
        assert theirs["methods"][method] == types, method
    for message, fields in ours["messages"].items():
        assert message in theirs["messages"], message
        for field, declared in fields.items():
            assert theirs["messages"][message].get(field) == declared, f"{message}.{field}"
    for enum, values in ours["enums"].items():
        assert values.items() <= theirs["enums"][enum].items(), enum
