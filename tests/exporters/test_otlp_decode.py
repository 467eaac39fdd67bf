"""OTLP protobuf and JSON bodies decode to the service name, attributes, name, kind and weight."""

from __future__ import annotations

import json
import math

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, TraceState, set_span_in_context
from opentelemetry.trace.span import NonRecordingSpan, SpanContext, TraceFlags

from otel_downstream.agent.attributes import ACCOUNTED_KEYS
from otel_downstream.exporters.otlp.decode import decode_protobuf
from otel_downstream.exporters.otlp.decoded import DecodeFailure, kind_name
from otel_downstream.exporters.otlp.json_decode import decode_json

HTTP_ATTRS = {
    "http.request.method": "GET",
    "http.route": "/items/{id}",
    "http.response.status_code": 200,
    "http.request.body.size": 120,
    "http.response.body.size": 54_321,
    "geo.country.iso_code": "FR",
    "downstream.device.class": "smartphone",
    "downstream.engagement.seconds": 12.5,
    "downstream.tokens.estimated": False,
    "gen_ai.response.finish_reasons": ("stop", "length"),
}


def _sdk_spans(service: str = "shop", trace_state: TraceState | None = None) -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    context = None
    if trace_state is not None:
        parent = SpanContext(
            0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=trace_state
        )
        context = set_span_in_context(NonRecordingSpan(parent))
    with tracer.start_as_current_span(
        "GET /items/{id}", kind=SpanKind.SERVER, attributes=HTTP_ATTRS, context=context
    ):
        pass
    with tracer.start_as_current_span(
        "chat gpt-4o-mini",
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10},
    ):
        pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_protobuf_from_the_sdk_encoder_round_trips() -> None:
    body = encode_spans(_sdk_spans()).SerializeToString()
    server, client = decode_protobuf(body)
    assert server.service_name == "shop"
    # Only the keys the accounting reads are decoded; the others are skipped unread.
    assert server.attributes == {k: v for k, v in HTTP_ATTRS.items() if k in ACCOUNTED_KEYS}
    assert len(server.attributes) == len(HTTP_ATTRS) - 4
    assert (server.name, server.kind, server.weight) == ("GET /items/{id}", "SERVER", 1.0)
    assert client.kind == "CLIENT"
    assert client.attributes == {"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10}


def test_tracestate_threshold_scales_the_weight() -> None:
    # th:8 = half the randomness space: each kept span stands for 2.
    spans = _sdk_spans(trace_state=TraceState([("ot", "th:8"), ("vendor", "x")]))
    server = decode_protobuf(encode_spans(spans).SerializeToString())[0]
    assert server.weight == pytest.approx(2.0)


def test_malformed_threshold_gives_a_nan_weight_not_a_failure() -> None:
    spans = _sdk_spans(trace_state=TraceState([("ot", "th:zz")]))
    server = decode_protobuf(encode_spans(spans).SerializeToString())[0]
    assert math.isnan(server.weight)


def test_missing_service_name_is_unknown_service() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "kind": 2}]}]}]}
    (span,) = decode_json(json.dumps(body).encode())
    assert span.service_name == "unknown_service"


def _json_body(attributes: list, **span_fields: object) -> bytes:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat mistral-small",
        "kind": 3,
        "attributes": attributes,
        **span_fields,
    }
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bot"}}]
                },
                "scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}],
            }
        ]
    }
    return json.dumps(doc).encode()


def test_json_follows_otlp_json_rules() -> None:
    body = _json_body(
        [
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 300}},
            {"key": "downstream.engagement.seconds", "value": {"doubleValue": "NaN"}},
            {"key": "user_agent.synthetic.type", "value": {"boolValue": True}},
            {
                "key": "gen_ai.response.model",
                "value": {"arrayValue": {"values": [{"stringValue": "a"}]}},
            },
            {"key": "gen_ai.system", "value": {"kvlistValue": {"values": []}}},
            {"key": "gen_ai.request.model", "value": {}},
            {"key": "not.accounted", "value": {"stringValue": "skipped"}},
        ],
        traceState="ot=th:c",
    )
    (span,) = decode_json(body)
    assert span.service_name == "bot"
    assert span.kind == "CLIENT"
    assert span.attributes["gen_ai.usage.input_tokens"] == 1200
    assert span.attributes["gen_ai.usage.output_tokens"] == 300
    assert math.isnan(span.attributes["downstream.engagement.seconds"])  # type: ignore[arg-type]
    assert span.attributes["user_agent.synthetic.type"] is True
    assert span.attributes["gen_ai.response.model"] == ("a",)
    assert "gen_ai.system" not in span.attributes  # a kvlist is not an attribute value
    assert "gen_ai.request.model" not in span.attributes
    assert "not.accounted" not in span.attributes
    assert span.weight == pytest.approx(4.0)


def test_json_accepts_proto_field_names_and_enum_names() -> None:
    doc = {
        "resource_spans": [
            {"scope_spans": [{"spans": [{"name": "s", "kind": "SPAN_KIND_SERVER"}]}]}
        ]
    }
    (span,) = decode_json(json.dumps(doc).encode())
    assert span.kind == "SERVER"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected an ExportTraceServiceRequest object"),
        (b'{"resourceSpans": {}}', "resourceSpans={}: expected an array"),
        (_json_body([{"key": 7, "value": {"stringValue": "x"}}]), "attributes[0].key=7"),
    ],
)
def test_malformed_json_names_the_field_and_value(body: bytes, names: str) -> None:
    with pytest.raises(DecodeFailure, match=None) as info:
        decode_json(body)
    assert names in str(info.value)


@pytest.mark.parametrize(
    ("fields", "problem", "names"),
    [
        ({"kind": "sideways"}, "invalid_span_kind", "spans[0].kind='sideways'"),
        ({"name": 5}, "invalid_span_name", "spans[0].name=5"),
    ],
)
def test_a_malformed_span_field_is_that_spans_problem(
    fields: dict[str, object], problem: str, names: str
) -> None:
    (span,) = decode_json(_json_body([], **fields))
    assert span.problem == problem
    assert names in span.problem_detail


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x05abc", b"\x0a\x80"])
def test_malformed_protobuf_is_a_decode_failure(body: bytes) -> None:
    with pytest.raises(DecodeFailure, match="not a protobuf ExportTraceServiceRequest"):
        decode_protobuf(body)


def test_empty_bodies_are_empty_requests() -> None:
    assert decode_protobuf(b"") == []
    assert decode_json(b"{}") == []


def test_kind_names_match_the_sdk() -> None:
    assert [kind_name(i) for i in range(7)] == [
        "",
        "INTERNAL",
        "SERVER",
        "CLIENT",
        "PRODUCER",
        "CONSUMER",
        "",
    ]


def test_duration_comes_from_start_and_end_times() -> None:
    body = _json_body(
        [], startTimeUnixNano="1700000000000000000", endTimeUnixNano="1700000002500000000"
    )
    (span,) = decode_json(body)
    assert span.duration_s == pytest.approx(2.5)
    (server, _) = decode_protobuf(encode_spans(_sdk_spans()).SerializeToString())
    assert server.duration_s is not None and 0.0 <= server.duration_s < 5.0
    (no_times,) = decode_json(_json_body([]))
    assert no_times.duration_s is None


def test_mixed_type_arrays_are_not_attribute_values() -> None:
    body = _json_body(
        [
            {
                "key": "gen_ai.request.model",
                "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}},
            },
            {
                "key": "gen_ai.response.model",
                "value": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": 2}]}},
            },
        ]
    )
    (span,) = decode_json(body)
    assert "gen_ai.request.model" not in span.attributes
    assert span.attributes["gen_ai.response.model"] == (1, 2)
