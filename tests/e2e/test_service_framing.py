"""Framing, ``Expect: 100-continue``, the ``/metrics`` listener's cap and each source's share of the
body budget, on a real ``otel-downstream serve`` on 127.0.0.1 (bounded, self-stopping)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

TOKEN = "framing-token"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    server = Serve(
        f"--max-body-bytes={1 * MIB}",
        f"--max-decompressed-bytes={2 * MIB}",
        f"--max-body-bytes-in-flight={8 * MIB}",
        "--request-timeout=20",
        env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN},
    )
    try:
        yield server
    finally:
        server.close()


def _address(serve: Serve) -> tuple[str, int]:
    host, _, port = serve.http.removeprefix("http://").rpartition(":")
    return host, int(port)


def _batch(spans: int, service: str = "framing", pad: int = 0) -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    scope = resource.scope_spans.add()
    for _ in range(spans):
        span = scope.spans.add(name="GET /", kind=2)
        span.attributes.extend(
            [
                KeyValue(key="http.request.method", value=AnyValue(string_value="GET")),
                KeyValue(key="http.response.body.size", value=AnyValue(int_value=1000)),
                KeyValue(key="pad", value=AnyValue(string_value="x" * pad)),
            ]
        )
    return request.SerializeToString()


def _head(length_or_te: str, extra: str = "") -> bytes:
    return (
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {TOKEN}\r\n{length_or_te}{extra}\r\n"
    ).encode()


def _exchange(serve: Serve, data: bytes, wait: float = 5.0, source: str = "") -> bytes:
    sock = socket.create_connection(
        _address(serve), timeout=wait, source_address=(source, 0) if source else None
    )
    with sock:
        sock.sendall(data)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                break
            if not piece:
                break
            got += piece
            if b"\r\n\r\n" in got and not got.startswith(b"HTTP/1.1 100"):
                break
        return got


@pytest.mark.parametrize("size", [b"0x0", b"+0", b"-0", b"0_0", b" 0", b"00000000000000000"])
def test_chunk_sizes_other_than_hex_digits_are_refused(serve: Serve, size: bytes) -> None:
    data = _head("Transfer-Encoding: chunked\r\n") + size + b"\r\n\r\n"
    answer = _exchange(serve, data)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b"Connection: close" in answer


def test_valid_chunks_with_an_extension_are_read(serve: Serve) -> None:
    body = _batch(3)
    data = (
        _head("Transfer-Encoding: chunked\r\n")
        + f"{len(body):X};name=value\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    assert _exchange(serve, data).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: notchunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ],
)
def test_other_transfer_codings_and_double_framing_are_refused(serve: Serve, framing: str) -> None:
    answer = _exchange(serve, _head(framing) + b"5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b"Connection: close" in answer


def test_a_too_large_declared_length_is_refused_at_once(serve: Serve) -> None:
    """It used to wait for up to 64 MiB to arrive (or the request deadline: a 408, now 503)."""
    started = time.monotonic()
    answer = _exchange(serve, _head(f"Content-Length: {50 * MIB}\r\n"), wait=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert time.monotonic() - started < 3


def test_100_continue_only_after_the_checks(serve: Serve) -> None:
    body = _batch(2)
    expect = "Expect: 100-continue\r\n"
    refused = _exchange(
        serve,
        _head(f"Content-Length: {len(body)}\r\n", expect).replace(TOKEN.encode(), b"wrong"),
    )
    assert refused.startswith(b"HTTP/1.1 401"), refused[:80]  # no 100 first: nothing invited
    too_big = _exchange(serve, _head(f"Content-Length: {5 * MIB}\r\n", expect))
    assert too_big.startswith(b"HTTP/1.1 413"), too_big[:80]
    with socket.create_connection(_address(serve), timeout=5) as sock:
        sock.sendall(_head(f"Content-Length: {len(body)}\r\n", expect))
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_the_metrics_listener_caps_its_connections(serve: Serve) -> None:
    """2,000 idle connections to /metrics made 2,000 threads; now past the cap they get 503."""
    host, port = serve.metrics_url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    held: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(80):
            sock = socket.create_connection((host, int(port)), timeout=5)
            held.append(sock)
        time.sleep(0.5)
        for sock in held:
            sock.setblocking(False)
            try:
                if sock.recv(64).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except BlockingIOError:
                pass
        assert refused >= 80 - 16  # at most 16 from one address are served at once
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert requests.get(serve.metrics_url, timeout=5).status_code == 200


def test_one_address_cannot_hold_the_whole_body_budget(serve: Serve) -> None:
    """Ten stalled uploads from one address held every byte of the budget, so every other
    sender got 503; now an address holds at most its share."""
    body = _batch(1, pad=900 * 1024)
    stalled: list[socket.socket] = []
    try:
        for _ in range(10):
            sock = socket.create_connection(_address(serve), timeout=5)
            sock.sendall(_head(f"Content-Length: {len(body)}\r\n") + body[: 900 * 1024])
            stalled.append(sock)
        time.sleep(1.0)
        before = total(scrape(serve.metrics_url), "downstream_requests_total", service_name="b")
        other = _batch(1, service="b", pad=200 * 1024)
        answer = _exchange(
            serve, _head(f"Content-Length: {len(other)}\r\n") + other, source="127.0.0.2"
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer[:120]
        after = total(scrape(serve.metrics_url), "downstream_requests_total", service_name="b")
        assert after - before == 1
    finally:
        for sock in stalled:
            sock.close()
