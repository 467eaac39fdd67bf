"""A real Prometheus on 127.0.0.1 for the end-to-end tests, and a realistic mix of spans to feed it.

:class:`Prometheus` runs the system ``prometheus`` binary (Debian's 2.42 on CI, installed by
``make sysdeps``) with a generated configuration that scrapes one ``/metrics`` target every second
and evaluates the project's rule files every second, in a temporary storage directory. It picks a
free port itself and is always stopped (SIGTERM, then SIGKILL) by :meth:`Prometheus.stop`.

:func:`emit_mix` sends spans through the real OTLP/HTTP exporter the way an instrumented service
would: HTTP server spans with bytes, country and device class (some marking a new user), GenAI
client spans for OpenAI and Mistral models with token usage, host-sampler spans measured and
modelled, and a few spans with invalid attributes (so the rejection self-metrics have data).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_downstream.agent import attributes as A

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = (
    REPO / "collector-config" / "rules" / "downstream.rules.yml",
    REPO / "collector-config" / "rules" / "downstream.alerts.yml",
)


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` server binary, or ``None`` when it is not installed."""
    return shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """``prometheus`` scraping ``target`` (host:port) every second, with the project's rules loaded."""

    def __init__(
        self, target: str, rule_files: Sequence[Path] = RULE_FILES, replica: str = ""
    ) -> None:
        """``replica``: an external label, so two servers scraping one target (an HA pair) get
        different scrape offsets, as real replicas do."""
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError("prometheus binary not found (make sysdeps installs it)")
        self._dir = tempfile.TemporaryDirectory(prefix="e2e-prometheus-")
        root = Path(self._dir.name)
        rules = "\n".join(f"  - {path}" for path in rule_files)
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            + (f"  external_labels:\n    replica: {replica}\n" if replica else "")
            + f"rule_files:\n{rules}\n"
            "scrape_configs:\n  - job_name: otel-downstream-serve\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (root / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        self._log.flush()
        return (Path(self._dir.name) / "prometheus.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.log()}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query through the HTTP API; the result vector (raises on a PromQL error)."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{promql!r}: {body.get('errorType')}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_scraped(self, metric: str, timeout: float = 20.0) -> None:
        """Until a scrape has stored ``metric`` (the first comes ~5 s after start: discovery)."""
        deadline = time.monotonic() + timeout
        while not self.query(metric):
            if time.monotonic() > deadline:
                raise AssertionError(f"{metric} not scraped after {timeout}s:\n{self.log()}")
            time.sleep(0.2)

    def get(self, path: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(f"{self.url}{path}", timeout=10).json()
        return body

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._dir.cleanup()


# --- the span mix ----------------------------------------------------------------------------------

HTTP_MIX = (
    # (route, request bytes, response bytes, country, device class, new user?)
    ("/", 420, 180_000, "FR", "smartphone", True),
    ("/products", 380, 950_000, "US", "desktop", False),
    ("/api/cart", 2_400, 12_000, "DE", "tablet", True),
    ("/video", 500, 8_500_000, "IN", "tv", False),
    ("/", 300, 240_000, "BR", "smartphone", False),
    ("/robots.txt", 0, 512, None, "bot", False),
)
LLM_MIX = (
    # (provider, model, input tokens, output tokens, latency seconds)
    (A.PROVIDER_OPENAI, "gpt-4o-mini", 1_200, 350, 2.0),
    (A.PROVIDER_OPENAI, "gpt-4o", 800, 600, 5.5),
    (A.PROVIDER_MISTRAL, "mistral-small-latest", 400, 800, 4.5),
    (A.PROVIDER_MISTRAL, "mistral-large-latest", 2_000, 300, 3.0),
)
HOST_MIX = (
    # (joules in the interval, method, country)
    (1_500.0, "measured", "FR"),
    (900.0, "modelled", "US"),
)


def _spans(service: str, *, invalid: bool) -> list[ReadableSpan]:
    """One round of the mix for ``service``, as finished SDK spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e-prometheus")
    for route, req, resp, country, device, new_user in HTTP_MIX:
        attrs: dict[str, Any] = {
            A.HTTP_REQUEST_METHOD: "GET",
            A.HTTP_ROUTE: route,
            A.HTTP_RESPONSE_STATUS_CODE: 200,
            A.HTTP_REQUEST_BODY_SIZE: req,
            A.HTTP_RESPONSE_BODY_SIZE: resp,
            A.DOWNSTREAM_DEVICE_CLASS: device,
        }
        if country is not None:
            attrs[A.GEO_COUNTRY_ISO_CODE] = country
        if new_user:
            attrs[A.DOWNSTREAM_FUNCTIONAL_UNIT] = "user"
        tracer.start_span(f"GET {route}", kind=SpanKind.SERVER, attributes=attrs).end()
    start = time.time_ns()
    for provider_name, model, tokens_in, tokens_out, latency in LLM_MIX:
        attrs = {
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: provider_name,
            A.GEN_AI_REQUEST_MODEL: model,
            A.GEN_AI_RESPONSE_MODEL: model,
            A.GEN_AI_USAGE_INPUT_TOKENS: tokens_in,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: tokens_out,
        }
        span = tracer.start_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start
        )
        span.end(end_time=start + int(latency * 1e9))
    for joules, method, country in HOST_MIX:
        attrs = {
            A.DOWNSTREAM_HOST_ENERGY_JOULES: joules,
            A.DOWNSTREAM_HOST_ENERGY_METHOD: method,
            A.DOWNSTREAM_HOST_INTERVAL_SECONDS: 10.0,
            A.GEO_COUNTRY_ISO_CODE: country,
        }
        tracer.start_span(
            A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attrs
        ).end()
    # Spans the footprint does not cover, as a real application sends them: counted as ignored,
    # by reason (the "Spans ignored by reason" panel), never accounted or rejected.
    tracer.start_span("SELECT orders", kind=SpanKind.INTERNAL, attributes={"db.system": "x"}).end()
    grpc = {"rpc.system": "grpc", "rpc.method": "GetOrder"}
    tracer.start_span("shop.Orders/GetOrder", kind=SpanKind.SERVER, attributes=grpc).end()
    if invalid:  # a client sending corrupt sizes: rejected and counted, never accounted
        attrs = {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: -5}
        tracer.start_span("GET /broken", kind=SpanKind.SERVER, attributes=attrs).end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def emit_mix(traces_url: str, services: Sequence[str], *, invalid: bool = True) -> None:
    """One round of the mix per service, sent in one OTLP/HTTP export (protobuf)."""
    spans: list[ReadableSpan] = []
    for service in services:
        spans += _spans(service, invalid=invalid)
    exporter = OTLPSpanExporter(endpoint=traces_url, timeout=10)
    try:
        result = exporter.export(spans)
    finally:
        exporter.shutdown()
    # Partial success (the invalid spans) is still SUCCESS for the exporter.
    assert result is SpanExportResult.SUCCESS, result


def emit_label_overflow(traces_url: str, prefix: str, count: int) -> None:
    """``count`` new service names in one export: those past the service label limit fold into
    ``other`` (and count in ``downstream_label_overflow_total``)."""
    spans: list[ReadableSpan] = []
    for i in range(count):
        provider = TracerProvider(resource=Resource.create({"service.name": f"{prefix}-{i:03d}"}))
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        attrs = {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: 1_000}
        provider.get_tracer("e2e").start_span("GET", kind=SpanKind.SERVER, attributes=attrs).end()
        provider.shutdown()
        spans += memory.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=traces_url, timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


# --- reading the dashboards and rule files (also used by tests/test_dashboards.py) ---------------

CONFIG = REPO / "collector-config"
DASHBOARD_DIR = CONFIG / "grafana" / "dashboards"

ALL = ".*"
"""What Grafana puts in a query for a multi-value variable set to All (each variable's allValue)."""


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard file, parsed, by file name."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows are containers), including those inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def substitute(expr: str, variables: dict[str, str]) -> str:
    """The PromQL Grafana would send: template variables and the built-in intervals filled in.

    ``$__rate_interval`` becomes 15s (four 1 s scrapes with room to spare in the e2e Prometheus),
    ``$__range`` 1h (longer than the test's history: ``increase`` then covers all of it).
    """
    builtins = {"__rate_interval": "15s", "__range": "1h", "__interval": "5s"}
    values = {**builtins, **variables}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"query uses ${name}, which has no value: {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def recording_rules(path: Path) -> list[tuple[str, str]]:
    """``(record or alert name, expr)`` of every rule in one of our rule files.

    A small reader for the files' own layout (``- record:``/``- alert:`` then ``expr:`` inline or
    as a ``|`` block), so the checks need no YAML library; ``promtool check rules`` proves the
    files are valid YAML and PromQL.
    """
    rules: list[tuple[str, str]] = []
    lines = path.read_text().splitlines()
    name = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        head = re.match(r"\s*- (?:record|alert): (\S+)", line)
        if head:
            name = head.group(1)
        expr = re.match(r"(\s*)expr: (.*)$", line)
        if expr:
            indent, text = len(expr.group(1)), expr.group(2).strip()
            if text in {"|", ">"}:
                block: list[str] = []
                i += 1
                while i < len(lines) and (
                    not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
                ):
                    block.append(lines[i].strip())
                    i += 1
                text = " ".join(part for part in block if part)
                rules.append((name, text))
                continue
            rules.append((name, text))
        i += 1
    return rules
