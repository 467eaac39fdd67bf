"""What a decoded span is, whichever encoding it came in: the record both OTLP decoders produce
(``decode`` for protobuf, ``json_decode`` for JSON), the refusals they raise, and the small
readings they share (kind names, durations, sampling weights, attribute arrays).
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

from otel_downstream.exporters.accounting.sampling_weight import adjusted_count
from otel_downstream.exporters.accounting.span_inputs import AttributeValue

__all__ = [
    "ARRAY_TOO_LONG",
    "ATTRIBUTES_PER_SPAN",
    "KIND_NAMES",
    "MAX_ARRAY_VALUES",
    "MAX_SPAN_ATTRIBUTES",
    "SERVICE_NAME_KEY",
    "TOO_MANY_ATTRIBUTES",
    "UNKNOWN_SERVICE",
    "DecodeFailure",
    "DecodedSpan",
    "TooManySpans",
    "array_too_long",
    "attribute_allowance",
    "duration_s",
    "homogeneous_array",
    "kind_name",
    "sampling_weight",
    "too_many_attributes",
    "too_many_in_body",
]


SERVICE_NAME_KEY: Final = "service.name"
UNKNOWN_SERVICE: Final = "unknown_service"
"""What the OTel resource spec calls a service that did not name itself."""

MAX_SPAN_ATTRIBUTES: Final = 1024
"""Attributes of one span: more rejects that span alone (``too_many_attributes``). The SDK's
default limit is 128; a span of 524k empty attributes (1 MiB) took ~0.3 s of CPU to read."""
MAX_ARRAY_VALUES: Final = 1024
"""Values of an array under an accounted key: more rejects the span alone (``array_too_long``).
Arrays under other keys are never read, whatever their length."""
ATTRIBUTES_PER_SPAN: Final = 32
"""A body's attribute allowance, per span of ``max_spans_per_export`` (+ ``MAX_SPAN_ATTRIBUTES``):
every attribute of every span (and resource) decoded is charged, read or skipped, so a body costs
at most ~1.5 s of attribute work (~0.24 µs each: upb's parse and our look at its key) whatever it
holds; 200,000 spans of 30 attributes fit (6.0M of 6.4M). Past it the body is refused (413)."""
TOO_MANY_ATTRIBUTES: Final = "too_many_attributes"
ARRAY_TOO_LONG: Final = "array_too_long"

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

    status: int = 400
    """The HTTP status to answer with."""


class TooManySpans(DecodeFailure):
    """More spans in one export than ``max_spans_per_export``: well-formed, but refused whole."""

    status = 413


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


def attribute_allowance(max_spans: int) -> int:
    """The attributes one body may hold: :data:`ATTRIBUTES_PER_SPAN` per span of ``max_spans``."""
    return ATTRIBUTES_PER_SPAN * max_spans + MAX_SPAN_ATTRIBUTES


def too_many_attributes(where: str, count: int) -> str:
    """The partial-success detail of a span rejected for ``count`` attributes."""
    return f"{where}: {count} attributes, more than {MAX_SPAN_ATTRIBUTES}"


def array_too_long(where: str, key: str, count: int) -> str:
    """The partial-success detail of a span rejected for an accounted array of ``count`` values."""
    return f"{where}: {key} holds {count} values, more than {MAX_ARRAY_VALUES}"


def too_many_in_body(allowance: int, max_spans: int) -> TooManySpans:
    """The refusal of a body holding more attributes than its allowance."""
    return TooManySpans(
        f"body: more than {allowance} attributes ({ATTRIBUTES_PER_SPAN} per span of "
        f"max_spans_per_export={max_spans}, + {MAX_SPAN_ATTRIBUTES}); send smaller batches"
    )
