"""Decoding reads only the attributes the accounting reads, within per-span limits.

``serve`` materialises the keys of ``ACCOUNTED_KEYS`` and skips every other value unread; a span
with more than ``MAX_SPAN_ATTRIBUTES`` attributes, or an accounted array longer than
``MAX_ARRAY_VALUES``, is rejected alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.accounting.span_inputs import classify
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.otlp.decode import decode_protobuf
from otel_downstream.exporters.otlp.decoded import (
    MAX_ARRAY_VALUES,
    MAX_SPAN_ATTRIBUTES,
    DecodedSpan,
    TooManySpans,
)
from otel_downstream.exporters.otlp.export import children_first
from otel_downstream.exporters.otlp.json_decode import decode_json

# --- the accounting reads no key outside ACCOUNTED_KEYS -------------------------------------------


class _Recording(Mapping[str, Any]):
    """Attributes that record every key looked up, and whether anything iterated over them."""

    def __init__(self, values: dict[str, Any], seen: set[str]) -> None:
        self._values, self.seen, self.iterated = values, seen, False

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return key in self._values

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        self.iterated = True
        return iter(self._values)

    def __len__(self) -> int:
        self.iterated = True
        return len(self._values)


_CALL = {A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", A.GEN_AI_USAGE_INPUT_TOKENS: 10}
REPRESENTATIVE: list[tuple[str, str, dict[str, Any]]] = [
    ("GET /", "SERVER", {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: 10}),
    ("GET /", "SERVER", {A.HTTP_METHOD_OLD: "GET", A.USER_AGENT_SYNTHETIC_TYPE: "bot"}),
    ("GET /", "SERVER", {A.HTTP_REQUEST_METHOD: "GET", A.DOWNSTREAM_FUNCTIONAL_UNIT: "user"}),
    ("GET /", "SERVER", {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: -1}),
    (A.DOWNSTREAM_ENGAGEMENT_SPAN_NAME, "INTERNAL", {A.DOWNSTREAM_ENGAGEMENT_SECONDS: 3}),
    (A.DOWNSTREAM_ENGAGEMENT_SPAN_NAME, "INTERNAL", {}),
    ("chat", "CLIENT", {A.GEN_AI_PROVIDER_NAME: "openai", **_CALL}),
    ("chat", "CLIENT", {A.GEN_AI_SYSTEM: "openai", A.GEN_AI_RESPONSE_MODEL: "gpt-4o"}),
    (
        "chat",
        "CLIENT",
        {
            A.GEN_AI_SYSTEM: "openai",
            A.GEN_AI_USAGE_PROMPT_TOKENS: 3,
            A.GEN_AI_USAGE_COMPLETION_TOKENS: 4,
            A.GEN_AI_REQUEST_MODEL: "m",
        },
    ),
    ("embed", "INTERNAL", {A.GEN_AI_SYSTEM: "openai", A.LLM_REQUEST_TYPE: "embedding", **_CALL}),
    ("agent", "INTERNAL", {A.GEN_AI_OPERATION_NAME: "invoke_agent", **_CALL}),
    ("chat", "CLIENT", {A.GEN_AI_PROVIDER_NAME: "openai"}),
    (
        A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME,
        "INTERNAL",
        {A.DOWNSTREAM_HOST_ENERGY_JOULES: 5.0, A.DOWNSTREAM_HOST_PUE: 1.2},
    ),
    (A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME, "INTERNAL", {}),
    ("SELECT", "CLIENT", {}),
]


def test_the_accounting_reads_only_accounted_keys() -> None:
    seen: set[str] = set()
    registry = CollectorRegistry()
    acc = Accountant(
        Engine(EngineConfig()), registry=registry, settings=AccountingSettings.resolve()
    )
    spans = []
    for i, (name, kind, values) in enumerate(REPRESENTATIVE):
        attrs = _Recording(values, seen)
        # Every span is a child of the one before: the nested-call rules read the parents too.
        parent = i.to_bytes(8) if i else None
        spans.append(DecodedSpan("svc", attrs, name, kind, 1.0, 1.0, (i + 1).to_bytes(8), parent))  # type: ignore[arg-type]
    for span in children_first(spans):
        acc.account(
            span.attributes,
            service_name="svc",
            name=span.name,
            kind=span.kind,
            duration_s=1.0,
            span_key=span.span_key,
            parent_key=span.parent_key,
        )
        classify(span.attributes, span.name, span.kind)
    acc.flush()
    assert seen, "nothing was looked up: the recording is broken"
    assert seen <= A.ACCOUNTED_KEYS, sorted(seen - A.ACCOUNTED_KEYS)
    assert seen == A.ACCOUNTED_KEYS, sorted(A.ACCOUNTED_KEYS - seen)  # no key kept for nothing
    assert not any(s.attributes.iterated for s in spans)  # type: ignore[attr-defined]
    assert (registry.get_sample_value("downstream_faults_total") or 0.0) == 0.0


# --- protobuf ------------------------------------------------------------------------------------


def _kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def _body(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    return request.SerializeToString()


def _http_span(*extra: KeyValue, name: str = "GET /") -> Span:
    span = Span(name=name, kind=Span.SPAN_KIND_SERVER, trace_id=b"t" * 16, span_id=b"s" * 8)
    span.attributes.extend([_kv(A.HTTP_REQUEST_METHOD, string_value="GET"), *extra])
    return span


def _int_array(size: int) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend([AnyValue(int_value=1000)] * size)
    return value


def test_only_accounted_keys_are_decoded() -> None:
    span = _http_span(
        _kv("http.route", string_value="/"),
        _kv(A.HTTP_RESPONSE_BODY_SIZE, int_value=20),
        _kv(A.GEO_COUNTRY_ISO_CODE, string_value="FR"),
        KeyValue(key="big.array", value=_int_array(100_000)),
    )
    nested = AnyValue()
    inner = nested.kvlist_value
    for i in range(20_000):
        inner.values.append(KeyValue(key=f"k{i}", value=AnyValue(kvlist_value=KeyValueList())))
    span.attributes.append(KeyValue(key="big.kvlist", value=nested))
    (decoded,) = decode_protobuf(_body(span))
    assert decoded.attributes == {
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_RESPONSE_BODY_SIZE: 20,
        A.GEO_COUNTRY_ISO_CODE: "FR",
    }


def test_values_under_unknown_keys_cost_nothing_to_decode() -> None:
    huge = [_http_span(KeyValue(key=f"x{i}", value=_int_array(50_000))) for i in range(16)]
    plain = [_http_span(_kv(f"x{i}", int_value=1)) for i in range(16)]
    huge_body, plain_body = _body(*huge), _body(*plain)
    start = time.perf_counter()
    spans = decode_protobuf(huge_body)
    huge_s = time.perf_counter() - start
    assert [s.attributes for s in spans] == [{A.HTTP_REQUEST_METHOD: "GET"}] * 16
    # upb still parses the 800k values (in C, ~25 ms); converting them in Python took 1.5 s.
    assert huge_s < 0.3, huge_s
    assert decode_protobuf(plain_body) == spans


def test_a_span_with_too_many_attributes_is_rejected_alone() -> None:
    at_cap = _http_span(*[_kv(f"k{i}", int_value=i) for i in range(MAX_SPAN_ATTRIBUTES - 1)])
    over = _http_span(*[_kv(f"k{i}", int_value=i) for i in range(MAX_SPAN_ATTRIBUTES)])
    good, bad, after = decode_protobuf(_body(at_cap, over, _http_span(name="after")))
    assert (good.problem, good.attributes) == ("", {A.HTTP_REQUEST_METHOD: "GET"})
    assert bad.problem == "too_many_attributes"
    assert bad.problem_detail == (
        f"resourceSpans[0].scopeSpans[0].spans[1]: {MAX_SPAN_ATTRIBUTES + 1} attributes, "
        f"more than {MAX_SPAN_ATTRIBUTES}"
    )
    assert (after.problem, after.name) == ("", "after")


def test_a_long_array_under_an_accounted_key_rejects_its_span_alone() -> None:
    long_array = KeyValue(key=A.GEN_AI_REQUEST_MODEL, value=_int_array(MAX_ARRAY_VALUES + 1))
    at_cap = KeyValue(key=A.GEN_AI_REQUEST_MODEL, value=_int_array(MAX_ARRAY_VALUES))
    unknown = KeyValue(key="other", value=_int_array(100 * MAX_ARRAY_VALUES))
    good, bad, other = decode_protobuf(
        _body(_http_span(at_cap), _http_span(long_array), _http_span(unknown))
    )
    assert good.problem == "" and good.attributes[A.GEN_AI_REQUEST_MODEL] == (1000,) * 1024
    assert bad.problem == "array_too_long"
    assert bad.problem_detail == (
        f"resourceSpans[0].scopeSpans[0].spans[1].attributes[1]: {A.GEN_AI_REQUEST_MODEL} holds "
        f"{MAX_ARRAY_VALUES + 1} values, more than {MAX_ARRAY_VALUES}"
    )
    assert (other.problem, other.attributes) == ("", {A.HTTP_REQUEST_METHOD: "GET"})


def test_nested_arrays_under_an_accounted_key_are_not_attribute_values() -> None:
    nested = AnyValue()
    nested.array_value.values.extend([_int_array(3), AnyValue(int_value=1)])
    (span,) = decode_protobuf(_body(_http_span(KeyValue(key=A.HTTP_ROUTE, value=nested),
                                               KeyValue(key=A.GEN_AI_SYSTEM, value=nested))))  # fmt: skip
    assert span.attributes == {A.HTTP_REQUEST_METHOD: "GET"}


def _many_attribute_spans(count: int, attributes: int) -> bytes:
    span = _http_span(*[_kv(f"attribute.{i}", string_value="v") for i in range(attributes - 1)])
    return _body(*[span] * count)


def test_realistic_batches_fit_the_attribute_allowance() -> None:
    # max_spans_per_export spans of 30 attributes each (the allowance is per span of the cap).
    body = _many_attribute_spans(20_000, 30)
    assert len(decode_protobuf(body, max_spans=20_000)) == 20_000
    assert len(decode_json(_json_body(20_000, 30), max_spans=20_000)) == 20_000


def test_more_attributes_than_the_allowance_is_refused() -> None:
    body = _many_attribute_spans(100, 1000)  # 10 times the spans' allowance of max_spans=1000
    with pytest.raises(TooManySpans, match="attributes") as info:
        decode_protobuf(body, max_spans=1000)
    assert info.value.status == 413
    with pytest.raises(TooManySpans, match="attributes"):
        decode_json(_json_body(100, 1000), max_spans=1000)


# --- JSON ----------------------------------------------------------------------------------------


def _json_span(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "GET /", "kind": 2, "attributes": attributes}


def _json(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def _json_body(count: int, attributes: int) -> bytes:
    attrs = [{"key": A.HTTP_REQUEST_METHOD, "value": {"stringValue": "GET"}}]
    attrs += [{"key": f"a{i}", "value": {"stringValue": "v"}} for i in range(attributes - 1)]
    return _json(*[_json_span(attrs)] * count)


def _ints(size: int) -> dict[str, Any]:
    return {"arrayValue": {"values": [{"intValue": "1000"}] * size}}


def test_json_decodes_only_accounted_keys_and_skips_bad_unknown_values() -> None:
    attrs = [
        {"key": A.HTTP_REQUEST_METHOD, "value": {"stringValue": "GET"}},
        {"key": "http.route", "value": {"stringValue": "/"}},
        {"key": "odd", "value": {"intValue": "not a number"}},
        {"key": "big", "value": _ints(100_000)},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "a"}] * 1000}}},
    ]
    (span,) = decode_json(_json(_json_span(attrs)))
    assert (span.problem, span.attributes) == ("", {A.HTTP_REQUEST_METHOD: "GET"})


def test_json_per_span_limits_reject_the_span_alone() -> None:
    too_many = [{"key": f"k{i}", "value": {"intValue": 1}} for i in range(MAX_SPAN_ATTRIBUTES + 1)]
    long_array = [{"key": A.GEN_AI_SYSTEM, "value": _ints(MAX_ARRAY_VALUES + 1)}]
    at_caps = too_many[:-1]
    good, many, long, cap = decode_json(
        _json(_json_span([]), _json_span(too_many), _json_span(long_array), _json_span(at_caps))
    )
    assert good.problem == cap.problem == ""
    assert many.problem == "too_many_attributes"
    assert many.problem_detail == (
        f"resourceSpans[0].scopeSpans[0].spans[1]: {MAX_SPAN_ATTRIBUTES + 1} attributes, "
        f"more than {MAX_SPAN_ATTRIBUTES}"
    )
    assert long.problem == "array_too_long"
    assert long.problem_detail == (
        f"resourceSpans[0].scopeSpans[0].spans[2].attributes[0]: {A.GEN_AI_SYSTEM} holds "
        f"{MAX_ARRAY_VALUES + 1} values, more than {MAX_ARRAY_VALUES}"
    )
    (ok,) = decode_json(
        _json(_json_span([{"key": A.GEN_AI_SYSTEM, "value": _ints(MAX_ARRAY_VALUES)}]))
    )
    assert ok.attributes == {A.GEN_AI_SYSTEM: (1000,) * MAX_ARRAY_VALUES}
