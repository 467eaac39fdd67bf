"""The top levels of an OTLP trace export, walked in the protobuf wire format without decoding.

Parsing a whole body with upb costs ~170 bytes of arena per message, and a 2-byte empty span is a
message: a few MiB of empty spans, attributes or events cost gigabytes before any of our code runs.
Walking ``ExportTraceServiceRequest -> ResourceSpans -> ScopeSpans -> spans`` here is one step per
span and allocates nothing per span, so the caller can count spans, set aside oversized ones and
hand upb bounded groups of spans. The walk also finds which string field of a message upb refused
as invalid UTF-8, so that one span is rejected instead of the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = [
    "WireError",
    "WireLimit",
    "bad_utf8_field",
    "fields",
    "resource_spans",
    "span_fields",
    "span_groups",
]

_LEN: Final = 2
_GROUP_SPANS: Final = 16_384
"""Spans per group at most: empty spans are 2 bytes, so bytes alone would allow 500k a group."""
_MAX_DEPTH: Final = 100
"""upb's default recursion limit: deeper messages are not protobuf we accept anyway."""


class WireError(ValueError):
    """Not the protobuf wire format (truncated, bad tag, unsupported wire type)."""


class WireLimit(Exception):
    """More resource or scope entries than the caller's limit: the walk stops there."""


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


def fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, value end) of each field in a slice.

    For a length-delimited field the value is its payload. Groups (wire types 3, 4: proto2 only,
    never in OTLP) are refused rather than skipped."""
    at = start
    while at < end:
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
        yield number, wire, field_start, value_start, at


def resource_spans(
    body: bytes, max_entries: int
) -> Iterator[tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Per ``ResourceSpans``: the payload ranges of its ``resource`` (proto merges repeats) and of
    its ``scope_spans``. Raises :class:`WireLimit` past ``max_entries`` resource + scope entries,
    so a body of millions of empty entries costs neither time nor memory."""
    entries = 0
    for number, wire, _, start, end in fields(body, 0, len(body)):
        if number != 1 or wire != _LEN:
            continue
        entries += 1
        resource: list[tuple[int, int]] = []
        scopes: list[tuple[int, int]] = []
        for inner, inner_wire, _, value_start, value_end in fields(body, start, end):
            if inner_wire != _LEN or inner not in (1, 2):
                continue
            if inner == 1:
                resource.append((value_start, value_end))
            else:
                entries += 1
                scopes.append((value_start, value_end))
            if entries > max_entries:
                raise WireLimit(f"more than {max_entries} resourceSpans + scopeSpans entries")
        if entries > max_entries:
            raise WireLimit(f"more than {max_entries} resourceSpans + scopeSpans entries")
        yield resource, scopes


def span_fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field start, payload start, payload end) of each ``spans`` entry of a ScopeSpans payload.

    The hot loop of a large batch: the usual one-byte tag and short length are read inline."""
    at = start
    while at < end:
        if buf[at] == 0x12:  # field 2 (spans), length-delimited
            field_start = at
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
            number, wire, field_start, value_start, value_end = next(fields(buf, at, end))
            at = value_end
            if number == 2 and wire == _LEN:
                yield field_start, value_start, value_end


def span_groups(
    buf: bytes, start: int, end: int, *, group_bytes: int, max_span_bytes: int
) -> Iterator[tuple[int, int, int, bool]]:
    """Consecutive spans of a ScopeSpans payload in groups: (start, end, index of the group's
    first span, oversized). A group is at most ``group_bytes`` (or one span) and
    ``_GROUP_SPANS`` spans, so upb's arena for it stays small; a span of more than
    ``max_span_bytes`` comes alone, ``oversized``, for the caller to reject unparsed.

    The hot loop of a large batch: the usual one-byte tag and short length are read inline, and
    nothing is kept per span."""
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
                number, wire, _, payload, at = next(fields(buf, at, end))
                if number != 2 or wire != _LEN:  # not a span: the group ends before it
                    if pending:
                        yield group, field_start, first, False
                    group, first, pending = at, index, 0
                    continue
                size = at - payload
            at = payload + size
            if at > end:
                raise WireError(f"span at offset {field_start} runs past its scopeSpans")
            if size > max_span_bytes:
                if pending:
                    yield group, field_start, first, False
                yield field_start, at, index, True
                group, first, pending = at, index + 1, 0
            elif pending and (at - group > group_bytes or pending >= _GROUP_SPANS):
                yield group, field_start, first, False
                group, first, pending = field_start, index, 1
            else:
                pending += 1
            index += 1
    except IndexError:
        raise WireError(f"truncated span at offset {at}") from None
    if pending:
        yield group, at, first, False


def bad_utf8_field(
    buf: bytes, start: int, end: int, message: Descriptor, depth: int = 0
) -> str | None:
    """The path (``attributes[2].value.string_value``) of the first string field that is not
    valid UTF-8 in this message, or None (including when the bytes are not protobuf at all)."""
    if depth > _MAX_DEPTH:
        return None
    seen: dict[int, int] = {}
    try:
        for number, wire, _, value_start, value_end in fields(buf, start, end):
            field = message.fields_by_number.get(number)
            if field is None or wire != _LEN:
                continue
            index = seen.get(number, 0)
            seen[number] = index + 1
            name = f"{field.name}[{index}]" if field.is_repeated else field.name
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    buf[value_start:value_end].decode("utf-8")
                except UnicodeDecodeError:
                    return name
            elif field.message_type is not None:
                inner = bad_utf8_field(buf, value_start, value_end, field.message_type, depth + 1)
                if inner is not None:
                    return f"{name}.{inner}"
    except WireError:
        return None
    return None
