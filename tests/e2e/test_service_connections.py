"""``serve``'s connection caps under idle and trickling sockets, on OTLP/HTTP and ``/metrics``.

Idle sockets from a few addresses used to fill the cap and lock every other sender out for the idle
timeout; trickled ``/metrics`` requests held their places for ever; refusals were reset before the
peer could read them. Every test runs a real ``otel-downstream serve`` on 127.0.0.1 (clients bind
other 127.x addresses to be several sources), is bounded by timeouts, and stops what it started.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .test_service import Serve

pytestmark = pytest.mark.e2e

PB = {"Content-Type": "application/x-protobuf"}


def _batch(service: str) -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    resource.scope_spans.add().spans.add(name="GET /", kind=2)
    return request.SerializeToString()


def _address(serve: Serve, listener: str) -> tuple[str, int]:
    host, _, port = str(serve.info[listener]).rpartition(":")
    return host, int(port)


def _connect(address: tuple[str, int], source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(address)
    return sock


def _status(
    address: tuple[str, int], source: str, method: str, path: str, body: bytes | None = None
) -> int:
    """One request from ``source`` on a new connection; its status."""
    conn = http.client.HTTPConnection(*address, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=PB if body is not None else {})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def _closed(sock: socket.socket, limit_s: float) -> bool:
    """Whether the server ended the connection (an end of stream or a reset) within ``limit_s``."""
    sock.settimeout(limit_s)
    try:
        return sock.recv(4096) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


def _read_all(sock: socket.socket, limit_s: float) -> bytes:
    sock.settimeout(limit_s)
    got = b""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)  # a reset raises: the answer must arrive, not be destroyed
        except TimeoutError:
            break
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture
def serve() -> Iterator[Serve]:
    server = Serve("--log-level=WARNING")
    try:
        yield server
    finally:
        server.close()


def test_idle_sockets_from_four_addresses_do_not_lock_out_an_exporter(serve: Serve) -> None:
    """4 x 64 silent sockets fill the cap (256); the oldest silent one makes room for the next."""
    address = _address(serve, "otlp_http")
    held: list[socket.socket] = []
    try:
        for source in ("127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"):
            held.extend(_connect(address, source) for _ in range(64))
        time.sleep(0.5)  # every one is accepted and waiting
        started = time.monotonic()
        for _ in range(3):
            assert _status(address, "127.0.0.50", "POST", "/v1/traces", _batch("honest")) == 200
        assert time.monotonic() - started < 3
        assert _closed(held[0], 2)  # the oldest idle socket was the one evicted
    finally:
        for sock in held:
            sock.close()


def test_a_connection_in_a_request_is_never_evicted() -> None:
    server = Serve("--max-connections=2", "--log-level=WARNING")
    try:
        address = _address(server, "otlp_http")
        body = _batch("mid-request")
        head = (
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        busy = _connect(address, "127.0.1.1")
        busy.sendall(head[:20])  # in a request: never evicted
        time.sleep(0.3)
        idle = _connect(address, "127.0.1.2")
        time.sleep(0.3)
        newcomer = _connect(address, "127.0.1.3")  # at the cap of 2: the idle one makes room
        try:
            assert _closed(idle, 2)
            newcomer.sendall(head[:20])
            time.sleep(0.3)
            with _connect(address, "127.0.1.4") as refused:  # nothing left to evict: 503
                answer = _read_all(refused, 3)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
            assert b"too many connections" in answer
            for sock in (busy, newcomer):
                sock.sendall(head[20:] + body)
                assert _read_all(sock, 1).startswith(b"HTTP/1.1 200")
        finally:
            for sock in (busy, idle, newcomer):
                sock.close()
    finally:
        server.close()


def test_silent_connections_are_closed_after_the_first_byte_timeout() -> None:
    server = Serve("--first-byte-timeout=1", "--log-level=WARNING")
    try:
        for listener in ("otlp_http", "metrics"):
            address = _address(server, listener)
            started = time.monotonic()
            with _connect(address, "127.0.0.1") as silent:
                assert _closed(silent, 5), listener
            assert 0.7 < time.monotonic() - started < 3, listener
        # a kept-alive connection waits the idle timeout (30 s) for its next request, not 1 s
        conn = http.client.HTTPConnection(*_address(server, "otlp_http"), timeout=10)
        try:
            for _ in range(2):
                conn.request("POST", "/v1/traces", body=_batch("kept-alive"), headers=PB)
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200
                time.sleep(1.5)
        finally:
            conn.close()
    finally:
        server.close()


def test_metrics_idle_sockets_from_four_addresses_do_not_lock_out_a_scraper(serve: Serve) -> None:
    address = _address(serve, "metrics")
    held: list[socket.socket] = []
    try:
        for source in ("127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4"):
            held.extend(_connect(address, source) for _ in range(16))
        time.sleep(0.5)
        assert _status(address, "127.0.2.99", "GET", "/metrics") == 200
        assert _status(address, "127.0.2.99", "GET", "/healthz") == 200
    finally:
        for sock in held:
            sock.close()


def test_metrics_trickled_requests_end_at_their_deadline() -> None:
    """4 x 16 sockets trickling a request head kept /metrics full for ever (a byte every 0.5 s
    reset the 30 s per-read timeout); one deadline per request now ends each with a 503."""
    server = Serve("--request-timeout=2", "--log-level=WARNING")
    try:
        address = _address(server, "metrics")
        held: list[socket.socket] = []
        try:
            for source in ("127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4"):
                for _ in range(16):
                    held.append(_connect(address, source))
                    held[-1].sendall(b"G")
            scraped, started = None, time.monotonic()
            while scraped != 200 and time.monotonic() - started < 8:
                for sock in held:
                    try:
                        sock.sendall(b"E")
                    except OSError:
                        pass
                scraped = _status(address, "127.0.2.99", "GET", "/metrics")
                time.sleep(0.5)
            assert scraped == 200
            assert time.monotonic() - started < 5
            answer = _read_all(held[0], 2)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
            assert b"Retry-After: 1" in answer
        finally:
            for sock in held:
                sock.close()
    finally:
        server.close()


@pytest.mark.parametrize("listener", ["otlp_http", "metrics"])
def test_refusals_are_read_as_503_by_a_client_still_writing(serve: Serve, listener: str) -> None:
    """Past the per-address cap the newcomer is refused; it used to be shut at once, so a client
    still writing its request got a reset instead of the answer."""
    address = _address(serve, listener)
    cap = 64 if listener == "otlp_http" else 16
    held = [_connect(address, "127.0.3.1") for _ in range(cap)]
    try:
        time.sleep(0.3)
        for _ in range(3):
            with _connect(address, "127.0.3.1") as refused:
                # more than the socket buffers hold: the write lasts until the server reads it
                # (it used to fail with a reset, and the client never read the answer)
                refused.sendall(
                    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n"
                    + b"\x00" * 8_388_608
                )
                answer = _read_all(refused, 3)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
            assert b"Retry-After: 1" in answer
            assert b"too many connections from this address" in answer
    finally:
        for sock in held:
            sock.close()
