"""Nothing ignored silently: a real ``serve`` counts every span it does not price by reason.

Spans the footprint does not cover (a database call, a gRPC server span, an agent span) are not
errors: the export gets no partial success for them, and each lands in
``downstream_spans_ignored_total{reason}``. Spans it refuses are reported through OTLP partial
success, over OTLP/HTTP (protobuf and JSON) and OTLP/gRPC alike, with the count and a message that
names every reason with its count; ``downstream_spans_rejected_total{reason}`` has the same.
Every received span is in exactly one of accounted, rejected and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
IGNORED = "downstream_spans_ignored_total"
REJECTED = "downstream_spans_rejected_total"
ACCOUNTED = "downstream_spans_accounted_total"

SpanSpec = tuple[str, "Span.SpanKind.ValueType", dict[str, object]]

GOOD: SpanSpec = (
    "GET /",
    Span.SPAN_KIND_SERVER,
    {"http.request.method": "GET", "http.response.body.size": 1000},
)
NEGATIVE_BYTES: SpanSpec = (
    "GET /",
    Span.SPAN_KIND_SERVER,
    {"http.request.method": "GET", "http.response.body.size": -1},
)
NO_USAGE: SpanSpec = (
    "chat gpt-4o",
    Span.SPAN_KIND_CLIENT,
    {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"},
)
DB: SpanSpec = ("SELECT", Span.SPAN_KIND_CLIENT, {"db.system": "postgresql"})
WORK: SpanSpec = ("render", Span.SPAN_KIND_INTERNAL, {})
QUEUE: SpanSpec = ("publish", Span.SPAN_KIND_PRODUCER, {"messaging.system": "kafka"})
GRPC_SERVER: SpanSpec = ("Checkout/Pay", Span.SPAN_KIND_SERVER, {"rpc.system": "grpc"})
AGENT: SpanSpec = (
    "invoke_agent planner",
    Span.SPAN_KIND_INTERNAL,
    {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai"},
)
WORKFLOW: SpanSpec = ("crew", Span.SPAN_KIND_INTERNAL, {"gen_ai.system": "openai"})
IGNORED_SPANS = {
    "not_footprint_kind": [DB, WORK, QUEUE],
    "server_without_http_method": [GRPC_SERVER],
    "gen_ai_not_a_call": [AGENT, WORKFLOW],
}


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    server = Serve()
    try:
        yield server
    finally:
        server.close()


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _request(spans: list[SpanSpec], service: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", service))
    scope = resource_spans.scope_spans.add()
    for name, kind, attrs in spans:
        span = scope.spans.add(name=name, kind=kind)
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return request


def _json(spans: list[SpanSpec], service: str) -> bytes:
    def value(v: object) -> dict[str, str]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}

    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": value(service)}]},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "name": name,
                                    "kind": int(kind),
                                    "attributes": [
                                        {"key": k, "value": value(v)} for k, v in attrs.items()
                                    ],
                                }
                                for name, kind, attrs in spans
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def _all_ignored() -> list[SpanSpec]:
    return [span for spans in IGNORED_SPANS.values() for span in spans]


def _deltas(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
    name: str,
) -> dict[str, float]:
    keys = {"reason", "type"}
    out: dict[str, float] = {}
    for (sample, labels), value in after.items():
        if sample != name:
            continue
        label = next((v for k, v in labels if k in keys), "")
        change = value - before.get((sample, labels), 0.0)
        if change:
            out[label] = out.get(label, 0.0) + change
    return out


def _grpc_export(serve: Serve, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(serve.grpc) as channel:
        reply = channel.unary_unary(EXPORT)(request.SerializeToString(), timeout=10)
    return ExportTraceServiceResponse.FromString(reply)


@pytest.mark.parametrize("transport", ["http-protobuf", "http-json", "grpc"])
def test_ignored_spans_are_counted_by_reason_and_are_no_partial_success(
    serve: Serve, transport: str
) -> None:
    spans = _all_ignored()
    before = scrape(serve.metrics_url)
    if transport == "http-protobuf":
        body = _request(spans, "ignored").SerializeToString()
        answer = requests.post(serve.traces_url, data=body, headers=PB, timeout=10)
        assert answer.status_code == 200
        assert ExportTraceServiceResponse.FromString(answer.content) == (
            ExportTraceServiceResponse()
        )
    elif transport == "http-json":
        answer = requests.post(serve.traces_url, data=_json(spans, "ignored"), headers=JS)
        assert answer.status_code == 200 and answer.json() == {}
    else:
        assert not _grpc_export(serve, _request(spans, "ignored")).HasField("partial_success")
    after = scrape(serve.metrics_url)
    assert _deltas(before, after, IGNORED) == {
        reason: float(len(found)) for reason, found in IGNORED_SPANS.items()
    }
    assert _deltas(before, after, REJECTED) == {}
    assert _deltas(before, after, ACCOUNTED) == {}


@pytest.mark.parametrize("transport", ["http-protobuf", "http-json", "grpc"])
def test_rejections_are_a_partial_success_naming_each_reason(serve: Serve, transport: str) -> None:
    spans = [GOOD, NEGATIVE_BYTES, NO_USAGE, NEGATIVE_BYTES, *_all_ignored()]
    before = scrape(serve.metrics_url)
    if transport == "grpc":
        partial = _grpc_export(serve, _request(spans, "mixed")).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    elif transport == "http-json":
        answer = requests.post(serve.traces_url, data=_json(spans, "mixed"), headers=JS)
        assert answer.status_code == 200
        found = answer.json()["partialSuccess"]
        rejected, message = int(found["rejectedSpans"]), found["errorMessage"]
    else:
        body = _request(spans, "mixed").SerializeToString()
        answer = requests.post(serve.traces_url, data=body, headers=PB, timeout=10)
        assert answer.status_code == 200
        partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    assert rejected == 3
    assert f"3 of {len(spans)} spans" in message
    assert "(invalid_bytes: 2, missing_usage: 1)" in message
    assert "downstream_spans_rejected_total" in message
    after = scrape(serve.metrics_url)
    assert _deltas(before, after, REJECTED) == {"invalid_bytes": 2.0, "missing_usage": 1.0}
    assert _deltas(before, after, ACCOUNTED) == {"http": 1.0}
    ignored = _deltas(before, after, IGNORED)
    assert sum(ignored.values()) == len(_all_ignored())
    # every span received is in exactly one of the three
    counted = sum(ignored.values()) + rejected + _deltas(before, after, ACCOUNTED)["http"]
    assert counted == len(spans)
    assert total(after, "downstream_requests_total", service_name="mixed") - total(
        before, "downstream_requests_total", service_name="mixed"
    ) == pytest.approx(1.0)


def test_the_stopped_line_counts_ignored_spans() -> None:
    server = Serve()
    try:
        body = _request([GOOD, NEGATIVE_BYTES, DB, GRPC_SERVER], "tally").SerializeToString()
        assert requests.post(server.traces_url, data=body, headers=PB, timeout=10).ok
        stopped = server.stop()
    finally:
        server.close()
    assert stopped["spans_received"] == 4
    assert stopped["spans_accounted"] == 1
    assert stopped["spans_rejected"] == 1
    assert stopped["spans_ignored"] == 2
