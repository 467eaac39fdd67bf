"""10 % trace sampling still yields exact footprint totals (real Flask server on 127.0.0.1).

The tracing backend (an in-memory exporter here) gets about one trace in ten; the footprint counts
every request and every LLM call, because configure() records what the sampler drops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from otel_downstream.agent import WSGIMiddleware, configure
from otel_downstream.agent import attributes as A
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

pytestmark = pytest.mark.e2e

N = 200
LATENCY_NS = 2_000_000_000
MODEL_CALL = {
    A.GEN_AI_OPERATION_NAME: "chat",
    A.GEN_AI_PROVIDER_NAME: "openai",
    A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
}


def _app(provider: TracerProvider) -> Any:
    from flask import Flask

    app = Flask("sampled")
    tracer = provider.get_tracer("shop")

    @app.get("/answer/<int:n>")
    def answer(n: int) -> bytes:
        # An LLM call as another instrumentation records it: attributes known at start, usage at
        # the end; its 2 s duration is the latency the engine is given.
        start = time.time_ns()
        span = tracer.start_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=MODEL_CALL, start_time=start
        )
        span.set_attribute(A.GEN_AI_USAGE_INPUT_TOKENS, 40 + n)
        span.set_attribute(A.GEN_AI_USAGE_OUTPUT_TOKENS, 90)
        span.end(end_time=start + LATENCY_NS)
        return b"a" * (1_000 + n)

    app.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, tracer_provider=provider, country_resolver=_Germany()
    )
    return app


class _Country:
    country = "DE"
    client_ip = None


class _Germany:
    def resolve(self, headers: Any, peer_ip: str | None) -> _Country:
        return _Country()


@contextmanager
def _server(app: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_totals_exact_under_sampling() -> None:
    backend = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    provider.add_span_processor(SimpleSpanProcessor(backend))
    registry = CollectorRegistry()
    handle = configure("shop", tracer_provider=provider, registry=registry, metrics_port=None)
    engine = Engine(EngineConfig.from_env())
    try:
        with _server(_app(provider)) as base, httpx.Client(base_url=base) as client:
            for n in range(N):
                client.get(f"/answer/{n}", headers={"User-Agent": "curl/8"})
            deadline = time.monotonic() + 5
            while registry.get_sample_value(M.SPANS_ACCOUNTED, {"type": "http"}) != N:
                assert time.monotonic() < deadline, "not every request was accounted"
                time.sleep(0.02)
        exported = [s for s in backend.get_finished_spans() if s.kind is SpanKind.SERVER]
        assert 0 < len(exported) < N * 0.3
        co2e = {
            seg: sum(
                s.value
                for f in registry.collect()
                for s in f.samples
                if s.name == M.CO2E and s.labels["segment"] == seg
            )
            for seg in ("network", "customer_device", "ai_inference")
        }
        http = [
            engine.http_request(
                request_bytes=0, response_bytes=1_000 + n, country="DE", device_class="bot"
            )
            for n in range(N)
        ]
        for seg in ("network", "customer_device"):
            want = sum(fp.total.co2e_g for fps in http for fp in fps if fp.segment == seg)
            assert co2e[seg] == pytest.approx(want, rel=1e-9)
        want_llm = sum(
            engine.llm_call(
                provider="openai",
                model="gpt-4o-mini",
                input_tokens=40 + n,
                output_tokens=90,
                latency_s=LATENCY_NS / 1e9,
            ).total.co2e_g
            for n in range(N)
        )
        assert co2e["ai_inference"] == pytest.approx(want_llm, rel=1e-9)
        assert (
            registry.get_sample_value(
                M.GEN_AI_CALLS,
                {
                    "service_name": "shop",
                    "gen_ai_provider_name": "openai",
                    "gen_ai_request_model": "gpt-4o-mini",
                },
            )
            == N
        )
        assert registry.get_sample_value(
            M.GEN_AI_TOKENS,
            {
                "service_name": "shop",
                "gen_ai_provider_name": "openai",
                "gen_ai_request_model": "gpt-4o-mini",
                "gen_ai_token_type": "input",
            },
        ) == sum(40 + n for n in range(N))
    finally:
        handle.shutdown()


def test_without_recording_unsampled_spans_the_totals_would_be_biased() -> None:
    """The control: the bare sampler loses about nine requests in ten."""
    backend = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    provider.add_span_processor(SimpleSpanProcessor(backend))
    registry = CollectorRegistry()
    handle = configure(
        "shop",
        tracer_provider=provider,
        registry=registry,
        metrics_port=None,
        record_unsampled=False,
    )
    try:
        with _server(_app(provider)) as base, httpx.Client(base_url=base) as client:
            for n in range(N):
                client.get(f"/answer/{n}", headers={"User-Agent": "curl/8"})
            exported = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                exported = len(
                    [s for s in backend.get_finished_spans() if s.kind is SpanKind.SERVER]
                )
                counted = registry.get_sample_value(M.SPANS_ACCOUNTED, {"type": "http"}) or 0
                if counted == exported and exported:
                    break
                time.sleep(0.05)
        assert 0 < counted == exported < N * 0.3
    finally:
        handle.shutdown()
