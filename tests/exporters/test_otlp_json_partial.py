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

from otel_downstream.exporters.accounting import Accountant
from otel_downstream.exporters.engine import Engine, EngineConfig
from otel_downstream.exporters.otlp_decode import DecodeFailure
from otel_downstream.exporters.otlp_json import decode_json
from otel_downstream.exporters.service import OtlpService, ServiceConfig

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


@pytest.fixture
def serve() -> Iterator[tuple[str, CollectorRegistry]]:
    registry = CollectorRegistry()
    accountant = Accountant(Engine(EngineConfig()), registry=registry)
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
