"""The SDK adapters: the synchronous span processor and the batch-friendly span exporter."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.agent.pipeline import RecordFootprintSpans
from otel_downstream.exporters import FootprintExporter
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.exporter import FootprintSpanProcessor
from otel_downstream.exporters.metrics import families as M


def _sum(registry: CollectorRegistry, name: str, **match: str) -> float:
    return sum(
        s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


def _request(tracer: trace.Tracer, resp: int, country: str = "FR", **kw: object) -> None:
    with tracer.start_as_current_span("GET /item", kind=SpanKind.SERVER, **kw) as span:  # type: ignore[arg-type]
        span.set_attribute(A.HTTP_REQUEST_METHOD, "GET")
        span.set_attribute(A.HTTP_REQUEST_BODY_SIZE, 0)
        span.set_attribute(A.HTTP_RESPONSE_BODY_SIZE, resp)
        span.set_attribute(A.GEO_COUNTRY_ISO_CODE, country)
        span.set_attribute(A.DOWNSTREAM_DEVICE_CLASS, "smartphone")


def _engine_co2e(resp: int, n: int, country: str = "FR") -> float:
    fps = Engine(EngineConfig()).http_request(
        request_bytes=0, response_bytes=resp, country=country, device_class="smartphone"
    )
    return n * sum(fp.total.co2e_g for fp in fps)


def test_processor_accounts_every_span_with_the_resource_service_name() -> None:
    registry = CollectorRegistry()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    processor = FootprintSpanProcessor(Accountant(Engine(EngineConfig()), registry=registry))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(25):
        _request(tracer, 30_000)
    with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as span:
        span.set_attribute("db.system", "postgresql")
    assert _sum(registry, M.REQUESTS, service_name="shop") == 25
    assert _sum(registry, M.CO2E, service_name="shop") == pytest.approx(
        _engine_co2e(30_000, 25), rel=1e-9
    )
    provider.shutdown()


def test_processor_sees_record_only_spans_the_exporting_pipeline_never_gets() -> None:
    registry = CollectorRegistry()
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=RecordFootprintSpans(ALWAYS_OFF))
    provider.add_span_processor(
        FootprintSpanProcessor(Accountant(Engine(EngineConfig()), registry=registry))
    )
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("t")
    for _ in range(10):
        _request(tracer, 1_000)
        with tracer.start_as_current_span("internal work"):
            pass
    assert _sum(registry, M.REQUESTS) == 10
    assert exported.get_finished_spans() == ()
    provider.shutdown()


def test_llm_span_duration_is_the_latency() -> None:
    registry = CollectorRegistry()
    provider = TracerProvider()
    provider.add_span_processor(
        FootprintSpanProcessor(Accountant(Engine(EngineConfig()), registry=registry))
    )
    tracer = provider.get_tracer("t")
    start = 1_000_000_000_000
    span = tracer.start_span(
        "chat gpt-4o",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: "openai",
            A.GEN_AI_REQUEST_MODEL: "gpt-4o",
            A.GEN_AI_USAGE_INPUT_TOKENS: 1000,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: 400,
        },
    )
    span.end(end_time=start + 4_000_000_000)
    fp = Engine(EngineConfig()).llm_call(
        provider="openai", model="gpt-4o", input_tokens=1000, output_tokens=400, latency_s=4.0
    )
    assert _sum(registry, M.ENERGY, segment="ai_inference") == pytest.approx(
        fp.total.energy_j, rel=1e-9
    )
    provider.shutdown()


def _remote_parent(tracestate: str) -> Context:
    ctx = SpanContext(
        trace_id=0x1234,
        span_id=0x99,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState.from_header([tracestate]),
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def test_exporter_under_batch_processor_weighs_by_sampling_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY", "0.25")
    registry = CollectorRegistry()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(FootprintExporter(registry=registry)))
    tracer = provider.get_tracer("t")
    for _ in range(5):
        _request(tracer, 2_000, context=_remote_parent("ot=th:c"))  # 25 %: each stands for 4
    _request(tracer, 2_000)  # no threshold: counts once
    provider.force_flush()
    assert _sum(registry, M.REQUESTS) == 21
    assert _sum(registry, M.CO2E) == pytest.approx(_engine_co2e(2_000, 21), rel=1e-9)
    provider.shutdown()


def test_malformed_threshold_is_a_counted_rejection() -> None:
    registry = CollectorRegistry()
    exporter = FootprintExporter(registry=registry, engine=Engine(EngineConfig()))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    _request(tracer, 100, context=_remote_parent("ot=th:zz"))
    _request(tracer, 100)
    assert _sum(registry, M.SPANS_REJECTED, reason="invalid_weight") == 1
    assert _sum(registry, M.REQUESTS) == 1
    provider.shutdown()


def test_ratio_sampled_pipeline_without_the_wrapper_is_scaled_by_the_processor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A processor told it does not see unsampled spans weighs sampled ones by their threshold."""
    monkeypatch.setenv("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY", "0.5")
    registry = CollectorRegistry()
    provider = TracerProvider(sampler=TraceIdRatioBased(1.0))
    provider.add_span_processor(
        FootprintSpanProcessor(
            Accountant(Engine(EngineConfig()), registry=registry), sees_unsampled=False
        )
    )
    tracer = provider.get_tracer("t")
    for _ in range(3):
        _request(tracer, 500, context=_remote_parent("ot=th:8"))  # 50 %
    assert _sum(registry, M.REQUESTS) == 6
    provider.shutdown()


def test_bad_spans_never_raise_into_the_application() -> None:
    registry = CollectorRegistry()
    provider = TracerProvider()
    provider.add_span_processor(
        FootprintSpanProcessor(Accountant(Engine(EngineConfig()), registry=registry))
    )
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET", kind=SpanKind.SERVER) as span:
        span.set_attribute(A.HTTP_REQUEST_METHOD, "GET")
        span.set_attribute(A.HTTP_RESPONSE_BODY_SIZE, -5)
    _request(tracer, 10)
    assert _sum(registry, M.SPANS_REJECTED, reason="invalid_bytes") == 1
    assert _sum(registry, M.REQUESTS) == 1
    provider.shutdown()


def test_shut_down_adapters_stop_accounting() -> None:
    registry = CollectorRegistry()
    accountant = Accountant(Engine(EngineConfig()), registry=registry)
    processor = FootprintSpanProcessor(accountant)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    _request(tracer, 10)
    processor.shutdown()
    _request(tracer, 10)
    assert _sum(registry, M.REQUESTS) == 1
    exporter = FootprintExporter(accountant=accountant)
    exporter.shutdown()
    assert exporter.export([]).name == "FAILURE"
