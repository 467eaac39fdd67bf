"""The one read of opentelemetry-sdk internals (``exporter._attributes_of``) against the installed SDK.

The exporter reads an ended span's ``_attributes._dict`` because the public view costs a third of
``on_end`` (see the function's docstring). At run time another layout falls back to the public
view, so an SDK upgrade that renamed the fields would only make accounting silently slower: these
tests make it fail loudly instead, and check the private read returns what the public API does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.trace import SpanKind

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.exporter import _attributes_of

CASES: dict[str, dict[str, Any]] = {
    "none": {},
    "one": {A.HTTP_REQUEST_METHOD: "GET"},
    "http server span": {
        A.HTTP_REQUEST_METHOD: "POST",
        A.HTTP_ROUTE: "/items/{id}",
        A.HTTP_RESPONSE_STATUS_CODE: 201,
        A.HTTP_REQUEST_BODY_SIZE: 1_234,
        A.HTTP_RESPONSE_BODY_SIZE: 56_789,
        A.GEO_COUNTRY_ISO_CODE: "FR",
        A.DOWNSTREAM_DEVICE_CLASS: "smartphone",
    },
    "every value type": {
        "s": "x",
        "b": True,
        "i": -3,
        "f": 2.5,
        "ss": ["a", "b"],
        "bs": [True, False],
        "is": [1, 2, 3],
        "fs": [0.5, 1.5],
    },
}


def _ended(
    attributes: Mapping[str, Any], *, late: Mapping[str, Any] | None = None, **limits: int
) -> Any:
    """An ended SDK span built as the application would build it."""
    provider = TracerProvider(span_limits=SpanLimits(**limits))
    span = provider.get_tracer("t").start_span("op", kind=SpanKind.SERVER, attributes=attributes)
    for key, value in (late or {}).items():
        span.set_attribute(key, value)
    span.end()
    return span


def test_the_sdk_keeps_an_ended_spans_attributes_in_a_plain_dict() -> None:
    span = _ended(CASES["http server span"])
    store = getattr(span, "_attributes", None)
    assert isinstance(store, BoundedAttributes), (
        "opentelemetry-sdk no longer keeps Span._attributes as BoundedAttributes: update "
        "exporters/exporter.py _attributes_of (it now falls back to the slower public view)"
    )
    inner = getattr(store, "_dict", None)
    assert type(inner) is dict, (
        "opentelemetry-sdk no longer keeps BoundedAttributes._dict as a dict: update "
        "exporters/exporter.py _attributes_of (it now falls back to the slower public view)"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_private_read_is_the_sdks_own_dict_and_equals_the_public_view(case: str) -> None:
    span = _ended(CASES[case])
    got = _attributes_of(span)
    assert got is span._attributes._dict  # the fast path, not the fallback
    assert dict(got) == dict(span.attributes)
    assert got.keys() == CASES[case].keys()


def test_attributes_set_after_start_and_limits_are_seen_as_the_public_view_sees_them() -> None:
    span = _ended(CASES["every value type"], late={"late": 7, "s": "y"}, max_attributes=5)
    got = _attributes_of(span)
    assert got is span._attributes._dict
    assert dict(got) == dict(span.attributes)
    assert len(got) == 5 and got["late"] == 7 and got["s"] == "y"


def test_an_ended_spans_attributes_no_longer_change_so_no_copy_is_needed() -> None:
    span = _ended(CASES["one"])
    got = _attributes_of(span)
    span.set_attribute("after.end", 1)  # the SDK ignores it (and logs a warning)
    with pytest.raises(TypeError):
        span._attributes["after.end"] = 1
    assert dict(got) == CASES["one"]


def test_spans_without_the_sdk_layout_fall_back_to_their_public_mapping() -> None:
    plain = ReadableSpan("op", attributes={"k": "v"})
    assert dict(_attributes_of(plain)) == {"k": "v"}
    assert dict(_attributes_of(ReadableSpan("op"))) == {}

    class Foreign(ReadableSpan):
        """A span whose store is some other mapping (no ``_dict``)."""

    foreign = Foreign("op")
    foreign._attributes = MappingProxyType({"k": 1})  # type: ignore[assignment]
    assert dict(_attributes_of(foreign)) == {"k": 1}
