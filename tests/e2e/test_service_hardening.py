"""``serve`` under hostile or busy conditions: slow senders, a graceful stop under load, latency of
keep-alive answers, strict framing and auth parsing, and retryable gRPC overload.

Every test runs a real ``otel-downstream serve`` (or its server classes) on 127.0.0.1, is bounded
by timeouts, and stops what it started.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry

from otel_downstream.exporters.otlp.export import ExportCore
from otel_downstream.exporters.otlp.http_receiver import OtlpHttpServer
from otel_downstream.exporters.otlp.service import OtlpService, ServiceConfig, _MetricsServer

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _batch(service: str, spans: int = 1, response_bytes: int = 10_000) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", service))
    scope = resource_spans.scope_spans.add()
    for _ in range(spans):
        span = scope.spans.add(name="GET /", kind=Span.SPAN_KIND_SERVER)
        span.attributes.extend(
            [
                _kv("http.request.method", "GET"),
                _kv("http.response.body.size", response_bytes),
                _kv("geo.country.iso_code", "DE"),
            ]
        )
    return request.SerializeToString()


def _address(serve: Serve) -> tuple[str, int]:
    host, port = str(serve.info["otlp_http"]).rsplit(":", 1)
    return host, int(port)


def _head(length: int | str, extra: str = "") -> bytes:
    return (
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def _answer(sock: socket.socket, limit_s: float) -> bytes:
    """What the server sends until it closes or ``limit_s`` passes."""
    sock.settimeout(limit_s)
    got = b""
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except (TimeoutError, ConnectionError):
        pass
    return got


@pytest.fixture
def slow_serve() -> Iterator[Serve]:
    server = Serve("--request-timeout=2")
    try:
        yield server
    finally:
        server.close()


# --- 1. slow senders ------------------------------------------------------------------------------


def _trickle(address: tuple[str, int]) -> tuple[bytes, float]:
    """Send a request head, then one body byte every 0.1 s until the server answers (or 8 s)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(_head(100_000))
        while time.monotonic() - started < 8:
            try:
                sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
                break  # an answer (or the end of the connection) is here
            except BlockingIOError:
                pass
            try:
                sock.sendall(b"\x00")
            except ConnectionError:
                break
            time.sleep(0.1)
        answer = _answer(sock, 3)
    return answer, time.monotonic() - started


def test_slow_senders_do_not_starve_exports_and_get_a_retryable_503(slow_serve: Serve) -> None:
    address = _address(slow_serve)
    with ThreadPoolExecutor(32) as pool:
        slow = [pool.submit(_trickle, address) for _ in range(32)]
        try:
            time.sleep(0.7)  # every slow sender is connected and trickling
            started = time.monotonic()
            answer = requests.post(
                slow_serve.traces_url, data=_batch("fast-http"), headers=PB, timeout=5
            )
            assert answer.status_code == 200, answer.status_code
            assert time.monotonic() - started < 2
            started = time.monotonic()
            with grpc.insecure_channel(slow_serve.grpc) as channel:
                channel.unary_unary(EXPORT)(_batch("fast-grpc"), timeout=5)
            assert time.monotonic() - started < 2
        finally:
            results = [job.result(timeout=20) for job in slow]
    for answer, seconds in results:
        # 503 + Retry-After, which OTLP senders retry: a 408 they would have to drop
        assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
        assert b"Retry-After: 1" in answer
        assert b"Connection: close" in answer
        assert 1.5 < seconds < 6, seconds
    samples = scrape(slow_serve.metrics_url)
    assert total(samples, "downstream_requests_total", service_name="fast-http") == 1
    assert total(samples, "downstream_requests_total", service_name="fast-grpc") == 1


def test_a_request_head_trickled_past_the_deadline_gets_503(slow_serve: Serve) -> None:
    started = time.monotonic()
    with socket.create_connection(_address(slow_serve), timeout=10) as sock:
        for byte in b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" * 10:
            if time.monotonic() - started > 5:
                break
            try:
                sock.sendall(bytes([byte]))
            except ConnectionError:
                break
            time.sleep(0.05)
        answer = _answer(sock, 3)
    assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
    assert b"Retry-After: 1" in answer
    assert time.monotonic() - started < 7


def test_body_bytes_being_read_are_bounded_across_connections() -> None:
    server = Serve("--max-body-bytes-in-flight=262144")
    try:
        address = _address(server)
        with socket.create_connection(address, timeout=10) as first:
            # A large claimed length reserves nothing: only bytes that arrive count.
            first.sendall(_head(1_000_000) + b"\x00" * 100_000)
            time.sleep(0.3)
            ok = requests.post(server.traces_url, data=_batch("budget"), headers=PB, timeout=5)
            assert ok.status_code == 200
            with socket.create_connection(address, timeout=10) as second:
                second.sendall(_head(1_000_000))
                try:
                    for _ in range(10):
                        second.sendall(b"\x00" * 65536)
                except ConnectionError:
                    pass
                answer = _answer(second, 3)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
            assert b"Retry-After: 1" in answer
            assert b"Connection: close" in answer
        # the first sender went away: its bytes are released and the budget is whole again
        time.sleep(0.3)
        big = _batch("budget-after", spans=2000)
        assert 100_000 < len(big) < 262_144
        answer = requests.post(server.traces_url, data=big, headers=PB, timeout=5)
        assert answer.status_code == 200
    finally:
        server.close()


def test_one_source_cannot_take_every_connection() -> None:
    server = Serve("--max-connections-per-source=3")
    try:
        address = _address(server)
        held = [socket.create_connection(address, timeout=10) for _ in range(3)]
        time.sleep(0.2)
        with socket.create_connection(address, timeout=10) as extra:
            answer = _answer(extra, 3)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
        assert b"from this address" in answer
        held.pop().close()
        time.sleep(0.3)
        ok = requests.post(server.traces_url, data=_batch("per-source"), headers=PB, timeout=5)
        assert ok.status_code == 200
        for sock in held:
            sock.close()
    finally:
        server.close()


# --- 2. graceful stop under load ------------------------------------------------------------------


def _client(address: tuple[str, int], body: bytes, spans: int, acked: list[int]) -> None:
    """Export over one keep-alive connection until the server stops answering 200."""
    conn = http.client.HTTPConnection(*address, timeout=15)
    try:
        while True:
            try:
                conn.request("POST", "/v1/traces", body=body, headers=PB)
                answer = conn.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException):
                return
            if answer.status != 200:
                return
            acked[0] += spans
    finally:
        conn.close()


@pytest.mark.parametrize("round_", range(4))
def test_sigterm_under_load_answers_every_batch_it_counts(round_: int) -> None:
    server = Serve("--log-level=WARNING")
    try:
        address = _address(server)
        spans = 3
        body = _batch(f"drain-{round_}", spans=spans)
        counts = [[0] for _ in range(12)]
        threads = [
            threading.Thread(target=_client, args=(address, body, spans, c), daemon=True)
            for c in counts
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.6 + 0.1 * round_)
        stopped = server.stop()
        for thread in threads:
            thread.join(20)
            assert not thread.is_alive()
        acked = sum(c[0] for c in counts)
        assert acked > 0
        assert stopped["spans_received"] == acked, (stopped, acked)
    finally:
        server.close()


# --- 3. latency of keep-alive answers -------------------------------------------------------------


def test_keep_alive_answers_with_a_body_are_not_delayed(slow_serve: Serve) -> None:
    body = _batch("partial", response_bytes=-1)  # rejected: a partial-success body every time
    conn = http.client.HTTPConnection(*_address(slow_serve), timeout=10)
    try:
        started = time.monotonic()
        for _ in range(100):
            conn.request("POST", "/v1/traces", body=body, headers=PB)
            answer = conn.getresponse()
            assert answer.status == 200
            assert answer.read()  # a partial success is a non-empty body
        assert time.monotonic() - started < 1.0
        host, port = str(slow_serve.info["metrics"]).rsplit(":", 1)
        metrics = http.client.HTTPConnection(host, int(port), timeout=10)
        started = time.monotonic()
        for _ in range(30):
            metrics.request("GET", "/healthz")
            reply = metrics.getresponse()
            assert reply.status == 200
            assert reply.read() == b"ok\n"
        assert time.monotonic() - started < 0.5
        metrics.close()
    finally:
        conn.close()


# --- 4. listen backlog, framing, auth, gRPC overload ---------------------------------------------


def test_listen_backlog_takes_a_burst_of_connections() -> None:
    """No thread accepts here: connections wait in the kernel's queue, which must hold them."""
    core = ExportCore(
        _NoAccounting(),
        auth_token=None,
        max_body_bytes=1024,
        max_decompressed_bytes=1024,
        max_concurrent_exports=1,
    )
    servers = [
        OtlpHttpServer(("127.0.0.1", 0), core, idle_timeout=5, request_timeout=5),
        _MetricsServer(("127.0.0.1", 0), CollectorRegistry()),
    ]
    try:
        for server in servers:
            sockets = []
            try:
                for _ in range(64):
                    sockets.append(socket.create_connection(server.server_address, timeout=0.5))
            finally:
                for sock in sockets:
                    sock.close()
            assert len(sockets) == 64
    finally:
        for server in servers:
            server.server_close()


class _NoAccounting:
    def account(self, *args: object, **kwargs: object) -> bool:
        return True

    def reject(self, reason: str, weight: float = 1.0) -> None:
        pass

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "lengths",
    [["+0"], ["-0"], ["0_0"], ["0 "], ["\u0660"], ["\uff10"], ["0x0"], ["0", "5"]],
    ids=["plus", "minus", "underscore", "space", "arabic", "fullwidth", "hex", "conflicting"],
)
def test_content_length_must_be_plain_digits(slow_serve: Serve, lengths: list[str]) -> None:
    head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    head += "".join(f"Content-Length: {value}\r\n" for value in lengths) + "\r\n"
    with socket.create_connection(_address(slow_serve), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = _answer(sock, 3)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b"Connection: close" in answer


def test_identical_content_lengths_are_accepted(slow_serve: Serve) -> None:
    body = _batch("same-length")
    head = _head(len(body), f"Content-Length: {len(body)}\r\n")
    with socket.create_connection(_address(slow_serve), timeout=10) as sock:
        sock.sendall(head + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_the_bearer_scheme_is_case_insensitive() -> None:
    token = "t0ken-Case"
    server = Serve(env={"OTEL_DOWNSTREAM_SERVE_TOKEN": token})
    try:
        body = _batch("bearer")
        for auth, status in (
            (f"bearer {token}", 200),
            (f"BEARER  {token}", 200),
            (f"Bearer {token.lower()}", 401),
            (f"Basic {token}", 401),
            (token, 401),
        ):
            answer = requests.post(
                server.traces_url, data=body, headers={**PB, "Authorization": auth}, timeout=5
            )
            assert answer.status_code == status, auth
        with grpc.insecure_channel(server.grpc) as channel:
            export = channel.unary_unary(EXPORT)
            export(body, metadata=(("authorization", f"bEaReR {token}"),), timeout=5)
            with pytest.raises(grpc.RpcError) as info:
                export(body, metadata=(("authorization", f"bearer {token}x"),), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        samples = scrape(server.metrics_url)
        assert total(samples, "downstream_requests_total", service_name="bearer") == 3
    finally:
        server.close()


def _retry_info(error: grpc.RpcError) -> error_details_pb2.RetryInfo:
    """The ``RetryInfo`` of a ``RESOURCE_EXHAUSTED`` answer (OTLP senders retry only with one)."""
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error  # type: ignore[attr-defined]
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds + retry.retry_delay.nanos > 0
    return retry


def test_grpc_overload_is_resource_exhausted_with_retry_info() -> None:
    """The gate counts exports handed to the pool (4 per thread); a queued export waits at most
    a second for its thread, then UNAVAILABLE, never counted."""
    config = ServiceConfig(
        otlp_http_port=-1, otlp_grpc_port=0, metrics_port=-1, max_concurrent_exports=1
    )
    service = OtlpService(config, accountant=_SlowAccounting(), registry=CollectorRegistry())
    target = f"127.0.0.1:{service.start()['otlp_grpc']}"
    body = _batch("grpc-gate")
    try:
        with grpc.insecure_channel(target) as channel:
            export = channel.unary_unary(EXPORT)
            first = export.future(body, timeout=10)  # accounting for 1.5 s on the one thread
            time.sleep(0.3)
            queued = [export.future(body, timeout=10) for _ in range(3)]
            time.sleep(0.3)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                export(body, timeout=5)
            assert time.monotonic() - started < 1
            _retry_info(info.value)
            first.result(timeout=10)
            codes = {_ended(call, 10) for call in queued}
            assert codes == {grpc.StatusCode.UNAVAILABLE}, codes
            export(body, timeout=5)  # admitted again
    finally:
        service.stop()
    assert service.core.tally["spans_received"] == 2


# --- 5. gRPC: stalled streams, overload while stalled, drain ---------------------------------------

_OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
"""Channel option: a connection of its own, as another client's would be (grpcio shares them)."""


def _stall(channel: grpc.Channel, count: int, release: threading.Event) -> list[grpc.Future]:
    """``count`` Export calls that send their headers and never a message, with no deadline."""

    def never() -> Iterator[bytes]:
        release.wait(30)
        return
        yield b""  # a generator that yields nothing

    stalled = channel.stream_unary(EXPORT)
    return [stalled.future(never()) for _ in range(count)]


def _ended(call: grpc.Future, limit_s: float) -> grpc.StatusCode:
    error = call.exception(timeout=limit_s)
    assert isinstance(error, grpc.RpcError), error
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    return code


def test_stalled_grpc_streams_do_not_starve_exports(slow_serve: Serve) -> None:
    release = threading.Event()
    others = [grpc.insecure_channel(slow_serve.grpc, options=_OWN_CONNECTION) for _ in range(4)]
    try:
        with grpc.insecure_channel(slow_serve.grpc) as shared:
            opened = time.monotonic()
            stalled = _stall(shared, 20, release)
            for channel in others:
                stalled += _stall(channel, 5, release)
            time.sleep(0.5)  # every stream is open on the server, waiting for its message
            started = time.monotonic()
            with grpc.insecure_channel(slow_serve.grpc, options=_OWN_CONNECTION) as honest:
                honest.unary_unary(EXPORT)(_batch("grpc-honest"), timeout=5)
            assert time.monotonic() - started < 2
            started = time.monotonic()
            shared.unary_unary(EXPORT)(_batch("grpc-honest"), timeout=5)  # beside 20 stalled
            assert time.monotonic() - started < 2
            codes = {_ended(call, 10) for call in stalled}
            assert codes <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}, codes
            assert time.monotonic() - opened < 2 + 2  # the receive deadline, with some slack
    finally:
        release.set()
        for channel in others:
            channel.close()
    samples = scrape(slow_serve.metrics_url)
    assert total(samples, "downstream_requests_total", service_name="grpc-honest") == 2


def test_stalled_grpc_streams_hold_no_export_place() -> None:
    """80 streams stalled on one connection (more than the gate of 64) leave every export its
    place, on that connection too; past 96 waiting on one connection, retryable refusals."""
    server = Serve("--request-timeout=3")
    release = threading.Event()
    try:
        with grpc.insecure_channel(server.grpc, options=_OWN_CONNECTION) as shared:
            stalled = _stall(shared, 80, release)
            time.sleep(0.5)
            assert not any(call.done() for call in stalled)
            started = time.monotonic()
            with grpc.insecure_channel(server.grpc, options=_OWN_CONNECTION) as honest:
                honest.unary_unary(EXPORT)(_batch("grpc-beside-stalled"), timeout=5)
            shared.unary_unary(EXPORT)(_batch("grpc-beside-stalled"), timeout=5)
            assert time.monotonic() - started < 1
            more = _stall(shared, 20, release)
            time.sleep(0.5)
            refused = [call for call in more if call.done()]
            assert len(refused) == 4, len(refused)
            for call in refused:
                _retry_info(call.exception(timeout=0))  # type: ignore[arg-type]
            with grpc.insecure_channel(server.grpc, options=_OWN_CONNECTION) as honest:
                honest.unary_unary(EXPORT)(_batch("grpc-beside-stalled"), timeout=5)
            codes = {_ended(call, 6) for call in stalled + more if call not in refused}
            assert codes == {grpc.StatusCode.DEADLINE_EXCEEDED}, codes
            shared.unary_unary(EXPORT)(_batch("grpc-beside-stalled"), timeout=5)
        samples = scrape(server.metrics_url)
        assert total(samples, "downstream_requests_total", service_name="grpc-beside-stalled") == 4
    finally:
        release.set()
        server.close()


_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_grpc_messages_waiting_for_a_thread_are_bounded_by_the_byte_budget() -> None:
    """A received message holds the byte budget OTLP/HTTP uses until its export is over: past it,
    RESOURCE_EXHAUSTED with RetryInfo (before, every message was admitted and queued, unbounded).
    Memory stays bounded; what grpc holds of messages still arriving is not counted (see
    docs/service.md), so the bound checked here is loose."""
    budget = 48 * 1024 * 1024
    server = Serve("--max-concurrent-exports=4", f"--max-body-bytes-in-flight={budget}")
    size = 32 * 1024 * 1024
    # One unknown length-delimited field (15) of ``size`` bytes: cheap to walk, no spans.
    big = b"\x7a" + _varint(size - 10) + b"\0" * (size - 10)
    slow = _batch("grpc-budget-slow", spans=20_000)  # the four threads are busy for a while
    options = (*_OWN_CONNECTION, ("grpc.max_send_message_length", -1))
    channels = [grpc.insecure_channel(server.grpc, options=options) for _ in range(4)]
    try:
        base = _vm_hwm_kib(server.proc.pid)
        slows = [channels[0].unary_unary(EXPORT).future(slow, timeout=60) for _ in range(4)]
        time.sleep(0.3)
        bigs = []
        for i in range(12):
            bigs.append(channels[1 + i % 3].unary_unary(EXPORT).future(big, timeout=60))
            time.sleep(0.15)
        errors = [call.exception(timeout=60) for call in bigs]
        for call in slows:
            call.exception(timeout=60)
        exhausted = [e for e in errors if e is not None and e.code() == _EXHAUSTED]
        assert len(exhausted) >= 2, [e and e.code() for e in errors]  # type: ignore[attr-defined]
        for error in exhausted:
            _retry_info(error)  # type: ignore[arg-type]
        grown_mib = (_vm_hwm_kib(server.proc.pid) - base) // 1024
        assert grown_mib < 480, grown_mib
    finally:
        for channel in channels:
            channel.close()
        server.close()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def test_grpc_exports_past_their_deadline_are_not_counted() -> None:
    """Exports queued past the sender's deadline are refused, not counted: every span counted is
    a span acknowledged (45 of 64 timed-out batches were counted, and retried, before)."""
    server = Serve("--log-level=WARNING")
    spans = 8_000
    body = _batch("grpc-deadline", spans=spans)
    try:
        with grpc.insecure_channel(server.grpc, options=_OWN_CONNECTION) as channel:
            export = channel.unary_unary(EXPORT)
            calls = [export.future(body, timeout=1.5) for _ in range(48)]
            acked = sum(spans for call in calls if call.exception(timeout=60) is None)
            time.sleep(0.5)
        stopped = server.stop()
        assert stopped["spans_received"] == acked, (stopped, acked)
    finally:
        server.close()


def _grpc_client(target: str, body: bytes, spans: int, acked: list[int]) -> None:
    """Export over a connection of its own until the server stops answering OK."""
    with grpc.insecure_channel(target, options=_OWN_CONNECTION) as channel:
        export = channel.unary_unary(EXPORT)
        while True:
            try:
                export(body, timeout=15)
            except grpc.RpcError:
                return
            acked[0] += spans


@pytest.mark.parametrize("round_", range(4))
def test_sigterm_under_grpc_load_answers_every_batch_it_counts(round_: int) -> None:
    server = Serve("--log-level=WARNING")
    release = threading.Event()
    try:
        spans = 300
        body = _batch(f"grpc-drain-{round_}", spans=spans)
        counts = [[0] for _ in range(8)]
        threads = [
            threading.Thread(target=_grpc_client, args=(server.grpc, body, spans, c), daemon=True)
            for c in counts
        ]
        for thread in threads:
            thread.start()
        with grpc.insecure_channel(server.grpc, options=_OWN_CONNECTION) as channel:
            stalled = _stall(channel, 3, release)  # must not hold the stop for its whole grace
            time.sleep(0.6 + 0.1 * round_)
            started = time.monotonic()
            stopped = server.stop()
            assert time.monotonic() - started < 5
            for thread in threads:
                thread.join(20)
                assert not thread.is_alive()
            for call in stalled:
                _ended(call, 5)
        acked = sum(c[0] for c in counts)
        assert acked > 0
        assert stopped["spans_received"] == acked, (stopped, acked)
    finally:
        release.set()
        server.close()


class _SlowAccounting(_NoAccounting):
    def account(self, *args: object, **kwargs: object) -> bool:
        time.sleep(1.5)
        return True


def test_grpc_stop_answers_an_export_that_outlives_the_grace() -> None:
    """Counted means answered, even past the grace; not yet started past it means refused."""
    config = ServiceConfig(
        otlp_http_port=-1,
        otlp_grpc_port=0,
        metrics_port=-1,
        max_concurrent_exports=1,  # one pool thread: the second export queues behind the first
        drain_timeout_s=0.5,
    )
    service = OtlpService(config, accountant=_SlowAccounting(), registry=CollectorRegistry())
    target = f"127.0.0.1:{service.start()['otlp_grpc']}"
    answers: dict[str, grpc.StatusCode] = {}

    def send(name: str) -> None:
        with grpc.insecure_channel(target, options=_OWN_CONNECTION) as channel:
            try:
                channel.unary_unary(EXPORT)(_batch(name), timeout=10)
                answers[name] = grpc.StatusCode.OK
            except grpc.RpcError as error:
                answers[name] = error.code()  # type: ignore[attr-defined]

    senders = [threading.Thread(target=send, args=(name,)) for name in ("first", "second")]
    try:
        for sender in senders:
            sender.start()
            time.sleep(0.3)
        service.stop()  # the first export is accounting until well past the 0.5 s grace
    finally:
        for sender in senders:
            sender.join(15)
    assert answers == {"first": grpc.StatusCode.OK, "second": grpc.StatusCode.UNAVAILABLE}
    assert service.core.tally["spans_received"] == 1
