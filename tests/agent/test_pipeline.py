"""configure(): one call, real frameworks on 127.0.0.1, totals equal the engine's figures."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.agent import WSGIMiddleware, configure
from otel_downstream.agent import attributes as A
from otel_downstream.agent import environment as env
from otel_downstream.agent.pipeline import RecordFootprintSpans, metrics_wsgi_app, traces_url
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
HEADERS = {"User-Agent": IPHONE, "CF-IPCountry": "DE"}
LABELS = {"service_name": "shop", "geo_country_iso_code": "DE", "device_class": "smartphone"}


@dataclass(frozen=True)
class _Country:
    country: str
    client_ip: str | None


class _HeaderCountry:
    """The trusted-CDN-header resolution, for when agent/client/country.py has not landed yet."""

    def resolve(self, headers: Any, peer_ip: str | None) -> _Country:
        value = headers.get("cf-ipcountry") or "ZZ"
        return _Country(value.upper(), peer_ip)


def _middleware_options(provider: TracerProvider) -> dict[str, Any]:
    options: dict[str, Any] = {"tracer_provider": provider, "excluded_paths": "/metrics,/metrics/"}
    if importlib.util.find_spec("otel_downstream.agent.client.country") is not None:
        options["country_header"] = "CF-IPCountry"
    else:
        options["country_resolver"] = _HeaderCountry()
    return options


@pytest.fixture(autouse=True)
def _no_leftover_handle() -> Iterator[None]:
    yield
    from otel_downstream.agent import pipeline as module

    if module._current is not None:
        module._current.shutdown()


def _eventually(read: Any, expected: float, timeout: float = 5.0) -> Any:
    """Poll ``read()``: a server ends its span after the response bytes left, so a client can
    read its response before the span (and its footprint) is complete."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _wsgi_server(app: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _flask_app(provider: TracerProvider) -> Any:
    from flask import Flask, request

    app = Flask("shop")

    @app.get("/items/<int:n>")
    def items(n: int) -> bytes:
        return b"x" * n

    @app.post("/echo")
    def echo() -> bytes:
        return request.get_data()

    app.wsgi_app = WSGIMiddleware(app.wsgi_app, **_middleware_options(provider))  # type: ignore[method-assign]
    return app


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str
) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == val for k, val in match.items())
    )


def _expected(requests: list[tuple[int, int]], country: str, device: str) -> dict[str, float]:
    engine = Engine(EngineConfig.from_env())
    out = {"energy_j": 0.0, "co2e_g": 0.0, "water_l": 0.0}
    for req, resp in requests:
        for fp in engine.http_request(
            request_bytes=req, response_bytes=resp, country=country, device_class=device
        ):
            for k in out:
                out[k] += getattr(fp.total, k)
    return out


def test_flask_totals_on_metrics_equal_the_engine() -> None:
    provider = TracerProvider()
    port = _free_port()
    handle = configure(
        "shop", tracer_provider=provider, registry=CollectorRegistry(), metrics_port=port
    )
    assert handle.metrics_address == ("127.0.0.1", port)
    sent: list[tuple[int, int]] = []
    with _wsgi_server(_flask_app(provider)) as base, httpx.Client(base_url=base) as client:
        for i in range(20):
            r = client.get(f"/items/{100 * i + 7}", headers=HEADERS)
            sent.append((0, len(r.content)))
            body = os.urandom(50 * i + 1)
            r = client.post("/echo", content=body, headers=HEADERS)
            sent.append((len(body), len(r.content)))
    url = f"http://127.0.0.1:{port}/metrics"
    _eventually(lambda: _total(_scrape(url), M.REQUESTS), 40)
    samples = _scrape(url)
    want = _expected(sent, "DE", "smartphone")
    assert (
        _total(
            samples,
            M.REQUESTS,
            service_name="shop",
            geo_country_iso_code="DE",
            device_class="smartphone",
        )
        == 40
    )
    for name, key in ((M.ENERGY, "energy_j"), (M.CO2E, "co2e_g"), (M.WATER, "water_l")):
        assert _total(samples, name, service_name="shop") == pytest.approx(want[key], rel=1e-9)
    assert _total(samples, M.TRANSFER_BYTES, direction="request") == sum(r for r, _ in sent)
    assert _total(samples, M.TRANSFER_BYTES, direction="response") == sum(r for _, r in sent)
    assert _total(samples, M.BUILD_INFO) == 1
    handle.shutdown()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)


def test_fastapi_totals_equal_the_engine() -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    from otel_downstream.agent import ASGIMiddleware
    from otel_downstream.agent.pipeline import metrics_asgi_app

    provider = TracerProvider()
    registry = CollectorRegistry()
    configure("api", tracer_provider=provider, registry=registry, metrics_port=None)
    app = FastAPI()

    @app.get("/blob/{n}")
    async def blob(n: int) -> Response:
        return Response(b"y" * n, media_type="application/octet-stream")

    app.add_middleware(ASGIMiddleware, **_middleware_options(provider))
    app.mount("/metrics", metrics_asgi_app())
    config = uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{config.port}"
        sizes = [0, 10, 2_000, 65_000, 300_000]
        with httpx.Client(base_url=base) as client:
            for n in sizes:
                assert len(client.get(f"/blob/{n}", headers=HEADERS).content) == n
            _eventually(lambda: _total(_scrape(base + "/metrics/"), M.REQUESTS), len(sizes))
            samples = _scrape(base + "/metrics/")
    finally:
        server.should_exit = True
        thread.join(10)
    want = _expected([(0, n) for n in sizes], "DE", "smartphone")
    assert _total(samples, M.REQUESTS, service_name="api") == len(sizes)
    assert _total(samples, M.CO2E, service_name="api") == pytest.approx(want["co2e_g"], rel=1e-9)


def test_configure_twice_counts_once_and_shutdown_allows_a_new_one() -> None:
    provider = TracerProvider()
    registry = CollectorRegistry()
    first = configure("shop", tracer_provider=provider, registry=registry, metrics_port=None)
    assert configure("other", tracer_provider=TracerProvider(), metrics_port=None) is first

    def requests() -> float | None:
        return registry.get_sample_value(M.REQUESTS, LABELS)

    with _wsgi_server(_flask_app(provider)) as base:
        httpx.get(base + "/items/10", headers=HEADERS)
        assert _eventually(requests, 1) == 1
        first.shutdown()
        assert requests() is None  # unregistered
        second = configure("shop", tracer_provider=provider, registry=registry, metrics_port=None)
        assert second is not first
        httpx.get(base + "/items/10", headers=HEADERS)
        # The first processor stays attached to the provider but no longer counts: 1, never 2.
        assert _eventually(requests, 1) == 1
        assert _eventually(requests, 2, timeout=0.3) == 1
    second.shutdown()


def test_dropped_request_spans_are_recorded_but_not_exported() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    registry = CollectorRegistry()
    handle = configure("shop", tracer_provider=provider, registry=registry, metrics_port=None)
    assert isinstance(provider.sampler, RecordFootprintSpans)
    with _wsgi_server(_flask_app(provider)) as base:
        for _ in range(7):
            httpx.get(base + "/items/5", headers=HEADERS)
        accounted = _eventually(
            lambda: registry.get_sample_value(M.SPANS_ACCOUNTED, {"type": "http"}), 7
        )
    assert accounted == 7
    assert exported.get_finished_spans() == ()
    handle.shutdown()
    assert provider.sampler is ALWAYS_OFF  # the application's own sampler is back


def test_metrics_wsgi_app_serves_the_configured_registry() -> None:
    provider = TracerProvider()
    registry = CollectorRegistry()
    configure("shop", tracer_provider=provider, registry=registry, metrics_port=None)
    with _wsgi_server(metrics_wsgi_app()) as base:
        text = httpx.get(base + "/").text
    assert "downstream_build_info" in text


def test_host_sampler_spans_are_accounted() -> None:
    provider = TracerProvider()
    handle = configure(
        "edge",
        tracer_provider=provider,
        registry=CollectorRegistry(),
        metrics_port=None,
        host_sampler=True,
    )
    time.sleep(0.2)
    metrics = handle.accountant.metrics
    handle.shutdown()  # the sampler's last partial interval is accounted on the way out
    samples = [
        s for f in metrics.host_samples.collect() for s in f.samples if s.name.endswith("_total")
    ]
    assert sum(s.value for s in samples) >= 1
    energy = [
        s
        for f in metrics.energy.collect()
        for s in f.samples
        if s.labels.get("segment") == "customer_infrastructure"
    ]
    assert sum(s.value for s in energy) > 0


@pytest.mark.parametrize(
    ("var", "value"),
    [
        (env.OTEL_DOWNSTREAM_METRICS_PORT, "http"),
        (env.OTEL_DOWNSTREAM_RECORD_UNSAMPLED, "maybe"),
        (env.OTEL_DOWNSTREAM_GREEN_HOSTING, "maybe"),  # read by the engine's own settings
    ],
)
def test_bad_environment_fails_before_anything_is_installed(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    provider = TracerProvider()
    with pytest.raises(ValueError, match=var):
        configure("shop", tracer_provider=provider, registry=CollectorRegistry())
    assert not isinstance(provider.sampler, RecordFootprintSpans)


def test_port_in_use_is_reported_and_the_app_still_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A second copy of the app (or a worker without multiprocess mode) must still start: the
    busy port is said, naming the settings, and accounting goes on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        registry = CollectorRegistry()
        provider = TracerProvider()
        with caplog.at_level(logging.WARNING, logger="otel_downstream"):
            handle = configure(
                "shop", tracer_provider=provider, registry=registry, metrics_port=port
            )
    try:
        assert handle.metrics_address is None
        assert f"127.0.0.1:{port}" in caplog.text
        assert "OTEL_DOWNSTREAM_METRICS_PORT" in caplog.text
        span = provider.get_tracer("t").start_span(
            "GET /",
            kind=SpanKind.SERVER,
            attributes={A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: 5000},
        )
        span.end()
        assert (
            registry.get_sample_value(
                "downstream_requests_total",
                {"service_name": "shop", "geo_country_iso_code": "ZZ", "device_class": "unknown"},
            )
            == 1.0
        )
    finally:
        handle.shutdown()


def test_an_unusable_metrics_address_is_a_clear_error() -> None:
    """Only a busy port is softened: a wrong address is a setting to fix, said at configure()."""
    with pytest.raises(OSError):
        configure(
            "shop",
            tracer_provider=TracerProvider(),
            registry=CollectorRegistry(),
            metrics_port=9999,
            metrics_addr="no-such-host.invalid",
        )


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://gw.example/otlp", "https://gw.example/otlp/v1/traces"),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
        ("https://gw.example/otlp?tenant=a", "https://gw.example/otlp/v1/traces?tenant=a"),
    ],
)
def test_otlp_endpoint_is_a_base_url(given: str, url: str) -> None:
    assert traces_url(given) == url


_GLOBAL_SCRIPT = """
import sys
import otel_downstream.agent
from otel_downstream.agent import configure as _c
assert not [m for m in sys.modules if m.startswith("otel_downstream.exporters")], "eager import"
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from otel_downstream.agent import configure
handle = configure(metrics_port=None)
assert trace.get_tracer_provider() is handle.tracer_provider
tracer = trace.get_tracer("x")
with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
    span.set_attribute("http.request.method", "GET")
    span.set_attribute("http.response.body.size", 1000)
print(handle.service_name, handle.registry.get_sample_value(
    "downstream_requests_total",
    {"service_name": handle.service_name, "geo_country_iso_code": "ZZ", "device_class": "unknown"}))
"""


def test_global_provider_from_env_and_no_eager_exporter_import() -> None:
    environ = {**os.environ, "OTEL_SERVICE_NAME": "from-env"}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", _GLOBAL_SCRIPT],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["from-env", "1.0"]


def test_asgi_app_is_an_asgi_callable() -> None:
    from otel_downstream.agent.pipeline import metrics_asgi_app

    configure(
        "shop", tracer_provider=TracerProvider(), registry=CollectorRegistry(), metrics_port=None
    )
    app = metrics_asgi_app()
    transport = httpx.ASGITransport(app=app)

    async def get() -> str:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/")).text

    assert "downstream_spans_rejected_total" in asyncio.run(get())


def test_otlp_endpoint_exports_sampled_spans_alongside() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.trace import SpanKind

    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider = TracerProvider()
        handle = configure(
            "shop",
            tracer_provider=provider,
            registry=CollectorRegistry(),
            metrics_port=None,
            otlp_endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces",
        )
        with provider.get_tracer("t").start_as_current_span("GET /x", kind=SpanKind.SERVER) as s:
            s.set_attribute("http.request.method", "GET")
        handle.shutdown()  # flushes the batch processor
    finally:
        server.shutdown()
        thread.join(5)
    assert [path for path, _ in received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(received[0][1])
    names = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names == ["GET /x"]


def test_configure_is_the_function_whatever_was_imported_first() -> None:
    import otel_downstream.agent.pipeline as module
    from otel_downstream.agent import configure as exported

    assert exported is module.configure
    handle = exported(
        "shop", tracer_provider=TracerProvider(), registry=CollectorRegistry(), metrics_port=None
    )
    assert module.configure("again", metrics_port=None) is handle
