"""Bounded load on 127.0.0.1: OTLP/HTTP and OTLP/gRPC at once, nothing lost, totals exact.

Batches of 1,000 spans go to one ``serve`` process from four client threads (two per transport).
Afterwards the service's own span tally, the request and call counters and the CO₂e per segment
must equal what was sent, priced by the engine. The 1M-span run is marked slow; the 100k-span run
is the same test at a size every ``make test`` can afford. Speed is measured in
``tests/benchmarks/bench_service.py``, not here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import grpc
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

BATCH = 1_000
SERVICE = "load"
HTTP_MIX = [
    # (request bytes, response bytes, country, device class)
    (300, 25_000, "FR", "smartphone"),
    (900, 180_000, "US", "desktop"),
    (120, 4_000, "IN", "smartphone"),
    (2_000, 1_500_000, "BR", "tablet"),
]
GENAI_PER_BATCH = 8
GENAI = ("openai", "gpt-4o-mini", 800, 250, 1.5)  # provider, model, tokens in/out, latency s
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _batch() -> tuple[bytes, int]:
    """One batch of ``BATCH`` spans (its HTTP spans cycle through HTTP_MIX) and its HTTP count."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", SERVICE))
    scope = resource_spans.scope_spans.add()
    n_http = BATCH - GENAI_PER_BATCH
    assert n_http % len(HTTP_MIX) == 0
    start = 1_700_000_000_000_000_000
    for (req, resp, country, device), _ in zip(cycle(HTTP_MIX), range(n_http)):
        span = scope.spans.add(name="GET /p", kind=Span.SPAN_KIND_SERVER)
        span.trace_id, span.span_id = b"\x01" * 16, b"\x02" * 8
        span.attributes.extend(
            [
                _kv("http.request.method", "GET"),
                _kv("http.route", "/p"),
                _kv("http.response.status_code", 200),
                _kv("http.request.body.size", req),
                _kv("http.response.body.size", resp),
                _kv("geo.country.iso_code", country),
                _kv("downstream.device.class", device),
            ]
        )
    provider, model, tokens_in, tokens_out, latency = GENAI
    for _ in range(GENAI_PER_BATCH):
        span = scope.spans.add(name=f"chat {model}", kind=Span.SPAN_KIND_CLIENT)
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + int(latency * 1e9)
        span.attributes.extend(
            [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", model),
                _kv("gen_ai.usage.input_tokens", tokens_in),
                _kv("gen_ai.usage.output_tokens", tokens_out),
            ]
        )
    return request.SerializeToString(), n_http


def _send_http(url: str, body: bytes, count: int, partial: list[bytes]) -> int:
    session = requests.Session()
    headers = {"Content-Type": "application/x-protobuf"}
    for _ in range(count):
        for _attempt in range(50):  # 503 means "retry later", as OTLP senders do
            answer = session.post(url, data=body, headers=headers, timeout=60)
            if answer.status_code != 503:
                break
            time.sleep(0.05)
        assert answer.status_code == 200, answer.content
        partial.extend([answer.content] if answer.content else [])  # partial success?
    return count


def _send_grpc(target: str, body: bytes, count: int, partial: list[bytes]) -> int:
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(EXPORT)
        for _ in range(count):
            answer = export(body, timeout=60)
            partial.extend([answer] if answer else [])
    return count


def _run(n_spans: int) -> None:
    batches = n_spans // BATCH
    body, n_http = _batch()
    server = Serve()
    try:
        per_client = batches // 4
        started = time.perf_counter()
        partial: list[bytes] = []
        with ThreadPoolExecutor(4) as pool:
            jobs = [
                pool.submit(_send_http, server.traces_url, body, per_client, partial)
                for _ in range(2)
            ]
            jobs += [
                pool.submit(_send_grpc, server.grpc, body, per_client, partial) for _ in range(2)
            ]
            sent_batches = sum(job.result() for job in jobs)
        elapsed = time.perf_counter() - started
        print(
            f"\n{sent_batches * BATCH} spans in {elapsed:.1f} s ({sent_batches * BATCH / elapsed:,.0f}/s)"
        )

        samples = scrape(server.metrics_url)
        why = {
            (name, tuple(sorted(labels))): value
            for (name, labels), value in samples.items()
            if value
            and name
            in ("downstream_spans_rejected_total", "downstream_instrumentation_errors_total")
        }
        assert not partial, (
            [ExportTraceServiceResponse.FromString(p) for p in partial[:3]],
            why,
            server.log()[-4000:],
        )
        engine = Engine(EngineConfig.from_env())
        expected: dict[str, float] = {}
        for req, resp, country, device in HTTP_MIX:
            for fp in engine.http_request(
                request_bytes=req, response_bytes=resp, country=country, device_class=device
            ):
                share = sent_batches * n_http // len(HTTP_MIX)
                expected[fp.segment] = expected.get(fp.segment, 0.0) + share * fp.total.co2e_g
        provider, model, tokens_in, tokens_out, latency = GENAI
        llm = engine.llm_call(
            provider=provider,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            latency_s=latency,
        )
        calls = sent_batches * GENAI_PER_BATCH
        expected[llm.segment] = expected.get(llm.segment, 0.0) + calls * llm.total.co2e_g

        assert (
            total(samples, "downstream_requests_total", service_name=SERVICE)
            == sent_batches * n_http
        )
        assert total(samples, "downstream_gen_ai_calls_total", service_name=SERVICE) == calls
        assert total(samples, "downstream_spans_rejected_total") == 0
        for segment, grams in expected.items():
            got = total(
                samples, "downstream_co2e_grams_total", service_name=SERVICE, segment=segment
            )
            assert got == pytest.approx(grams, rel=1e-9), segment
        stopped = server.stop()
        assert stopped["spans_received"] == sent_batches * BATCH
        assert stopped["spans_accounted"] == sent_batches * BATCH
        assert stopped["spans_rejected"] == 0
    finally:
        server.close()


def test_100k_spans_over_http_and_grpc_lose_nothing() -> None:
    _run(100_000)


@pytest.mark.slow
def test_1m_spans_over_http_and_grpc_lose_nothing() -> None:
    _run(1_000_000)
