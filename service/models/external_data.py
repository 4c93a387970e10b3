"""The tensors of a serialised ONNX model whose data lies in another file (ONNX's "external data").

A tensor of an ONNX graph (an initializer, a ``Constant``'s value, one in a subgraph or a function) may
keep its data in a file its ``external_data`` names (``location``), which ONNX Runtime reads as it builds
the session. A version is verified by the sha256 of its files (loader.py), which says nothing of such a
file. A security audit published a version whose ``pcvr`` was a tensor read from ``.env`` in the service's
working directory, with the right sha256 in its model.json; polling loaded it, and any client's
``/v1/score`` read the file's bytes back as scores. ONNX Runtime 1.32 confines the file to the working
directory; 1.17, which the ``cpu`` extra allows, read ``../../../etc/passwd``. The exporter never writes
external data, so a model that has any is refused before ONNX Runtime sees it (onnx.py ``open_session``).

Found without the ``onnx`` package (not a dependency of the service): a walk of the protobuf wire format,
through the messages that can hold a tensor, by their field numbers in ONNX's ``onnx.proto``. A model the
walk cannot read through (truncated, or a field of a wire type protobuf 3 never writes) is refused too:
what the walk did not see it cannot vouch for.
"""

from __future__ import annotations

from collections.abc import Iterator

# the field numbers of onnx.proto that lead to a tensor: message -> {field: the message it holds}
_HOLDS = {
    "model": {7: "graph", 20: "training", 25: "function"},  # ModelProto.graph, .training_info, .functions
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto.initialization, .algorithm
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # GraphProto.node, .initializer, .sparse_initializer
    "node": {5: "attribute"},  # NodeProto.attribute
    # AttributeProto.t, .g, .tensors, .graphs, .sparse_tensor, .sparse_tensors
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "function": {7: "node", 11: "attribute"},  # FunctionProto.node, .attribute_proto
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto.values, .indices
}
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION = 8, 13, 14  # TensorProto's fields
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_ENTRY_KEY, _ENTRY_VALUE = 1, 2  # StringStringEntryProto's fields
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5  # protobuf wire types (3 and 4, groups, are proto2's only)


class UnreadableModel(ValueError):
    """The bytes are not a protobuf message the walk can read through."""


def external_tensors(model: bytes) -> list[tuple[str, str]]:
    """(name, location) of each tensor of ``model`` (a serialised ModelProto) whose data is in another file;
    UnreadableModel where the bytes cannot be walked."""
    found = []
    pending = [("model", memoryview(model))]
    while pending:  # a stack, not recursion: subgraphs nest as deep as a file makes them
        kind, message = pending.pop()
        if kind == "tensor":
            name, location = _external_location(message)
            if location is not None:
                found.append((name, location))
            continue
        holds = _HOLDS[kind]
        for number, wire, value in _fields(message):
            if wire == _LENGTH and number in holds:
                pending.append((holds[number], value))
    return found


def _external_location(tensor: memoryview) -> tuple[str, str | None]:
    """The tensor's name and, when its data is external, the file it names ("" where it names none)."""
    name, location, external = "", None, False
    for number, wire, value in _fields(tensor):
        if number == _TENSOR_NAME and wire == _LENGTH:
            name = bytes(value).decode("utf-8", "replace")
        elif number == _DATA_LOCATION and wire == _VARINT:
            external = external or value == _EXTERNAL
        elif number == _EXTERNAL_DATA and wire == _LENGTH:
            external = True
            entry = {
                field: bytes(text).decode("utf-8", "replace") for field, kind, text in _fields(value) if kind == _LENGTH
            }
            location = entry.get(_ENTRY_VALUE, "") if entry.get(_ENTRY_KEY) == "location" else location
    return name, (location or "") if external else None


def _fields(message: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) of each field of one message: a varint's value, a length-delimited
    field's bytes (a view, not a copy), 0 for a fixed-width one."""
    position, end = 0, len(message)
    while position < end:
        key, position = _varint(message, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(message, position)
        elif wire == _LENGTH:
            length, position = _varint(message, position)
            if position + length > end:
                raise UnreadableModel(f"a field of {length} bytes runs past the end of its message")
            value, position = message[position : position + length], position + length
        elif wire in (_FIXED64, _FIXED32):
            value, position = 0, position + (8 if wire == _FIXED64 else 4)
            if position > end:
                raise UnreadableModel("a fixed-width field runs past the end of its message")
        else:
            raise UnreadableModel(f"field {number} has wire type {wire}, which no ONNX model holds")
        yield number, wire, value


def _varint(message: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 70:
        if position >= len(message):
            raise UnreadableModel("a number runs past the end of its message")
        byte = message[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    raise UnreadableModel("a number of more than 10 bytes")
