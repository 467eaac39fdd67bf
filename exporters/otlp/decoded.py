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
    "KIND_NAMES",
    "SERVICE_NAME_KEY",
    "UNKNOWN_SERVICE",
    "DecodeFailure",
    "DecodedSpan",
    "TooManySpans",
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
