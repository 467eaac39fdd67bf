"""The top levels of an OTLP trace export, walked in the protobuf wire format without decoding.

Parsing a whole body with upb costs ~170 bytes of arena per message, and a 2-byte empty span is a
message: a few MiB of empty spans, attributes or events cost gigabytes before any of our code runs.
Walking ``ExportTraceServiceRequest -> ResourceSpans -> ScopeSpans -> spans`` here is one step per
span and allocates nothing per field, so the caller can count spans, set aside oversized ones and
hand upb bounded groups of spans.

Each step is Python (~0.3 µs), where upb would have skipped an unknown field in C: every field the
walk reads, at every level and whatever its number or type, is charged to one
:class:`FieldBudget`, so 64 MiB of 2-byte unknown or repeated fields stops after a bounded number
of steps instead of taking seconds (or, when a range was kept per field, gigabytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

__all__ = [
    "GROUP_SPANS",
    "FieldBudget",
    "WireError",
    "WireLimit",
    "fields",
    "resource",
    "resource_spans",
    "scope_spans",
    "span_fields",
    "span_groups",
]

_LEN: Final = 2
GROUP_SPANS: Final = 16_384
"""Spans per group at most: empty spans are 2 bytes, so bytes alone would allow 500k a group."""


class WireError(ValueError):
    """Not the protobuf wire format (truncated, bad tag, unsupported wire type)."""


class WireLimit(Exception):
    """More fields than the body's :class:`FieldBudget`: the walk stops there."""


class FieldBudget:
    """The steps one body's walk may still take: a field read is one, and the caller charges
    what else it does per entry.

    A field is charged once, when first read: the second pass over a ``ResourceSpans`` (its
    scopes, once its resource is known) re-reads fields already charged, so the walk costs at most
    twice the budget."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def spend(self, count: int = 1) -> None:
        """Charge ``count`` steps (0: only check what is left, after an inline charge)."""
        self.left -= count
        if self.left < 0:
            raise WireLimit(f"more than {self.limit} steps to walk its protobuf fields")


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    try:
        byte = buf[at]
        if byte < 0x80:
            return byte, at + 1
        value, shift = byte & 0x7F, 7
        while True:
            at += 1
            byte = buf[at]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, at + 1
            shift += 7
            if shift > 63:
                raise WireError(f"varint longer than 10 bytes at offset {at}")
    except IndexError:
        raise WireError(f"truncated varint at offset {at}") from None


def _field_at(buf: bytes, at: int, end: int) -> tuple[int, int, int, int]:
    """(field number, wire type, value start, value end) of the field at ``at``. Skipping a
    length-delimited field is one step whatever its length."""
    field_start = at
    tag, at = _varint(buf, at)
    number, wire = tag >> 3, tag & 7
    if number == 0:
        raise WireError(f"field number 0 at offset {field_start}")
    if wire == _LEN:
        size, at = _varint(buf, at)
        value_start, at = at, at + size
    elif wire == 0:
        value_start = at
        _, at = _varint(buf, at)
    elif wire in {1, 5}:
        value_start, at = at, at + (8 if wire == 1 else 4)
    else:
        raise WireError(f"wire type {wire} at offset {field_start}")
    if at > end:
        raise WireError(f"field {number} at offset {field_start} runs past its message")
    return number, wire, value_start, at


def fields(
    buf: bytes, start: int, end: int, budget: FieldBudget | None = None
) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, value end) of each field in a slice,
    each charged to ``budget`` when given.

    For a length-delimited field the value is its payload. Groups (wire types 3, 4: proto2 only,
    never in OTLP) are refused rather than skipped. A one-byte tag and length are read inline."""
    at = start
    while at < end:
        if budget is not None:
            budget.left -= 1
            if budget.left < 0:
                budget.spend(0)
        tag = buf[at]
        if 8 <= tag < 0x80 and tag & 7 == _LEN and at + 1 < end and buf[at + 1] < 0x80:
            value_start = at + 2
            value_end = value_start + buf[at + 1]
            if value_end > end:
                raise WireError(f"field {tag >> 3} at offset {at} runs past its message")
            yield tag >> 3, _LEN, at, value_start, value_end
        else:
            number, wire, value_start, value_end = _field_at(buf, at, end)
            yield number, wire, at, value_start, value_end
        at = value_end


def resource_spans(body: bytes, budget: FieldBudget) -> Iterator[tuple[int, int]]:
    """The payload range of each ``resource_spans`` entry of a request."""
    for number, wire, _, start, end in fields(body, 0, len(body), budget):
        if number == 1 and wire == _LEN:
            yield start, end


def resource(
    body: bytes, start: int, end: int, budget: FieldBudget, max_bytes: int
) -> tuple[bytes, int, bool]:
    """The ``resource`` of the ``ResourceSpans`` payload ``body[start:end]``, its size, and
    whether any of its ``scope_spans`` is not empty (else it has no spans to decode).

    upb merges repeated occurrences of a singular message field, and merging protobuf messages is
    concatenating their encodings: the payloads are joined as they are met, nothing is kept per
    occurrence, and past ``max_bytes`` only the size is added up (the caller rejects it)."""
    data = b""
    joined: bytearray | None = None
    size = 0
    scopes = False
    for number, wire, _, value_start, value_end in fields(body, start, end, budget):
        if wire != _LEN or value_start == value_end:
            continue
        if number == 2:
            scopes = True
        elif number == 1:
            size += value_end - value_start
            if size > max_bytes:
                continue
            if not data:
                data = body[value_start:value_end]
            else:
                joined = bytearray(data) if joined is None else joined
                joined += body[value_start:value_end]
    return (data if joined is None else bytes(joined)), size, scopes


def scope_spans(body: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The payload range of each ``scope_spans`` entry of a ``ResourceSpans`` payload: its second
    pass, after :func:`resource` (the resource may come last), over fields already charged."""
    for number, wire, _, value_start, value_end in fields(body, start, end):
        if number == 2 and wire == _LEN:
            yield value_start, value_end


def span_fields(
    buf: bytes, start: int, end: int, budget: FieldBudget | None = None
) -> Iterator[tuple[int, int, int]]:
    """(field start, payload start, payload end) of each ``spans`` entry of a ScopeSpans payload;
    every field read is charged to ``budget`` when given.

    The hot loop of a large batch: the usual one-byte tag and short length are read inline."""
    at = start
    while at < end:
        if budget is not None:
            budget.spend()
        field_start = at
        if buf[at] == 0x12:  # field 2 (spans), length-delimited
            size = buf[at + 1] if at + 1 < end else 0x80
            if size < 0x80:
                at += 2
            else:
                size, at = _varint(buf, at + 1)
            payload, at = at, at + size
            if at > end:
                raise WireError(f"span at offset {field_start} runs past its scopeSpans")
            yield field_start, payload, at
        else:
            number, wire, value_start, at = _field_at(buf, at, end)
            if number == 2 and wire == _LEN:
                yield field_start, value_start, at


def span_groups(
    buf: bytes,
    start: int,
    end: int,
    *,
    budget: FieldBudget,
    group_bytes: int,
    max_span_bytes: int,
) -> Iterator[tuple[int, int, int, bool]]:
    """Consecutive spans of a ScopeSpans payload in groups: (start, end, index of the group's
    first span, oversized). A group is at most ``group_bytes`` (or one span) and
    ``GROUP_SPANS`` spans, so upb's arena for it stays small; a span of more than
    ``max_span_bytes`` comes alone, ``oversized``, for the caller to reject unparsed.

    The hot loop of a large batch: the usual one-byte tag and short length are read inline,
    nothing is kept per span, and spans are charged to ``budget`` a group at a time."""
    group = at = start  # the group so far is buf[group:at], `pending` spans from index `first`
    first = index = pending = 0
    try:
        while at < end:
            field_start = at
            size = buf[at + 1]
            if buf[at] == 0x12 and (size < 0x80 or buf[at + 2] < 0x80):
                payload = at + 2 if size < 0x80 else at + 3
                size = size if size < 0x80 else (size & 0x7F) | buf[at + 2] << 7
            else:
                number, wire, payload, at = _field_at(buf, at, end)
                if number != 2 or wire != _LEN:  # not a span: the group ends before it
                    budget.spend()
                    if pending:
                        budget.spend(pending)
                        yield group, field_start, first, False
                    group, first, pending = at, index, 0
                    continue
                size = at - payload
            at = payload + size
            if at > end:
                raise WireError(f"span at offset {field_start} runs past its scopeSpans")
            if size > max_span_bytes:
                budget.spend(pending + 1)
                if pending:
                    yield group, field_start, first, False
                yield field_start, at, index, True
                group, first, pending = at, index + 1, 0
            elif pending and (at - group > group_bytes or pending >= GROUP_SPANS):
                budget.spend(pending)
                yield group, field_start, first, False
                group, first, pending = field_start, index, 1
            else:
                pending += 1
            index += 1
    except IndexError:
        raise WireError(f"truncated span at offset {at}") from None
    if pending:
        budget.spend(pending)
        yield group, at, first, False
