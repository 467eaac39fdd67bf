"""Spans upb has parsed -> :class:`DecodedSpan`: the hot loop of ``serve``'s protobuf decoding.

Only the keys the accounting reads (``ACCOUNTED_KEYS``) are materialised: every other attribute
costs a look at its key, and its value is never converted, whatever it holds (a 200k-item array,
a nested kvlist). A span's attribute count is checked before they are read (``len`` is O(1) in
upb), and every attribute parsed is charged to the body's :class:`AttributeAllowance`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from opentelemetry.proto.common.v1.common_pb2 import ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_downstream.agent.attributes import ACCOUNTED_KEYS
from otel_downstream.exporters.accounting.span_inputs import AttributeScalar, AttributeValue
from otel_downstream.exporters.otlp.decoded import (
    ARRAY_TOO_LONG,
    MAX_ARRAY_VALUES,
    MAX_SPAN_ATTRIBUTES,
    SERVICE_NAME_KEY,
    TOO_MANY_ATTRIBUTES,
    DecodedSpan,
    array_too_long,
    attribute_allowance,
    duration_s,
    kind_name,
    sampling_weight,
    too_many_attributes,
    too_many_in_body,
)

__all__ = ["AttributeAllowance", "decode_spans", "resource_service"]

_SCALARS: Final = frozenset({"string_value", "int_value", "double_value", "bool_value"})


class AttributeAllowance:
    """The attributes one body may still hold (:func:`attribute_allowance`)."""

    __slots__ = ("left", "limit", "max_spans")

    def __init__(self, max_spans: int) -> None:
        self.max_spans = max_spans
        self.limit = self.left = attribute_allowance(max_spans)

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise too_many_in_body(self.limit, self.max_spans)


def _pb_array(array: ArrayValue) -> AttributeValue | None:
    """An OTel array attribute: scalars of one type. A nested array is not one (it is not read);
    kvlist, bytes and empty items are left out, as upb's other values are."""
    values: list[AttributeScalar] = []
    for item in array.values:
        which = item.WhichOneof("value")
        if which in _SCALARS:
            values.append(getattr(item, which))
        elif which == "array_value":
            return None
    if values and any(type(v) is not type(values[0]) for v in values):
        return None
    return tuple(values)  # type: ignore[return-value]


def _array_too_long(kvs: Iterable[KeyValue], where: str) -> str:
    """The detail naming the first accounted attribute whose array is too long."""
    for position, kv in enumerate(kvs):
        if kv.key in ACCOUNTED_KEYS and kv.value.WhichOneof("value") == "array_value":
            size = len(kv.value.array_value.values)
            if size > MAX_ARRAY_VALUES:
                return array_too_long(f"{where}.attributes[{position}]", kv.key, size)
    return f"{where}: an array of more than {MAX_ARRAY_VALUES} values"


def resource_service(attributes: Iterable[KeyValue], default: str) -> str:
    """The resource's ``service.name`` (the last one, as upb merges repeated resources)."""
    service = default
    for kv in attributes:
        if kv.key == SERVICE_NAME_KEY and kv.value.WhichOneof("value") == "string_value":
            service = kv.value.string_value or default
    return service


def decode_spans(
    spans: Iterable[Span],
    service: str,
    append: Callable[[DecodedSpan], None],
    allowance: AttributeAllowance,
    *,
    where: str,
    first: int,
) -> None:
    """Append each span of ``spans`` (``where[first]``, ``where[first + 1]``, ...) decoded."""
    keys = ACCOUNTED_KEYS
    for index, span in enumerate(spans, first):
        kvs = span.attributes
        count = len(kvs)
        allowance.left -= count
        if allowance.left < 0:
            allowance.spend(0)
        problem = detail = ""
        attributes: dict[str, AttributeValue] = {}
        if count > MAX_SPAN_ATTRIBUTES:
            problem, detail = TOO_MANY_ATTRIBUTES, too_many_attributes(f"{where}[{index}]", count)
        else:
            for kv in kvs:
                key = kv.key
                if key not in keys:
                    continue
                # Scalars inline: this loop is most of serve's CPU time per span.
                any_value = kv.value
                which = any_value.WhichOneof("value")
                if which == "string_value":
                    attributes[key] = any_value.string_value
                elif which == "int_value":
                    attributes[key] = any_value.int_value
                elif which == "double_value":
                    attributes[key] = any_value.double_value
                elif which == "bool_value":
                    attributes[key] = any_value.bool_value
                elif which == "array_value":  # other kinds are not span attribute types
                    array = any_value.array_value
                    if len(array.values) > MAX_ARRAY_VALUES:
                        problem = ARRAY_TOO_LONG
                        detail = _array_too_long(kvs, f"{where}[{index}]")
                        attributes = {}
                        break
                    value = _pb_array(array)
                    if value is not None:
                        attributes[key] = value
        trace_id = span.trace_id
        parent_id = span.parent_span_id
        append(
            DecodedSpan(
                service,
                attributes,
                "" if problem else span.name,
                "" if problem else kind_name(span.kind),
                sampling_weight(span.trace_state),
                None if problem else duration_s(span.start_time_unix_nano, span.end_time_unix_nano),
                None if problem else trace_id + span.span_id,
                trace_id + parent_id if parent_id and not problem else None,
                problem,
                detail,
            )
        )
