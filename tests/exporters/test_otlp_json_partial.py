"""OTLP/JSON: one malformed span is that span's problem, never the batch's (partial success)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.otlp.decoded import DecodeFailure
from otel_downstream.exporters.otlp.json_decode import decode_json
from otel_downstream.exporters.otlp.service import OtlpService, ServiceConfig

GOOD_ID = {"traceId": "0" * 31 + "1", "spanId": "0" * 15 + "1"}


def _span(size: dict[str, Any], **fields: Any) -> dict[str, Any]:
    attributes = [
        {"key": "http.request.method", "value": {"stringValue": "GET"}},
        {"key": "http.response.body.size", "value": size},
    ]
    return {**GOOD_ID, "name": "GET /", "kind": 2, "attributes": attributes, **fields}


GOOD = _span({"intValue": "1000"})


def _body(spans: list[dict[str, Any]], service: str = "json") -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "ids",
    [
        {"spanId": "xyz"},
        {"traceId": "W47/95gDgQPSabYzgT/GDA=="},
        {"traceId": 5, "spanId": ["a"]},
        {"trace_id": "not hex", "span_id": ""},
    ],
)
def test_ids_are_never_read_so_a_malformed_one_is_ignored(ids: dict[str, Any]) -> None:
    (span,) = decode_json(_body([{**GOOD, **ids}]))
    assert span.attributes["http.response.body.size"] == 1000
    assert span.name == "GET /"


@pytest.mark.parametrize(
    "value",
    [
        {"intValue": "1e3"},
        {"intValue": 1000.5},
        {"intValue": "99999999999999999999"},
        {"intValue": True},
        {"doubleValue": "lots"},
        {"stringValue": 7},
        {"arrayValue": {"values": [{"intValue": "x"}]}},
        "not an AnyValue",
    ],
)
def test_a_value_that_does_not_parse_becomes_nan_and_the_rest_decodes(value: Any) -> None:
    bad, good = decode_json(_body([_span(value), GOOD]))
    assert math.isnan(bad.attributes["http.response.body.size"])  # type: ignore[arg-type]
    assert bad.attributes["http.request.method"] == "GET"
    assert good.attributes["http.response.body.size"] == 1000


def test_the_structure_is_still_checked_as_a_whole() -> None:
    with pytest.raises(DecodeFailure, match=r"spans\[1\]\.attributes=.*expected an array"):
        decode_json(_body([GOOD, {**GOOD, "attributes": {"a": 1}}]))


def _doc(spans: Any) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (json.dumps({"resourceSpans": {"scopeSpans": []}}).encode(), "resourceSpans={"),
        (_doc({"name": "x"}), "spans={"),
        (_doc(["a span"]), "spans[0]='a span': expected an object"),
    ],
)
def test_arrays_and_objects_in_the_wrong_place_still_fail_the_batch(
    body: bytes, names: str
) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode_json(body)
    assert names in str(info.value)


BAD_FIELDS = [
    ({"kind": "CLIENT"}, "invalid_span_kind", "spans[1].kind='CLIENT': expected an integer"),
    ({"kind": 2.5}, "invalid_span_kind", "spans[1].kind=2.5"),
    ({"kind": 2**40}, "invalid_span_kind", "spans[1].kind=1099511627776"),
    ({"name": 5}, "invalid_span_name", "spans[1].name=5: expected a string"),
    (
        {"startTimeUnixNano": "1.7e18"},
        "invalid_span_start_time",
        "spans[1].startTimeUnixNano='1.7e18': expected an integer",
    ),
    ({"endTimeUnixNano": -1}, "invalid_span_end_time", "spans[1].endTimeUnixNano=-1"),
    ({"traceState": 7}, "invalid_span_trace_state", "spans[1].traceState=7"),
]


@pytest.mark.parametrize(("fields", "problem", "names"), BAD_FIELDS)
def test_a_malformed_span_field_rejects_that_span_only(
    fields: dict[str, Any], problem: str, names: str
) -> None:
    good, bad, after = decode_json(_body([GOOD, {**GOOD, **fields}, GOOD]))
    assert (good.problem, after.problem) == ("", "")
    assert bad.problem == problem
    assert names in bad.problem_detail


def test_enum_names_are_still_taken_for_the_kind() -> None:
    (span,) = decode_json(_body([{**GOOD, "kind": "SPAN_KIND_SERVER"}]))
    assert (span.kind, span.problem) == ("SERVER", "")


@pytest.fixture
def serve() -> Iterator[tuple[str, CollectorRegistry]]:
    registry = CollectorRegistry()
    accountant = Accountant(
        Engine(EngineConfig()),
        registry=registry,
        settings=AccountingSettings.resolve(min_sampling_probability=0.25),
    )
    config = ServiceConfig(otlp_http_port=0, otlp_grpc_port=-1, metrics_port=-1)
    service = OtlpService(config, accountant=accountant, registry=registry)
    ports = service.start()
    try:
        yield f"http://127.0.0.1:{ports['otlp_http']}/v1/traces", registry
    finally:
        service.stop()


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read()
    return status, json.loads(text or b"{}")


def _counted(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.parametrize(
    "size", [{"intValue": "1e3"}, {"intValue": 1000.5}, {"intValue": "99999999999999999999"}]
)
def test_a_bad_value_rejects_its_span_through_partial_success(
    serve: tuple[str, CollectorRegistry], size: dict[str, Any]
) -> None:
    url, registry = serve
    status, answer = _post(url, _body([GOOD] * 99 + [_span(size)]))
    assert status == 200
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert "1 of 100 spans" in answer["partialSuccess"]["errorMessage"]
    assert _counted(registry, "downstream_requests_total", service_name="json") == 99
    assert _counted(registry, "downstream_spans_rejected_total", reason="invalid_bytes") == 1


@pytest.mark.parametrize(("fields", "problem", "names"), BAD_FIELDS)
def test_a_malformed_span_field_is_a_partial_success_naming_it(
    serve: tuple[str, CollectorRegistry], fields: dict[str, Any], problem: str, names: str
) -> None:
    url, registry = serve
    status, answer = _post(url, _body([GOOD, {**GOOD, **fields}] + [GOOD] * 98))
    assert status == 200
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    message = answer["partialSuccess"]["errorMessage"]
    assert "1 of 100 spans" in message
    assert names in message
    assert _counted(registry, "downstream_requests_total", service_name="json") == 99
    assert _counted(registry, "downstream_spans_rejected_total", reason=problem) == 1


def test_a_rejected_span_counts_with_its_sampling_weight(
    serve: tuple[str, CollectorRegistry],
) -> None:
    url, registry = serve
    sampled = {**GOOD, "traceState": "ot=th:c", "kind": "CLIENT"}  # th:c keeps 1 in 4
    status, answer = _post(url, _body([sampled]))
    assert status == 200 and answer["partialSuccess"]["rejectedSpans"] == "1"
    assert _counted(registry, "downstream_spans_rejected_total", reason="invalid_span_kind") == 4


def test_a_bad_span_id_costs_nothing(serve: tuple[str, CollectorRegistry]) -> None:
    url, registry = serve
    status, answer = _post(url, _body([GOOD] * 99 + [{**GOOD, "spanId": "xyz"}]))
    assert status == 200
    assert "partialSuccess" not in answer
    assert _counted(registry, "downstream_requests_total", service_name="json") == 100


def test_a_bad_value_the_footprint_does_not_read_changes_nothing(
    serve: tuple[str, CollectorRegistry],
) -> None:
    url, registry = serve
    span = {**GOOD, "attributes": [*GOOD["attributes"], {"key": "db.rows", "value": 5}]}
    status, answer = _post(url, _body([span]))
    assert status == 200
    assert "partialSuccess" not in answer
    assert _counted(registry, "downstream_requests_total", service_name="json") == 1
