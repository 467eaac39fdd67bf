"""A real ``otel-downstream serve`` process fed by the real OTLP exporters shows the engine's totals.

The other service tests import :class:`Serve` and :func:`scrape` from here.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.footprint import Footprint

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token"


class Serve:
    """``otel-downstream serve`` on 127.0.0.1 with kernel-chosen ports, read from its JSON line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_downstream.exporters.cli.main",
                "serve",
                "--otlp-http-port=0",
                "--otlp-grpc-port=0",
                "--metrics-port=0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        self.info = self._line(timeout=20)
        assert self.info["event"] == "serving", self.info
        self.http = f"http://{self.info['otlp_http']}"
        self.traces_url = f"{self.http}/v1/traces"
        self.grpc = str(self.info["otlp_grpc"])
        self.metrics_url = f"http://{self.info['metrics']}/metrics"

    def _line(self, timeout: float) -> dict[str, object]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"serve wrote no JSON line; log:\n{self.log()}")
        parsed: dict[str, object] = json.loads(line)
        return parsed

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> dict[str, object]:
        """SIGTERM, then the ``stopped`` line (with the service's own span counts) and exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            stopped = self._line(timeout=20)
            assert self.proc.wait(20) == 0, self.log()
        finally:
            self.close()
        return stopped

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def alive(self) -> bool:
        return requests.get(f"{self.http}/healthz", timeout=5).status_code == 200


def scrape(url: str, *, settle: float = 0.0) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample on /metrics once what was sent is released, keyed by (sample name, labels).

    A series new since the last scrape shows 0 first, so that Prometheus counts its first
    increment (docs/metrics.md, "Totals over time"); its value comes from the next scrape. So this
    reads twice, ``settle`` seconds apart (multiprocess mode: the scrape itself shows a label set
    it never exposed at 0, ``exporters/metrics/seen_series.py``), and returns the second read. ``scrape_once`` is the single read."""
    scrape_once(url)
    time.sleep(settle)
    return scrape_once(url)


def scrape_once(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one read of /metrics, keyed by (sample name, labels)."""
    text = requests.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """Sum of ``name`` over every series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


@pytest.fixture
def serve() -> Iterator[Serve]:
    server = Serve(env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN})
    try:
        yield server
    finally:
        server.close()


# --- what the spans say, and what the engine says about them ------------------------------------

HTTP_SPANS = [
    # (request bytes, response bytes, country, device class)
    (350, 48_000, "FR", "smartphone"),
    (1_200, 2_500_000, "US", "desktop"),
    (0, 512, "ZZ", "bot"),
]
LLM_SPANS = [
    # (provider, model, input tokens, output tokens, latency seconds)
    ("openai", "gpt-4o-mini", 1_200, 350, 2.0),
    ("mistral_ai", "mistral-small-latest", 400, 800, 4.5),
]
REPEAT = 7


def _emit(exporter: SpanExporter, service: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    start = time.time_ns()
    for _ in range(REPEAT):
        for req, resp, country, device in HTTP_SPANS:
            attrs = {
                "http.request.method": "GET",
                "http.route": "/page",
                "http.response.status_code": 200,
                "http.request.body.size": req,
                "http.response.body.size": resp,
                "geo.country.iso_code": country,
                "downstream.device.class": device,
            }
            tracer.start_span("GET /page", kind=SpanKind.SERVER, attributes=attrs).end()
        for provider_name, model, tokens_in, tokens_out, latency in LLM_SPANS:
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider_name,
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
            }
            span = tracer.start_span(
                f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start
            )
            span.end(end_time=start + int(latency * 1e9))
        # a database span: not part of the footprint, accepted and ignored
        tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "pg"}).end()
    provider.shutdown()


def _expected() -> dict[str, float]:
    """CO₂e grams per segment from the engine, for the same inputs (same env as the service)."""
    engine = Engine(EngineConfig.from_env())
    footprints: list[Footprint] = []
    for req, resp, country, device in HTTP_SPANS:
        footprints += engine.http_request(
            request_bytes=req,
            response_bytes=resp,
            country=None if country == "ZZ" else country,
            device_class=device,
        )
    for provider_name, model, tokens_in, tokens_out, latency in LLM_SPANS:
        footprints.append(
            engine.llm_call(
                provider=provider_name,
                model=model,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                latency_s=latency,
            )
        )
    by_segment: dict[str, float] = {}
    for fp in footprints:
        by_segment[fp.segment] = by_segment.get(fp.segment, 0.0) + REPEAT * fp.total.co2e_g
    return by_segment


def _assert_totals(serve: Serve, service: str) -> None:
    samples = scrape(serve.metrics_url)
    for segment, grams in _expected().items():
        got = total(samples, "downstream_co2e_grams_total", service_name=service, segment=segment)
        assert got == pytest.approx(grams, rel=1e-9), segment
    assert total(samples, "downstream_requests_total", service_name=service) == REPEAT * len(
        HTTP_SPANS
    )
    assert total(samples, "downstream_gen_ai_calls_total", service_name=service) == REPEAT * len(
        LLM_SPANS
    )
    tokens = sum(t_in + t_out for _, _, t_in, t_out, _ in LLM_SPANS) * REPEAT
    assert total(samples, "downstream_gen_ai_tokens_total", service_name=service) == tokens
    bytes_total = sum(req + resp for req, resp, _, _ in HTTP_SPANS) * REPEAT
    assert total(samples, "downstream_transfer_bytes_total", service_name=service) == bytes_total


AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_otlp_http_protobuf_exporter_totals_match_the_engine(serve: Serve) -> None:
    _emit(HttpSpanExporter(endpoint=serve.traces_url, headers=AUTH), "shop-http")
    _assert_totals(serve, "shop-http")


def test_otlp_grpc_exporter_totals_match_the_engine(serve: Serve) -> None:
    _emit(GrpcSpanExporter(endpoint=serve.grpc, insecure=True, headers=AUTH), "shop-grpc")
    _assert_totals(serve, "shop-grpc")


def test_otlp_json_through_requests(serve: Serve) -> None:
    req, resp, country, device = HTTP_SPANS[0]
    attributes = [
        {"key": "http.request.method", "value": {"stringValue": "POST"}},
        {"key": "http.request.body.size", "value": {"intValue": str(req)}},
        {"key": "http.response.body.size", "value": {"intValue": str(resp)}},
        {"key": "geo.country.iso_code", "value": {"stringValue": country}},
        {"key": "downstream.device.class", "value": {"stringValue": device}},
    ]
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "POST /api",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": attributes,
    }
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "api-json"}}]
                },
                "scopeSpans": [{"spans": [span, span]}],
            }
        ]
    }
    answer = requests.post(
        serve.traces_url,
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {}
    expected = sum(
        fp.total.co2e_g
        for fp in Engine(EngineConfig.from_env()).http_request(
            request_bytes=req, response_bytes=resp, country=country, device_class=device
        )
    )
    samples = scrape(serve.metrics_url)
    assert total(samples, "downstream_co2e_grams_total", service_name="api-json") == pytest.approx(
        2 * expected, rel=1e-9
    )
    assert total(samples, "downstream_requests_total", service_name="api-json") == 2


def test_missing_or_wrong_token_is_refused_and_counts_nothing(serve: Serve) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}):
        provider = TracerProvider(resource=Resource.create({"service.name": "intruder"}))
        exporter = HttpSpanExporter(endpoint=serve.traces_url, headers=headers)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        attrs = {"http.request.method": "GET", "http.response.body.size": 100}
        provider.get_tracer("e2e").start_span("GET /", kind=SpanKind.SERVER, attributes=attrs).end()
        provider.shutdown()
        raw = requests.post(
            serve.traces_url,
            data=b"",
            headers={"Content-Type": "application/x-protobuf", **headers},
            timeout=10,
        )
        assert raw.status_code == 401
        assert raw.headers["WWW-Authenticate"] == "Bearer"
    samples = scrape(serve.metrics_url)
    assert total(samples, "downstream_requests_total", service_name="intruder") == 0
    assert serve.alive()


def test_health_and_readiness_probes(serve: Serve) -> None:
    metrics_base = serve.metrics_url.removesuffix("/metrics")
    for base in (serve.http, metrics_base):
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    assert requests.get(f"{metrics_base}/nothing", timeout=5).status_code == 404


def test_sigterm_drains_a_request_in_flight_then_exits_cleanly() -> None:
    server = Serve()
    try:
        doc = {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "name": "GET /",
                                    "kind": 2,
                                    "attributes": [
                                        {
                                            "key": "http.request.method",
                                            "value": {"stringValue": "GET"},
                                        },
                                        {
                                            "key": "http.response.body.size",
                                            "value": {"intValue": "1000"},
                                        },
                                    ],
                                }
                            ]
                        }
                    ]
                }
            ]
        }
        body = json.dumps(doc).encode()
        host, port = server.info["otlp_http"].rsplit(":", 1)  # type: ignore[union-attr]
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            sock.sendall(head + body[:10])
            time.sleep(0.3)  # the request is now in flight
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert server.proc.poll() is None  # still draining
            sock.sendall(body[10:])
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"Connection: close" in answer
        stopped = server._line(timeout=20)
        assert server.proc.wait(20) == 0, server.log()
        assert stopped["event"] == "stopped"
        assert stopped["spans_received"] == 1
        assert stopped["spans_accounted"] == 1
    finally:
        server.close()


def test_port_in_use_fails_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "otel_downstream.exporters.cli.main",
                "serve",
                f"--otlp-http-port={port}",
                "--otlp-grpc-port=-1",
                "--metrics-port=0",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert b"Address already in use" in result.stderr


def test_bad_configuration_names_the_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otel_downstream.exporters.cli.main", "serve", "--metrics-port=0"],
        capture_output=True,
        timeout=30,
        check=False,
        env={**os.environ, "OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES": "lots"},
    )
    assert result.returncode == 2
    assert b"OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES='lots' is not an integer" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _promql(base: str, query: str) -> list[dict[str, object]]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": query}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus (make sysdeps)")
def test_two_replicas_add_up_in_prometheus(tmp_path: Path) -> None:
    """The docs' PromQL: summing without ``instance`` over replicas gives the total of all spans."""
    replicas = [Serve(), Serve()]
    prometheus = None
    try:
        # each replica receives a different share of the same traffic
        _emit(HttpSpanExporter(endpoint=replicas[0].traces_url), "shop")
        _emit(GrpcSpanExporter(endpoint=replicas[1].grpc, insecure=True), "shop")
        _emit(GrpcSpanExporter(endpoint=replicas[1].grpc, insecure=True), "shop")
        targets = ", ".join(f'"{r.info["metrics"]}"' for r in replicas)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: serve\n    static_configs: [{{targets: [{targets}]}}]\n"
        )
        port = _free_port()
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        query = 'sum without(instance) (downstream_co2e_grams_total{service_name="shop"})'
        grams = sum(_expected().values()) * 3
        deadline = time.monotonic() + 30
        got = None
        while time.monotonic() < deadline:
            try:
                instances = _promql(
                    base, 'count by (instance) (downstream_requests_total{service_name="shop"})'
                )
                # A new series is scraped at 0 first (so increase() counts its first increment):
                # its value is there from each replica's second scrape.
                scrapes = _promql(base, 'min(count_over_time(up{job="serve"}[1m]))')
                if len(instances) == 2 and scrapes and float(scrapes[0]["value"][1]) >= 2:
                    got = _promql(base, f"sum({query})")
                    break
            except (requests.ConnectionError, ValueError):  # not up yet, or not ready (no JSON)
                pass
            time.sleep(0.5)
        assert got is not None, "prometheus never scraped both replicas"
        assert float(got[0]["value"][1]) == pytest.approx(grams, rel=1e-9)  # type: ignore[index]
        by_segment = _promql(base, f"sum by (segment) ({query})")
        expected = _expected()
        for series in by_segment:
            segment = series["metric"]["segment"]  # type: ignore[index]
            assert float(series["value"][1]) == pytest.approx(3 * expected[segment], rel=1e-9)  # type: ignore[index]
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(20)
        for replica in replicas:
            replica.close()
