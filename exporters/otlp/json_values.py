"""OTLP/JSON's encoding of values, read strictly: 64-bit integers as decimal strings or numbers,
doubles as numbers or ``"NaN"``/``"Infinity"``/``"-Infinity"``, lowerCamelCase keys with the proto
names accepted too, and attribute values (``AnyValue``) with arrays one level deep. Every problem
names the field path and the value; an attribute value that does not parse becomes NaN, which every
numeric check refuses (see ``json_decode``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from otel_downstream.exporters.accounting.span_inputs import AttributeScalar, AttributeValue
from otel_downstream.exporters.otlp.decoded import DecodeFailure, homogeneous_array

__all__ = [
    "BAD_VALUE",
    "INT64_MAX",
    "INT64_MIN",
    "SPECIAL_DOUBLES",
    "UINT64_MAX",
    "json_bool",
    "json_double",
    "json_field",
    "json_int",
    "json_objects",
    "json_string",
    "json_value",
    "shown_value",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
SPECIAL_DOUBLES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
BAD_VALUE: Final = math.nan
"""Stands in for an attribute value that does not parse: refused by every numeric check."""


def json_field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Read a field by its JSON (lowerCamelCase) name, falling back to the proto field name."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def json_objects(value: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Items of a repeated message field; absent or null means empty (proto3 JSON)."""
    if value is None:
        return
    if not isinstance(value, list):
        raise DecodeFailure(f"{where}={shown_value(value)}: expected an array")
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise DecodeFailure(f"{here}={shown_value(item)}: expected an object")
        yield here, item


def shown_value(value: Any) -> str:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def json_int(value: Any, where: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    if isinstance(value, bool):
        raise DecodeFailure(f"{where}={shown_value(value)}: expected an integer")
    if isinstance(value, str):
        try:
            number = int(value.strip(), 10)
        except ValueError:
            raise DecodeFailure(f"{where}={shown_value(value)}: expected an integer") from None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise DecodeFailure(f"{where}={shown_value(value)}: expected an integer")
    if not lo <= number <= hi:
        raise DecodeFailure(f"{where}={shown_value(value)}: expected an integer in [{lo}, {hi}]")
    return number


def json_double(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        special = SPECIAL_DOUBLES.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise DecodeFailure(f"{where}={shown_value(value)}: expected a number")


def json_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DecodeFailure(f"{where}={shown_value(value)}: expected a string")
    return value


def json_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise DecodeFailure(f"{where}={shown_value(value)}: expected true or false")
    return value


_SCALARS: Final[dict[str, tuple[str, Callable[[Any, str], AttributeScalar]]]] = {
    "stringValue": ("string_value", json_string),
    "boolValue": ("bool_value", json_bool),
    "intValue": ("int_value", json_int),
    "doubleValue": ("double_value", json_double),
}


def json_value(value: Any, where: str, depth: int = 0) -> AttributeValue | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodeFailure(f"{where}={shown_value(value)}: expected an AnyValue object")
    for camel, (snake, parse) in _SCALARS.items():
        raw = json_field(value, camel, snake)
        if raw is not None:
            return parse(raw, f"{where}.{camel}")
    array = json_field(value, "arrayValue", "array_value")
    if array is not None:
        if not isinstance(array, dict) or depth > 0:
            raise DecodeFailure(
                f"{where}.arrayValue={shown_value(array)}: expected an ArrayValue object"
            )
        return homogeneous_array(
            [
                json_value(item, here, depth + 1)
                for here, item in json_objects(array.get("values"), f"{where}.arrayValue.values")
            ]
        )
    return None  # kvlistValue, bytesValue, empty: not span attribute types, ignored
