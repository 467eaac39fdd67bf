"""A real ``serve`` prices spans that carry only semantic-convention attributes (as other languages'
SDKs write them) under the right device class and country, with the right bytes, and counts what
it had to ignore.

Before, a span with ``user_agent.original`` (an iPhone) and ``client.address: 81.2.69.142`` was
priced as ``unknown``/``ZZ``, and a captured ``content-length`` header was not read at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_downstream.exporters.engine.engine import Engine, EngineConfig

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

TOKEN = "semconv-token"
PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

Value = str | int | float | Sequence[str]


def _value(value: Value) -> AnyValue:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    array = AnyValue()
    array.array_value.values.extend(AnyValue(string_value=v) for v in value)
    return array


def _body(service: str, spans: list[dict[str, Value]]) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    scope = resource_spans.scope_spans.add()
    for i, attrs in enumerate(spans):
        span = scope.spans.add(
            name="GET /",
            kind=Span.SPAN_KIND_SERVER,
            trace_id=i.to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
        )
        span.attributes.extend(KeyValue(key=k, value=_value(v)) for k, v in attrs.items())
    return request.SerializeToString()


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    server = Serve(env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN})
    try:
        yield server
    finally:
        server.close()


# (attributes, request bytes, response bytes, country, device class): what serve must make of them
GOOD: list[tuple[dict[str, Value], int, int, str, str]] = [
    # the stable conventions as the JS, Java, .NET and Go SDKs write them
    (
        {
            "http.request.method": "GET",
            "user_agent.original": IPHONE,
            "client.address": "81.2.69.142",
            "http.response.header.content-length": ["50000"],
        },
        0,
        50_000,
        "GB",
        "smartphone",
    ),
    # the older conventions
    (
        {
            "http.method": "POST",
            "http.user_agent": WINDOWS,
            "http.client_ip": "8.8.8.8",
            "http.request_content_length": 1_200,
            "http.response_content_length": 4_000,
        },
        1_200,
        4_000,
        "US",
        "desktop",
    ),
    # a Collector's geoip processor wrote the country; the peer address is not the client's
    (
        {
            "http.request.method": "GET",
            "user_agent.original": IPAD,
            "geo.country.iso_code": "FR",
            "network.peer.address": "10.0.0.7",
            "http.request.header.content-length": ["300"],
            "http.response.body.size": 2_000,
        },
        300,
        2_000,
        "FR",
        "tablet",
    ),
    # behind a proxy that left only its own (private) address: no country, not bad input
    (
        {
            "http.request.method": "GET",
            "user_agent.original": IPHONE,
            "net.sock.peer.addr": "172.16.0.3",
            "http.response.body.size": 700,
        },
        0,
        700,
        "ZZ",
        "smartphone",
    ),
]

BAD: list[tuple[dict[str, Value], str]] = [
    # (attributes, the downstream_unknown_total kind it adds); each still counts as a request
    (
        {
            "http.request.method": "GET",
            "client.address": "not-an-ip",
            "http.response.body.size": 10,
        },
        "client_address",
    ),
    (
        {
            "http.request.method": "GET",
            "geo.country.iso_code": "Q9",
            "client.address": "81.2.69.142",
            "http.response.body.size": 10,
        },
        "invalid_country",
    ),
    (
        {"http.request.method": "GET", "http.response.header.content-length": ["-5"]},
        "content_length",
    ),
    (
        {"http.request.method": "GET", "http.response.header.content-length": ["1", "2"]},
        "content_length",
    ),
    (
        {
            "http.request.method": "GET",
            "user_agent.original": IPHONE + "x" * 500_000,  # cut to 512 characters, then parsed
            "http.response.body.size": 10,
        },
        "",
    ),
    (
        {"http.request.method": "GET", "user_agent.original": 7, "http.response.body.size": 10},
        "user_agent",
    ),
]

REJECTED: list[dict[str, Value]] = [
    {"http.request.method": "GET", "http.response.body.size": math.nan},
    {"http.request.method": "GET", "http.response.body.size": -math.inf},
    {"http.request.method": "GET", "http.request.body.size": -1},
    {"http.request.method": "GET", "http.response.body.size": 1e15},
]


def _post(serve: Serve, service: str, spans: list[dict[str, Value]]) -> requests.Response:
    answer = requests.post(serve.traces_url, data=_body(service, spans), headers=PB, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def _samples(serve: Serve) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    scrape(serve.metrics_url)  # a new series is shown at 0 first, its value from the next scrape
    return scrape(serve.metrics_url)


def test_semconv_attributes_alone_give_the_labels_bytes_and_engine_figures(serve: Serve) -> None:
    _post(serve, "polyglot", [attrs for attrs, *_ in GOOD] * 3)
    samples = _samples(serve)
    engine = Engine(EngineConfig.from_env())
    for attrs, req, resp, country, device in GOOD:
        labels = {
            "service_name": "polyglot",
            "geo_country_iso_code": country,
            "device_class": device,
        }
        assert total(samples, "downstream_requests_total", **labels) == 3, attrs
        grams = sum(
            fp.total.co2e_g
            for fp in engine.http_request(
                request_bytes=req,
                response_bytes=resp,
                country=None if country == "ZZ" else country,
                device_class=device,
            )
        )
        got = total(samples, "downstream_co2e_grams_total", **labels)
        assert got == pytest.approx(3 * grams, rel=1e-9), attrs
    for direction, index in (("request", 1), ("response", 2)):
        expected = 3 * sum(case[index] for case in GOOD)  # type: ignore[misc]
        got = total(
            samples, "downstream_transfer_bytes_total", service_name="polyglot", direction=direction
        )
        assert got == expected, direction


def test_bad_values_are_ignored_and_counted_and_bad_sizes_reject_the_span(serve: Serve) -> None:
    before = _samples(serve)
    answer = _post(serve, "hostile", [attrs for attrs, _ in BAD] + REJECTED)
    reply = ExportTraceServiceResponse.FromString(answer.content)
    assert reply.partial_success.rejected_spans == len(REJECTED)
    samples = _samples(serve)

    def grew(name: str, **labels: str) -> float:
        return total(samples, name, **labels) - total(before, name, **labels)

    assert grew("downstream_requests_total", service_name="hostile") == len(BAD)
    for kind in {kind for _, kind in BAD if kind}:
        assert grew("downstream_unknown_total", kind=kind) == sum(1 for _, k in BAD if k == kind)
    assert grew("downstream_spans_rejected_total", reason="invalid_bytes") == len(REJECTED)
    assert grew("downstream_spans_rejected_total", reason="internal_error") == 0
    # the invalid Collector country fell back to the address; the long user agent was classified
    gb = total(
        samples, "downstream_requests_total", service_name="hostile", geo_country_iso_code="GB"
    )
    assert gb == 1
    phones = total(
        samples, "downstream_requests_total", service_name="hostile", device_class="smartphone"
    )
    assert phones == 1
    assert serve.alive()
