"""Why upb refused one span (or resource) of a body, and where.

upb stops at the first problem and does not say where it is. The answer needs both: a broken
encoding (a length past its parent, a truncated varint, a bad wire type) means the body is not
protobuf and is refused whole, as a Collector would; a span that is valid protobuf but that upb
will not take (a string that is not UTF-8, nesting past upb's depth limit) is rejected alone, and
the partial-success message names its field. The field is searched for in Python, so the search is
bounded (a hostile span holds 500k fields): past :data:`SEARCH_FIELDS` fields of one message, or
:data:`SEARCH_FIELDS_PER_BODY` over a body, the kind of problem is taken from upb's own error text,
and only the span is named.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from otel_downstream.exporters.otlp.wire import WireError, fields

__all__ = ["MAX_DEPTH", "SEARCH_FIELDS", "SEARCH_FIELDS_PER_BODY", "Refusal", "Search"]

MAX_DEPTH: Final = 100
"""upb's default depth limit: messages nested below the one parsed (a span is one below the
ScopeSpans it is parsed in)."""
SEARCH_FIELDS: Final = 4096
"""Fields read to locate the problem of one message: a real span with a bad string has tens."""
SEARCH_FIELDS_PER_BODY: Final = 65_536
"""Fields read to locate problems over a body: the answer shows the first problem only."""
_PATH_SHOWN: Final = 6
"""Path components shown: a nesting problem's path is a hundred long."""
_LEN: Final = 2
_STRING: Final = FieldDescriptor.TYPE_STRING

FRAMING: Final = "framing"
INVALID_UTF8: Final = "invalid_utf8"
TOO_DEEP: Final = "too_deep"
UNPARSABLE: Final = "unparsable"


class Refusal(NamedTuple):
    """What is wrong with a message upb refused."""

    kind: str
    """:data:`FRAMING` (the body is not protobuf), :data:`INVALID_UTF8`, :data:`TOO_DEEP` or
    :data:`UNPARSABLE` (upb's reason not recognised)."""
    path: str
    """``.attributes[2].value.string_value``, or ``""`` when not located."""
    what: str
    """The problem in words, for the answer."""


class _Exhausted(Exception):
    pass


class _Found(NamedTuple):
    kind: str
    path: list[str]
    what: str


class Search:
    """The field search of one body, with what is left of its budget."""

    def __init__(self, fields_per_body: int = SEARCH_FIELDS_PER_BODY) -> None:
        self.left_in_body = fields_per_body
        self._left = 0

    def refusal(
        self, buf: bytes, start: int, end: int, message: Descriptor, *, depth: int, error: str
    ) -> Refusal:
        """Why upb refused the ``message`` encoded in ``buf[start:end]`` with ``error``; ``depth``
        is how far below the message upb parsed it is."""
        self._left = min(SEARCH_FIELDS, self.left_in_body)
        try:
            found = self._search(buf, start, end, message, depth)
        except _Exhausted:
            found = None
        self.left_in_body -= min(SEARCH_FIELDS, self.left_in_body) - max(self._left, 0)
        if found is not None:
            path = found.path
            if len(path) > _PATH_SHOWN + 1:
                path = [*path[:_PATH_SHOWN], "..."]
            return Refusal(found.kind, "".join(f".{name}" for name in path), found.what)
        return _from_upb(error)

    def _search(
        self, buf: bytes, start: int, end: int, message: Descriptor, depth: int
    ) -> _Found | None:
        """The first problem in upb's parse order (depth first), or None."""
        by_number = message.fields_by_number
        seen: dict[int, int] = {}
        try:
            for number, wire, _, value_start, value_end in fields(buf, start, end):
                self._left -= 1
                if self._left < 0:
                    raise _Exhausted
                field = by_number.get(number)
                if field is None or wire != _LEN:  # upb skips it as an unknown field
                    continue
                index = seen.get(number, 0)
                seen[number] = index + 1
                name = f"{field.name}[{index}]" if field.is_repeated else field.name
                if field.type == _STRING:
                    try:
                        buf[value_start:value_end].decode("utf-8")
                    except UnicodeDecodeError:
                        return _Found(INVALID_UTF8, [name], "not valid UTF-8")
                elif field.message_type is not None:
                    if depth + 1 > MAX_DEPTH:
                        what = f"nested deeper than {MAX_DEPTH} messages (upb's limit)"
                        return _Found(TOO_DEEP, [name], what)
                    inner = self._search(buf, value_start, value_end, field.message_type, depth + 1)
                    if inner is not None:
                        return _Found(inner.kind, [name, *inner.path], inner.what)
        except WireError as exc:
            return _Found(FRAMING, [], str(exc))
        return None


def _from_upb(error: str) -> Refusal:
    """The problem as upb's error text names it (recent upb: "String field had bad UTF-8",
    "Exceeded upb_DecodeOptions_MaxDepth", "Wire format was corrupt"); older ones say nothing,
    and the span alone is rejected."""
    if "UTF-8" in error:
        return Refusal(INVALID_UTF8, "", f"a string is not valid UTF-8 ({_searched()})")
    if "MaxDepth" in error:
        what = f"nested deeper than {MAX_DEPTH} messages, upb's limit ({_searched()})"
        return Refusal(TOO_DEEP, "", what)
    if "corrupt" in error:
        return Refusal(FRAMING, "", error)
    return Refusal(UNPARSABLE, "", f"refused by upb: {error}")


def _searched() -> str:
    return f"field not searched past {SEARCH_FIELDS} fields"
