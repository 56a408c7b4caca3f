"""JSON-like Python values <-> `google.protobuf.Value`/`Struct`, for both ends of gRPC.

`Value` numbers are doubles: an integral one is read back as an int (`12.0` -> `12`),
as JSON's `12` would be, so a reference means the same over HTTP and gRPC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

_EXACT_INT = 2**53  # doubles beyond this are not exact integers


def from_value(value: struct_pb2.Value) -> Any:
    """A `Value` as a Python value: None, bool, int or float, str, list or dict."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number) and number.is_integer() and abs(number) <= _EXACT_INT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [from_value(element) for element in value.list_value.values]
    if kind == "struct_value":
        return from_struct(value.struct_value)
    return None  # null_value, or unset


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: from_value(value) for key, value in struct.fields.items()}


def to_value(value: Any) -> struct_pb2.Value:
    """A JSON-like value as a `Value` (tuples as lists; anything else as its text)."""
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = float(value)
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list | tuple):
        out.list_value.values.extend(to_value(element) for element in value)
    elif isinstance(value, Mapping):
        out.struct_value.CopyFrom(to_struct(value))
    else:
        out.string_value = str(value)
    return out


def to_struct(mapping: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    for key, element in mapping.items():
        out.fields[str(key)].CopyFrom(to_value(element))
    return out
