"""No first increment lost: Prometheus' ``increase()`` over a run equals the app's own total while
new label sets keep appearing (issue 16, item 2).

A real ``otel-downstream serve`` fed over OTLP/HTTP is scraped every second by two real
Prometheus servers (an HA pair, told apart by an external label, so their scrape offsets differ),
with ``OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS`` set a little above the scrape interval. For ~16 s a
new (country, device class) label set appears every 0.25 s, and a new model every 2 s, between
scrapes, as in production. Then ``sum(increase(downstream_co2e_grams_total[2m]))`` from each
server's HTTP API, evaluated at its last scrape, must be within 3 % of the total ``/metrics``
shows once everything is released. Before the hold, such a run lost each label set's first
increment: the demo read 7.10 g of a true 11.27 g.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_downstream.agent import attributes as A
from tests.e2e.prom import Prometheus, prometheus_binary
from tests.e2e.test_service import Serve, scrape, total

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="prometheus not installed (make sysdeps installs Debian's prometheus)",
    ),
]

HOLD_S = 1.5  # the scrape interval (1 s) and a margin for a scrape still being read
RUN_S = 16.0
TICK_S = 0.25
COUNTRIES = (
    "FR DE US IN BR JP GB IT ES PL NL SE NO FI DK BE CH AT PT IE CZ HU RO GR TR MX AR CL ZA NG"
).split()
DEVICES = ("smartphone", "desktop", "tablet", "tv", "console", "wearable", "bot", "unknown")
MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini", "mistral-small-latest", "mistral-large-latest")


def _tick_spans(i: int) -> list[Any]:
    """Tick ``i``: a request from a label set not seen before, one from a known one, and every
    8th tick an LLM call to a model not seen before (then known ones)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e-first-increment")
    fresh = (COUNTRIES[i % len(COUNTRIES)], DEVICES[(i // len(COUNTRIES)) % len(DEVICES)])
    for country, device in (fresh, ("FR", "smartphone")):
        attrs = {
            A.HTTP_REQUEST_METHOD: "GET",
            A.HTTP_RESPONSE_STATUS_CODE: 200,
            A.HTTP_REQUEST_BODY_SIZE: 400,
            A.HTTP_RESPONSE_BODY_SIZE: 250_000 + 1_000 * i,
            A.GEO_COUNTRY_ISO_CODE: country,
            A.DOWNSTREAM_DEVICE_CLASS: device,
        }
        tracer.start_span("GET /", kind=SpanKind.SERVER, attributes=attrs).end()
    if i % 8 == 0:
        model = MODELS[(i // 8) % len(MODELS)]
        provider_name = A.PROVIDER_MISTRAL if model.startswith("mistral") else A.PROVIDER_OPENAI
        attrs = {
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: provider_name,
            A.GEN_AI_REQUEST_MODEL: model,
            A.GEN_AI_USAGE_INPUT_TOKENS: 600,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: 400,
        }
        start = time.time_ns()
        span = tracer.start_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start
        )
        span.end(end_time=start + 2 * 10**9)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture
def stack() -> Iterator[tuple[Serve, list[Prometheus]]]:
    serve = Serve(env={"OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS": str(HOLD_S)})
    servers: list[Prometheus] = []
    try:
        for replica in ("a", "b"):
            servers.append(Prometheus(str(serve.info["metrics"]), rule_files=(), replica=replica))
        for prom in servers:
            prom.wait_ready()
        for prom in servers:
            prom.wait_scraped("downstream_build_info")
        yield serve, servers
    finally:
        for prom in servers:
            prom.stop()
        serve.close()


def _at_last_scrape(prom: Prometheus, promql: str) -> float:
    """``promql`` evaluated at the server's last scrape of the target (so ``increase()`` does not
    extrapolate past the last sample); one scalar."""
    last = prom.query("timestamp(up)")
    assert last, prom.log()
    at = float(last[0]["value"][1])
    response = requests.get(
        f"{prom.url}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}, timeout=10
    )
    body = response.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_increase_counts_every_new_label_sets_first_increment(
    stack: tuple[Serve, list[Prometheus]],
) -> None:
    serve, servers = stack
    exporter = OTLPSpanExporter(endpoint=serve.traces_url, timeout=10)
    errors: list[BaseException] = []
    stop = threading.Event()

    def send() -> None:
        i = 0
        deadline = time.monotonic() + RUN_S
        try:
            while time.monotonic() < deadline and not stop.is_set():
                assert exporter.export(_tick_spans(i)) is SpanExportResult.SUCCESS
                i += 1
                stop.wait(TICK_S)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(RUN_S + 20)
    stop.set()
    exporter.shutdown()
    assert not errors, errors

    # Everything released (the hold, then a scrape), then read by both servers.
    time.sleep(HOLD_S + 2.5)
    app_total = total(scrape(serve.metrics_url), "downstream_co2e_grams_total")
    assert app_total > 0
    deadline = time.monotonic() + 15
    for prom in servers:
        while True:
            latest = prom.query("sum(downstream_co2e_grams_total)")
            if latest and float(latest[0]["value"][1]) == pytest.approx(app_total, rel=1e-9):
                break
            assert time.monotonic() < deadline, (latest, app_total)
            time.sleep(0.2)

    for prom in servers:
        increase = _at_last_scrape(prom, "sum(increase(downstream_co2e_grams_total[2m]))")
        assert increase == pytest.approx(app_total, rel=0.03), (increase, app_total)
        rate = _at_last_scrape(prom, "sum(rate(downstream_co2e_grams_total[2m])) * 120")
        assert rate == pytest.approx(app_total, rel=0.03), (rate, app_total)
        integral = _at_last_scrape(
            prom, "sum_over_time(sum(rate(downstream_co2e_grams_total[3s]))[2m:1s])"
        )
        print(
            f"replica: increase {increase:.6g} g, rate*window {rate:.6g} g, "
            f"integrated 3s rates {integral:.6g} g; app {app_total:.6g} g"
        )
        labelsets = prom.query("count(downstream_co2e_grams_total)")
        assert float(labelsets[0]["value"][1]) >= 60  # many label sets appeared during the run
