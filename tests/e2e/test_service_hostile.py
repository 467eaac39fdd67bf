"""The hostile suite: every attack on ``serve`` found so far, sent to one real process, and then the
three things that must still hold: ``/metrics`` parses (``promtool check metrics``), the totals of
the good spans are exact, and the process's peak memory stayed bounded.

Each attack is a test of its own (so a failure names it); the module-scoped ``serve`` and the
``ledger`` of good spans sent run through all of them, and the last test checks the aftermath.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

TOKEN = "hostile-token"
MAX_BODY = 8 * 1024 * 1024
MAX_INFLATED = 16 * 1024 * 1024
PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
JS = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
PEAK_RSS_BOUND_MIB = 1024
"""Peak RSS of serve over the whole suite; before the fixes one 16 MiB body of empty spans took
+3 GiB."""

SENT = {"requests": 0.0}
"""Good requests sent so far, each of weight 1 (no sampling floor is configured)."""


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    server = Serve(
        f"--max-body-bytes={MAX_BODY}",
        f"--max-decompressed-bytes={MAX_INFLATED}",
        env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN},
    )
    try:
        yield server
    finally:
        server.close()


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _good(count: int, tracestate: str = "", service: str = "hostile") -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(_kv("service.name", service))
    scope = resource.scope_spans.add()
    for _ in range(count):
        span = scope.spans.add(name="GET /", kind=Span.SPAN_KIND_SERVER, trace_state=tracestate)
        span.attributes.extend(
            [
                _kv("http.request.method", "GET"),
                _kv("http.response.body.size", 10_000),
                _kv("geo.country.iso_code", "DE"),
            ]
        )
    return request.SerializeToString()


def _post(serve: Serve, body: bytes, headers: dict[str, str], expect: int = 200) -> bytes:
    answer = requests.post(serve.traces_url, data=body, headers=headers, timeout=60)
    assert answer.status_code == expect, (answer.status_code, answer.content[:300])
    return answer.content


def _send_good(serve: Serve, count: int, tracestate: str = "") -> None:
    reply = ExportTraceServiceResponse.FromString(_post(serve, _good(count, tracestate), PB))
    assert reply.partial_success.rejected_spans == 0
    SENT["requests"] += count


def _json_span(
    service: str, attrs: dict[str, object], trace_state: str = "", kind: int = 2
) -> bytes:
    def value(v: object) -> dict[str, object]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    span: dict[str, object] = {
        "name": "x",
        "kind": kind,
        "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()],
    }
    if trace_state:
        span["traceState"] = trace_state
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": value(service)}]},
                "scopeSpans": [{"spans": [span]}],
            }
        ]
    }
    # ensure_ascii keeps a lone surrogate as the six characters \ud800, as a hostile sender writes
    return json.dumps(doc, ensure_ascii=True).encode()


# --- the attacks ---------------------------------------------------------------------------------


def test_lone_surrogates_in_every_label_source(serve: Serve) -> None:
    base: dict[str, object] = {"http.request.method": "GET", "http.response.body.size": 1000}
    _post(serve, _json_span("svc\ud800", base), JS)
    _post(serve, _json_span("hostile", {**base, "downstream.functional_unit": "u\udfff"}), JS)
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai\ud800",
        "gen_ai.request.model": "gpt-4o\udc00",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
    }
    _post(serve, _json_span("hostile", llm, kind=3), JS)
    SENT["requests"] += 2
    answer = requests.get(serve.metrics_url, timeout=10)
    assert answer.status_code == 200 and b"downstream_co2e_grams_total" in answer.content
    assert "\ufffd" in answer.content.decode("utf-8")


@pytest.mark.parametrize("threshold", ["ffffffffffffff", "fffffffffffff0", "8"])
def test_forged_sampling_thresholds_weigh_one(serve: Serve, threshold: str) -> None:
    """The largest valid threshold used to divide by zero (the whole batch: HTTP 500, lost); a
    forged one added 4.5e15 requests. With no sampling floor configured every span weighs 1."""
    before = total(scrape(serve.metrics_url), "downstream_requests_total")
    _send_good(serve, 10, tracestate=f"ot=th:{threshold}")
    _post(serve, _json_span("hostile", {"http.request.method": "GET"}, f"ot=th:{threshold}"), JS)
    SENT["requests"] += 1
    after = total(scrape(serve.metrics_url), "downstream_requests_total")
    assert after - before == 11


def test_empty_spans_in_a_gzip_body_cost_bounded_memory(serve: Serve) -> None:
    """16 MiB of empty spans (16 KiB on the wire) took +3 GiB and 30 s."""
    empty = b"\x12\x00" * (MAX_INFLATED // 2 - 64)
    scope = b"\x12" + _varint(len(empty)) + empty
    body = b"\x0a" + _varint(len(scope)) + scope
    answer = requests.post(
        serve.traces_url,
        data=gzip.compress(body),
        headers={**PB, "Content-Encoding": "gzip"},
        timeout=120,
    )
    assert answer.status_code == 413, answer.status_code
    assert b"max_spans_per_export" in answer.content


def test_many_gzip_members_inflate_in_linear_time(serve: Serve) -> None:
    members = gzip.compress(b"", mtime=0) * (MAX_BODY // 20 - 1)
    started = time.monotonic()
    answer = requests.post(
        serve.traces_url, data=members, headers={**PB, "Content-Encoding": "gzip"}, timeout=120
    )
    assert answer.status_code == 200  # an empty request: nothing to count, nothing wrong
    assert time.monotonic() - started < 8  # 8 MiB of members took 32 s; now under 1 s


def test_invalid_utf8_rejects_its_span_only(serve: Serve) -> None:
    body = bytearray(_good(3))
    good_name = b"\x2a\x05GET /"  # Span.name (field 5) of each span
    at = body.rindex(good_name)
    body[at + 2 : at + 7] = b"GE\xff /"
    reply = ExportTraceServiceResponse.FromString(_post(serve, bytes(body), PB))
    assert reply.partial_success.rejected_spans == 1
    SENT["requests"] += 2


@pytest.mark.parametrize("length", ["+0", "0_0", "-0", " 0x0", "\u0660"])
def test_odd_content_lengths_are_refused(serve: Serve, length: str) -> None:
    request = (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    assert _raw(serve, request).startswith(b"HTTP/1.1 400")


def test_the_bearer_scheme_is_case_insensitive(serve: Serve) -> None:
    for scheme in ("bearer", "BEARER"):
        headers = {**PB, "Authorization": f"{scheme} {TOKEN}"}
        _post(serve, _good(1), headers)
        SENT["requests"] += 1
    _post(serve, _good(1), {**PB, "Authorization": f"bearer {TOKEN}x"}, expect=401)


def test_slow_senders_do_not_starve_exports(serve: Serve) -> None:
    """16 sockets trickling bodies blocked every export for 36 s and more."""
    slow = []
    try:
        for _ in range(24):
            sock = socket.create_connection(_address(serve), timeout=5)
            sock.sendall(
                f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n".encode()
                + b"\x0a"
            )
            slow.append(sock)
        started = time.monotonic()
        _send_good(serve, 5)
        assert time.monotonic() - started < 3
    finally:
        for sock in slow:
            sock.close()


# --- the aftermath -------------------------------------------------------------------------------


def test_aftermath_metrics_parse_totals_exact_memory_bounded(serve: Serve, tmp_path: Path) -> None:
    _send_good(serve, 50)
    page = requests.get(serve.metrics_url, timeout=10).content
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed: `make test` installs Debian's prometheus")
    (tmp_path / "metrics.txt").write_bytes(page)
    check = subprocess.run(
        [promtool, "check", "metrics"], input=page, capture_output=True, timeout=60, check=False
    )
    # promtool exits 1 for lint warnings (naming advice) too; only a parse error is fatal.
    assert b"error while linting" not in check.stderr, check.stderr[:500]
    assert b"text format parsing error" not in check.stderr + check.stdout, check.stderr[:500]
    samples = scrape(serve.metrics_url)
    assert total(samples, "downstream_requests_total") == SENT["requests"]
    assert serve.alive()
    peak = _peak_rss_mib(serve.proc.pid)
    assert peak < PEAK_RSS_BOUND_MIB, f"serve peaked at {peak} MiB"
    stopped = serve.stop()
    assert stopped["event"] == "stopped"


# --- helpers -------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _address(serve: Serve) -> tuple[str, int]:
    host, _, port = serve.http.removeprefix("http://").rpartition(":")
    return host, int(port)


def _raw(serve: Serve, request: bytes) -> bytes:
    with socket.create_connection(_address(serve), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")
