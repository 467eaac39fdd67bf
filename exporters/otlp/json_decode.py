"""OTLP/JSON trace export bodies -> :class:`~otel_downstream.exporters.otlp.decode.DecodedSpan`.

OTLP/JSON is protobuf's JSON mapping with the spec's deviations: lowerCamelCase keys (the proto
names are accepted too), trace and span ids as hex strings (not base64), 64-bit integers as decimal
strings or numbers, enums as integers (names are accepted too), doubles as numbers or
``"NaN"``/``"Infinity"``/``"-Infinity"``. The body's structure is checked before anything is
accounted (arrays where arrays belong, objects where objects do, attribute keys), and every
problem names the field path and the value, for the 400 answer.

One span must not cost the batch, so three things are per span instead:
- trace and span ids are not read: the footprint never uses them, so a malformed one is ignored;
- a span-level field that does not parse (``kind: "CLIENT"``: OTLP/JSON allows only the enum's
  integer, though ``SPAN_KIND_CLIENT`` is taken; a ``startTimeUnixNano`` that is not an integer; a
  ``name`` that is not a string) leaves nothing of the span to trust: that span is rejected,
  counted as ``invalid_span_<field>`` and reported through OTLP partial success with the field's
  path and value;
- an attribute value that does not parse as its declared type (``intValue: "1e3"``, ``1000.5``, an
  integer beyond int64, ``doubleValue: "lots"``) becomes NaN, which every numeric check of
  ``span_inputs`` refuses. A span whose footprint reads that attribute is then rejected with the
  attribute's own reason (``invalid_bytes``, ``invalid_tokens``, ...) and reported through OTLP
  partial success, as protobuf reports a NaN or negative size; the rest of the batch counts. An
  attribute the footprint does not read changes nothing, as with protobuf: only the keys of
  ``ACCOUNTED_KEYS`` are read at all, the others' values are skipped unparsed;
- more than ``MAX_SPAN_ATTRIBUTES`` attributes, or an accounted array of more than
  ``MAX_ARRAY_VALUES`` values, rejects the span (``too_many_attributes``, ``array_too_long``).
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from typing import Any, Final

from otel_downstream.agent.attributes import ACCOUNTED_KEYS
from otel_downstream.exporters.accounting.span_inputs import AttributeValue
from otel_downstream.exporters.otlp.decode import MAX_SPANS_PER_EXPORT
from otel_downstream.exporters.otlp.decoded import (
    ARRAY_TOO_LONG,
    KIND_NAMES,
    MAX_ARRAY_VALUES,
    MAX_SPAN_ATTRIBUTES,
    SERVICE_NAME_KEY,
    TOO_MANY_ATTRIBUTES,
    UNKNOWN_SERVICE,
    DecodedSpan,
    DecodeFailure,
    TooManySpans,
    array_too_long,
    duration_s,
    kind_name,
    sampling_weight,
    too_many_attributes,
)
from otel_downstream.exporters.otlp.json_values import (
    BAD_VALUE,
    UINT64_MAX,
    json_field,
    json_int,
    json_objects,
    json_string,
    json_value,
    shown_value,
)
from otel_downstream.exporters.otlp.pb_spans import AttributeAllowance

__all__ = ["MAX_JSON_VALUES", "decode_json"]

MAX_JSON_VALUES: Final = 2_500_000
"""JSON values per body, counted before parsing (``{``, ``[`` and ``,`` bytes: an upper bound).
``json.loads`` alone costs up to ~150 bytes per value counted (36 for ``{}``, 133 for
``{"intValue":"1000"}``, 149 for ``{"k":"<38 characters>"}``, body included), so this keeps its
peak near 350 MiB for a 64 MiB body (4M allowed 430-670 MiB); ~45k realistic spans (~55 values
each) still fit."""

_RESOURCE_KEYS: Final = frozenset({SERVICE_NAME_KEY})
_KIND_BY_ENUM_NAME: Final = {f"SPAN_KIND_{n or 'UNSPECIFIED'}": i for i, n in enumerate(KIND_NAMES)}


def _json_attributes(
    value: Any, where: str, keys: Container[str], allowance: AttributeAllowance
) -> tuple[dict[str, AttributeValue], str, str]:
    """The attributes of ``keys`` (others are skipped unread), and the problem that rejects the
    span alone (too many of them, an array too long), with its detail."""
    if isinstance(value, list):
        allowance.spend(len(value))
        if len(value) > MAX_SPAN_ATTRIBUTES:
            return (
                {},
                TOO_MANY_ATTRIBUTES,
                too_many_attributes(where[: -len(".attributes")], len(value)),
            )
    out: dict[str, AttributeValue] = {}
    for here, kv in json_objects(value, where):
        key = json_string(kv.get("key"), f"{here}.key")
        if key not in keys:
            continue
        raw = kv.get("value")
        size = _array_size(raw)
        if size > MAX_ARRAY_VALUES:
            return {}, ARRAY_TOO_LONG, array_too_long(here, key, size)
        try:
            parsed = json_value(raw, f"{here}.value")
        except DecodeFailure:  # one bad value rejects (at most) its span, not the batch
            parsed = BAD_VALUE
        if parsed is not None:
            out[key] = parsed
    return out, "", ""


def _array_size(value: Any) -> int:
    """How many values an ``arrayValue`` holds (0 when ``value`` is not one)."""
    if not isinstance(value, dict):
        return 0
    array = json_field(value, "arrayValue", "array_value")
    values = array.get("values") if isinstance(array, dict) else None
    return len(values) if isinstance(values, list) else 0


def _json_kind(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value in _KIND_BY_ENUM_NAME:
        return KIND_NAMES[_KIND_BY_ENUM_NAME[value]]
    return kind_name(json_int(value, where, lo=-(2**31), hi=2**31 - 1))


_SpanFields = tuple[str, str, float, float | None, bytes | None, bytes | None, str, str]


def _span_fields(span: Mapping[str, Any], where: str) -> _SpanFields:
    """Name, kind, weight, duration, keys and problem of one span; a field that does not parse
    rejects this span only (``problem`` is ``invalid_span_<field>``), never the batch."""
    weight = 1.0  # the span's own once its traceState is read: a rejection counts as it would
    try:
        field = "trace_state"
        state = json_field(span, "traceState", "trace_state")
        weight = (
            1.0 if state is None else sampling_weight(json_string(state, f"{where}.traceState"))
        )
        field = "name"
        name = span.get("name")
        name = "" if name is None else json_string(name, f"{where}.name")
        field = "kind"
        kind = _json_kind(span.get("kind"), f"{where}.kind")
        field = "start_time"
        start = json_field(span, "startTimeUnixNano", "start_time_unix_nano")
        start_ns = (
            0 if start is None else json_int(start, f"{where}.startTimeUnixNano", 0, UINT64_MAX)
        )
        field = "end_time"
        end = json_field(span, "endTimeUnixNano", "end_time_unix_nano")
        end_ns = 0 if end is None else json_int(end, f"{where}.endTimeUnixNano", 0, UINT64_MAX)
    except DecodeFailure as exc:
        return "", "", weight, None, *_span_keys(span), f"invalid_span_{field}", str(exc)
    return name, kind, weight, duration_s(start_ns, end_ns), *_span_keys(span), "", ""


def decode_json(
    body: bytes, *, max_spans: int = MAX_SPANS_PER_EXPORT, max_values: int = MAX_JSON_VALUES
) -> list[DecodedSpan]:
    """Decode an OTLP/JSON body; every problem names the field path and the value."""
    values = body.count(b"{") + body.count(b"[") + body.count(b",")
    if values > max_values:
        raise TooManySpans(
            f"body: about {values} JSON values, more than max_json_values={max_values}; "
            "send smaller batches"
        )
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeFailure(f"body: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise DecodeFailure(
            f"body={shown_value(document)}: expected an ExportTraceServiceRequest object"
        )
    out: list[DecodedSpan] = []
    allowance = AttributeAllowance(max_spans)
    for rs_where, rs in json_objects(
        json_field(document, "resourceSpans", "resource_spans"), "resourceSpans"
    ):
        resource = rs.get("resource")
        service = UNKNOWN_SERVICE
        if resource is not None:
            if not isinstance(resource, dict):
                raise DecodeFailure(
                    f"{rs_where}.resource={shown_value(resource)}: expected an object"
                )
            attrs, _, _ = _json_attributes(
                resource.get("attributes"),
                f"{rs_where}.resource.attributes",
                _RESOURCE_KEYS,
                allowance,
            )
            named = attrs.get(SERVICE_NAME_KEY)
            if isinstance(named, str) and named:
                service = named
        for ss_where, ss in json_objects(
            json_field(rs, "scopeSpans", "scope_spans"), f"{rs_where}.scopeSpans"
        ):
            for where, span in json_objects(ss.get("spans"), f"{ss_where}.spans"):
                if len(out) >= max_spans:
                    raise TooManySpans(
                        f"body: more than {max_spans} spans (max_spans_per_export); "
                        "send smaller batches"
                    )
                attrs, problem, detail = _json_attributes(
                    span.get("attributes"), f"{where}.attributes", ACCOUNTED_KEYS, allowance
                )
                fields = _span_fields(span, where)
                if problem and not fields[-2]:
                    fields = ("", "", fields[2], None, None, None, problem, detail)
                out.append(DecodedSpan(service, attrs, *fields))
    return out


def _span_keys(span: Mapping[str, Any]) -> tuple[bytes | None, bytes | None]:
    """(trace id + span id, trace id + parent span id) as bytes, as the protobuf path has them.

    Only compared with each other, to count a model call recorded by nested spans once; an id
    that is not hex (OTLP/JSON says hex) gives None, and that span simply counts."""
    trace_id = _hex_id(json_field(span, "traceId", "trace_id"))
    if trace_id is None:
        return None, None
    span_id = _hex_id(json_field(span, "spanId", "span_id"))
    parent_id = _hex_id(json_field(span, "parentSpanId", "parent_span_id"))
    return (
        None if span_id is None else trace_id + span_id,
        None if parent_id is None else trace_id + parent_id,
    )


def _hex_id(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
