"""OTLP trace export bodies -> the few fields the accounting core needs (protobuf here, JSON in
``otlp_json``).

``serve`` never builds SDK ``ReadableSpan`` objects: it reads the generated protobuf classes (upb,
C-backed) directly and hands on, per span, the resource's ``service.name``, the span attributes as a
plain dict, the span name, kind and duration, and its sampling weight from ``tracestate``. A body is
decoded completely before anything is accounted, so a malformed body is rejected as a whole (400)
and the sender's retry cannot double-count half of it.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otel_downstream.exporters.sampling_weight import adjusted_count
from otel_downstream.exporters.span_inputs import AttributeScalar, AttributeValue

__all__ = [
    "KIND_NAMES",
    "SERVICE_NAME_KEY",
    "UNKNOWN_SERVICE",
    "DecodeFailure",
    "DecodedSpan",
    "decode_protobuf",
    "duration_s",
    "homogeneous_array",
    "kind_name",
    "sampling_weight",
]


SERVICE_NAME_KEY: Final = "service.name"
UNKNOWN_SERVICE: Final = "unknown_service"
"""What the OTel resource spec calls a service that did not name itself."""

KIND_NAMES: Final = ("", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
"""``Span.SpanKind`` values 0..5 as the SDK's ``SpanKind`` names them (0, unspecified: "")."""


class DecodedSpan(NamedTuple):
    """One span as the accounting core sees it."""

    service_name: str
    attributes: dict[str, AttributeValue]
    name: str
    kind: str
    weight: float
    duration_s: float | None
    """End minus start time; the LLM call latency when the span is a GenAI call."""
    span_key: bytes | None = None
    """Trace id + span id (raw bytes), so nested spans of one model call count once."""
    parent_key: bytes | None = None
    """Trace id + parent span id, or None for a root span."""
    problem: str = ""
    """The reason label (``invalid_span_kind``, ...) of a span-level field that did not parse, so
    the span is rejected whole, with no other span of the batch (OTLP/JSON only: protobuf has
    types); ``""`` for a readable span."""
    problem_detail: str = ""
    """That field's path, value and what was expected, for the partial-success message."""


class DecodeFailure(ValueError):
    """A malformed body; the message names the field and the value, for the 400 answer."""


def sampling_weight(tracestate: str) -> float:
    """The span's sampling adjusted count; NaN (rejected downstream, counted) when malformed."""
    if not tracestate:
        return 1.0
    try:
        return adjusted_count(tracestate)
    except ValueError:
        return math.nan


def homogeneous_array(items: list[AttributeValue | None]) -> AttributeValue | None:
    """An OTel array attribute holds one scalar type; anything else is not an attribute value."""
    values = [i for i in items if i is not None]
    if not values or isinstance(values[0], tuple):
        return () if not values else None
    first = type(values[0])
    if any(type(v) is not first for v in values):
        return None
    array: AttributeValue = tuple(values)  # type: ignore[assignment]
    return array


def duration_s(start_ns: int, end_ns: int) -> float | None:
    """Span duration in seconds; ``None`` when the times are missing or out of order."""
    return (end_ns - start_ns) / 1e9 if 0 < start_ns <= end_ns else None


def kind_name(kind: int) -> str:
    """``SERVER``/``CLIENT``/... as the SDK's ``SpanKind`` names it; ``""`` when unspecified/unknown."""
    return KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else ""


def _pb_value(value: AnyValue) -> AttributeValue | None:
    which = value.WhichOneof("value")
    if which is None or which in ("kvlist_value", "bytes_value", "string_value_strindex"):
        return None  # not a span attribute type the SDK allows; nothing we read uses them
    if which == "array_value":
        return homogeneous_array([_pb_value(v) for v in value.array_value.values])
    scalar: AttributeScalar = getattr(value, which)
    return scalar


def decode_protobuf(body: bytes) -> list[DecodedSpan]:
    """Decode a binary protobuf body with the generated classes (upb: no per-field Python work)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DecodeFailure(f"body: not a protobuf ExportTraceServiceRequest ({exc})") from None
    out: list[DecodedSpan] = []
    append = out.append
    for resource_spans in request.resource_spans:
        service = UNKNOWN_SERVICE
        for kv in resource_spans.resource.attributes:
            if kv.key == SERVICE_NAME_KEY and kv.value.WhichOneof("value") == "string_value":
                service = kv.value.string_value or UNKNOWN_SERVICE
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes: dict[str, AttributeValue] = {}
                for kv in span.attributes:
                    # Scalars inline: this loop is most of serve's CPU time per span.
                    any_value = kv.value
                    which = any_value.WhichOneof("value")
                    if which == "string_value":
                        attributes[kv.key] = any_value.string_value
                    elif which == "int_value":
                        attributes[kv.key] = any_value.int_value
                    elif which == "double_value":
                        attributes[kv.key] = any_value.double_value
                    elif which == "bool_value":
                        attributes[kv.key] = any_value.bool_value
                    else:
                        value = _pb_value(any_value)
                        if value is not None:
                            attributes[kv.key] = value
                trace_id = span.trace_id
                parent_id = span.parent_span_id
                append(
                    DecodedSpan(
                        service,
                        attributes,
                        span.name,
                        kind_name(span.kind),
                        sampling_weight(span.trace_state),
                        duration_s(span.start_time_unix_nano, span.end_time_unix_nano),
                        trace_id + span.span_id,
                        trace_id + parent_id if parent_id else None,
                    )
                )
    return out
