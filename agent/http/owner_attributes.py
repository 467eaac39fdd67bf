"""What the owner of an annotated SERVER span has already set, in our attribute names.

When contrib instrumentation (or a framework) owns the request's span, the request core only adds to
it. Apart from the core because this is a policy of its own: either semantic-convention generation
counts as set, so we never write a second value beside the owner's, and the answer is cached per
set of names so annotating stays cheap.
"""

from __future__ import annotations

from opentelemetry.trace import Span

from otel_downstream.agent.attributes import (
    HTTP_HOST_OLD,
    HTTP_METHOD_OLD,
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HTTP_SCHEME_OLD,
    HTTP_STATUS_CODE_OLD,
    SERVER_ADDRESS,
    URL_SCHEME,
)

__all__ = ["NOTHING_SET", "owner_names"]


# What the owner of an annotated span may set itself, under either semconv name -> our name.
_OWNER_SETS: dict[str, str] = {
    HTTP_REQUEST_METHOD: HTTP_REQUEST_METHOD,
    HTTP_METHOD_OLD: HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE: HTTP_RESPONSE_STATUS_CODE,
    HTTP_STATUS_CODE_OLD: HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE: HTTP_ROUTE,
    URL_SCHEME: URL_SCHEME,
    HTTP_SCHEME_OLD: URL_SCHEME,
    SERVER_ADDRESS: SERVER_ADDRESS,
    HTTP_HOST_OLD: SERVER_ADDRESS,
}
_OWNER_KEYS = frozenset(_OWNER_SETS)
NOTHING_SET: frozenset[str] = frozenset()
_OWNER_NAMES: dict[frozenset[str], frozenset[str]] = {NOTHING_SET: NOTHING_SET}


def owner_names(span: Span) -> frozenset[str]:
    """Our names for what the span's owner has already set (under either semconv name).

    One snapshot: ``intersection`` walks the span's names once, where membership tests on the
    SDK's Python-level mapping would cost a raised ``KeyError`` per miss.
    """
    attributes = getattr(span, "attributes", None)
    if attributes is None:
        return NOTHING_SET
    found = _OWNER_KEYS.intersection(attributes)
    # At most 2**9 distinct snapshots (in practice one per instrumentation in use): each is
    # mapped to our names once, then every request reuses that set.
    names = _OWNER_NAMES.get(found)
    if names is None:
        names = _OWNER_NAMES[found] = frozenset([_OWNER_SETS[name] for name in found])
    return names
