"""``otel-downstream serve`` throughput per core and memory after a million high-cardinality spans.

Spans/s "per core" divide the spans by the CPU seconds the server process spent (user + system,
from psutil), not by wall time, so the figure does not depend on how fast the client threads on
the same machine are. Baselines measured in this run, in this process: parsing the protobuf alone,
our decoding (parse + attributes), and the accounting core alone; the service's CPU µs per span is
printed against their sum, so the ratio shows what the transports (HTTP, gRPC) add.

Run: ``python -m tests.benchmarks.bench_service`` (``BENCH_SERVICE_SPANS`` sets the spans per
transport; default 200,000).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import grpc
import psutil
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry

from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.otlp.decode import decode_protobuf

TARGET_PER_CORE = 30_000
BATCH = 1_000
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MIX = [
    (300, 25_000, "FR", "smartphone"),
    (900, 180_000, "US", "desktop"),
    (120, 4_000, "IN", "smartphone"),
    (2_000, 1_500_000, "BR", "tablet"),
]


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _batch(unique: int | None = None) -> bytes:
    """1,000 spans like an instrumented web service's (12 attributes), 1% of them LLM calls.

    With ``unique`` set, routes, paths, user agents, client addresses and model names are all
    distinct (the high-cardinality case); else they repeat.
    """
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "bench"), _kv("host.name", "h1")])
    scope = rs.scope_spans.add()
    for i, (req, resp, country, device) in zip(range(BATCH), cycle(MIX)):
        tag = f"{unique}-{i}" if unique is not None else "x"
        if i % 100 == 99:
            span = scope.spans.add(name="chat", kind=Span.SPAN_KIND_CLIENT)
            span.attributes.extend(
                [
                    _kv("gen_ai.operation.name", "chat"),
                    _kv("gen_ai.provider.name", "openai"),
                    _kv(
                        "gen_ai.request.model",
                        f"model-{tag}" if unique is not None else "gpt-4o-mini",
                    ),
                    _kv("gen_ai.usage.input_tokens", 500),
                    _kv("gen_ai.usage.output_tokens", 200),
                ]
            )
        else:
            span = scope.spans.add(name="GET /p", kind=Span.SPAN_KIND_SERVER)
            span.attributes.extend(
                [
                    _kv("http.request.method", "GET"),
                    _kv("http.route", f"/p/{tag}"),
                    _kv("url.path", f"/p/{tag}/view"),
                    _kv("url.scheme", "https"),
                    _kv("server.address", "shop.example"),
                    _kv("http.response.status_code", 200),
                    _kv("http.request.body.size", req),
                    _kv("http.response.body.size", resp),
                    _kv("geo.country.iso_code", country),
                    _kv("downstream.device.class", device),
                    _kv("user_agent.original", f"Mozilla/5.0 bench/{tag}"),
                    _kv("client.address", f"10.{i % 250}.{len(tag) % 250}.{i % 200}"),
                ]
            )
        span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 1_500_000_000
    return request.SerializeToString()


def _in_process_baselines(body: bytes) -> tuple[float, float, float]:
    """µs per span: protobuf parse alone, our decode, the accounting core alone."""
    rounds = 20
    started = time.process_time()
    for _ in range(rounds):
        ExportTraceServiceRequest.FromString(body)
    parse = (time.process_time() - started) / rounds / BATCH * 1e6
    started = time.process_time()
    for _ in range(rounds):
        spans = decode_protobuf(body)
    decode = (time.process_time() - started) / rounds / BATCH * 1e6
    accountant = Accountant(registry=CollectorRegistry())
    started = time.process_time()
    for _ in range(rounds):
        for s in spans:
            accountant.account(
                s.attributes,
                service_name=s.service_name,
                name=s.name,
                kind=s.kind,
                duration_s=s.duration_s,
            )
    account = (time.process_time() - started) / rounds / BATCH * 1e6
    return parse, decode, account


class _Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_downstream.exporters.cli.main",
                "serve",
                "--otlp-http-port=0",
                "--otlp-grpc-port=0",
                "--metrics-port=0",
                "--log-level=WARNING",
            ],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss_mib(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def _send_http(url: str, bodies: list[bytes], count: int) -> None:
    session = requests.Session()
    for _, body in zip(range(count), cycle(bodies)):
        answer = session.post(url, data=body, headers={"Content-Type": "application/x-protobuf"})
        assert answer.status_code == 200, answer.status_code


def _send_grpc(target: str, bodies: list[bytes], count: int) -> None:
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(EXPORT)
        for _, body in zip(range(count), cycle(bodies)):
            export(body, timeout=60)


def _measure(
    server: _Server, transport: str, bodies: list[bytes], n_spans: int, label: str = ""
) -> float:
    """CPU µs the server spends per span through one transport (two client threads)."""
    batches = n_spans // BATCH
    cpu0, wall0 = server.cpu_s(), time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        if transport == "http":
            url = f"http://{server.info['otlp_http']}/v1/traces"
            jobs = [pool.submit(_send_http, url, bodies, batches // 2) for _ in range(2)]
        else:
            jobs = [
                pool.submit(_send_grpc, server.info["otlp_grpc"], bodies, batches // 2)
                for _ in range(2)
            ]
        for job in jobs:
            job.result()
    cpu, wall = server.cpu_s() - cpu0, time.perf_counter() - wall0
    per_span = cpu / (batches // 2 * 2 * BATCH) * 1e6
    print(
        f"{label or transport:7s} {per_span:6.1f} µs CPU/span  {1e6 / per_span:9,.0f} spans/s per core  "
        f"({batches * BATCH / wall:,.0f} spans/s wall, client on the same 2 cores)"
    )
    return per_span


def main() -> int:
    n_spans = int(os.environ.get("BENCH_SERVICE_SPANS", "200000"))
    bodies = [_batch() for _ in range(4)]
    parse, decode, account = _in_process_baselines(bodies[0])
    baseline = decode + account
    print(
        f"baseline (in process)  protobuf parse {parse:.2f} µs/span, decode {decode:.2f} µs/span, "
        f"accounting {account:.2f} µs/span, decode+accounting {baseline:.2f} µs/span"
    )
    server = _Server()
    failed = 0
    try:
        _measure(server, "http", bodies[:1], BATCH * 20, "warm-up")  # factor caches, connections
        for transport in ("http", "grpc"):
            per_span = _measure(server, transport, bodies, n_spans)
            ratio = per_span / baseline
            verdict = "ok" if 1e6 / per_span >= TARGET_PER_CORE else "BELOW TARGET"
            print(
                f"      {ratio:.2f}x the in-process baseline; target {TARGET_PER_CORE:,}/s per core: {verdict}"
            )
            failed += verdict != "ok"
    finally:
        server.stop()

    # Memory: a million spans whose routes, paths, user agents, addresses and models never repeat.
    server = _Server()
    try:
        rss0 = server.rss_mib()
        url = f"http://{server.info['otlp_http']}/v1/traces"
        sent = 0
        with ThreadPoolExecutor(2) as pool:
            while sent < 1_000_000:
                bodies = list(pool.map(_batch, range(sent // BATCH, sent // BATCH + 20)))
                _send_http(url, bodies, len(bodies))
                sent += len(bodies) * BATCH
        print(
            f"memory: RSS {rss0:.0f} MiB at start, {server.rss_mib():.0f} MiB after {sent:,} "
            "high-cardinality spans (10,000 distinct models, 990,000 distinct routes)"
        )
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
