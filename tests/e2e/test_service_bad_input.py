"""Bad input to a real ``serve`` process: clear refusals, bounded memory, and it keeps serving."""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

TOKEN = "bad-input-token"
MAX_BODY = 1024 * 1024
MAX_INFLATED = 4 * 1024 * 1024
PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
JS = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    server = Serve(
        f"--max-body-bytes={MAX_BODY}",
        f"--max-decompressed-bytes={MAX_INFLATED}",
        "--min-sampling-probability=0.5",  # the threshold test's th:8 counts twice
        env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN},
    )
    try:
        yield server
        assert server.alive()  # after everything below
        stopped = server.stop()
        assert stopped["event"] == "stopped"
    finally:
        server.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _request(spans: list[tuple[str, int, dict[str, object]]], service: str) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", service))
    scope = resource_spans.scope_spans.add()
    for name, kind, attrs in spans:
        span = scope.spans.add(name=name, kind=kind)  # type: ignore[arg-type]
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return request.SerializeToString()


def _good_http(response_bytes: int = 10_000) -> tuple[str, int, dict[str, object]]:
    attrs: dict[str, object] = {
        "http.request.method": "GET",
        "http.response.body.size": response_bytes,
        "geo.country.iso_code": "DE",
    }
    return ("GET /", Span.SPAN_KIND_SERVER, attrs)


def _status(answer: requests.Response) -> status_pb2.Status:
    status = status_pb2.Status()
    status.ParseFromString(answer.content)
    return status


# --- HTTP: malformed bodies, types, encodings, sizes ---------------------------------------------


def test_malformed_protobuf_is_400_with_a_status(serve: Serve) -> None:
    answer = requests.post(serve.traces_url, data=b"\x0a\xff\xff\xff\x0f", headers=PB, timeout=10)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/x-protobuf"
    status = _status(answer)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "not a protobuf ExportTraceServiceRequest" in status.message


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"resourceSpans": [', "not valid JSON"),
        (b'{"resourceSpans": "everything"}', "resourceSpans='everything': expected an array"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": {"kind": 2}}]}]}',
            'resourceSpans[0].scopeSpans[0].spans={"kind": 2}: expected an array',
        ),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_json_is_400_naming_field_and_value(
    serve: Serve, body: bytes, names: str
) -> None:
    answer = requests.post(serve.traces_url, data=body, headers=JS, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["code"] == 3
    assert names in answer.json()["message"]


def test_a_span_whose_kind_does_not_parse_is_rejected_alone(serve: Serve) -> None:
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "up"}]}]}]}'
    answer = requests.post(serve.traces_url, data=body, headers=JS, timeout=10)
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "resourceSpans[0].scopeSpans[0].spans[0].kind='up'" in partial["errorMessage"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/protobuf+x", ""])
def test_wrong_content_type_is_415(serve: Serve, content_type: str) -> None:
    headers = {**PB, "Content-Type": content_type}
    answer = requests.post(
        serve.traces_url, data=_request([_good_http()], "ct"), headers=headers, timeout=10
    )
    assert answer.status_code == 415
    assert "expected application/x-protobuf or application/json" in answer.json()["message"]


def test_unknown_content_encoding_is_415(serve: Serve) -> None:
    headers = {**PB, "Content-Encoding": "br"}
    answer = requests.post(serve.traces_url, data=b"\x00", headers=headers, timeout=10)
    assert answer.status_code == 415
    assert "Content-Encoding='br'" in _status(answer).message


def test_gzip_and_deflate_bodies_are_accepted(serve: Serve) -> None:
    body = _request([_good_http()], "enc")
    raw = zlib.compressobj(wbits=-15)  # raw deflate, no zlib header: some clients send it
    for encoding, packed in (
        ("gzip", gzip.compress(body)),
        ("gzip", gzip.compress(body[:20]) + gzip.compress(body[20:])),  # two gzip members
        ("deflate", zlib.compress(body)),
        ("deflate", raw.compress(body) + raw.flush()),
    ):
        headers = {**PB, "Content-Encoding": encoding}
        answer = requests.post(serve.traces_url, data=packed, headers=headers, timeout=10)
        assert answer.status_code == 200, encoding
    assert total(scrape(serve.metrics_url), "downstream_requests_total", service_name="enc") == 4


def test_truncated_and_corrupt_gzip_are_400(serve: Serve) -> None:
    packed = gzip.compress(_request([_good_http()] * 50, "gz"))
    for data, words in (
        (packed[: len(packed) // 2], "truncated"),
        (packed[:10] + b"\x00" * 40 + packed[50:], "corrupt"),
        (b"not gzip at all", "corrupt"),
    ):
        headers = {**PB, "Content-Encoding": "gzip"}
        answer = requests.post(serve.traces_url, data=data, headers=headers, timeout=10)
        assert answer.status_code == 400
        assert words in _status(answer).message
    assert total(scrape(serve.metrics_url), "downstream_requests_total", service_name="gz") == 0


def test_gzip_bomb_is_413_and_costs_no_memory(serve: Serve) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\x00" * (1024 * 1024)
    bomb = b"".join(packer.compress(block) for _ in range(256)) + packer.flush()  # 256 MiB
    assert len(bomb) < MAX_BODY  # it passes the wire limit: only inflating shows its size
    before = _rss_kib(serve.proc.pid)
    headers = {**PB, "Content-Encoding": "gzip"}
    for _ in range(3):
        answer = requests.post(serve.traces_url, data=bomb, headers=headers, timeout=30)
        assert answer.status_code == 413
        assert f"max_decompressed_bytes={MAX_INFLATED}" in _status(answer).message
    assert _rss_kib(serve.proc.pid) - before < 64 * 1024


def test_huge_bodies_are_413_and_the_connection_stays_sane(serve: Serve) -> None:
    session = requests.Session()
    answer = session.post(serve.traces_url, data=b"\x00" * (MAX_BODY + 1), headers=PB, timeout=30)
    assert answer.status_code == 413
    assert f"exceeds max_body_bytes={MAX_BODY}" in _status(answer).message
    # the same keep-alive connection still works
    ok = session.post(
        serve.traces_url, data=_request([_good_http()], "huge"), headers=PB, timeout=10
    )
    assert ok.status_code == 200
    # a claimed 10 GiB body is refused from the header alone, without reading it
    host, port = serve.info["otlp_http"].rsplit(":", 1)  # type: ignore[union-attr]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {10 * 2**30}\r\n\r\n".encode()
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head


def test_missing_or_invalid_length_is_refused(serve: Serve) -> None:
    host, port = serve.info["otlp_http"].rsplit(":", 1)  # type: ignore[union-attr]
    for length_header, status in (
        (b"", b"411"),
        (b"Content-Length: -5\r\n", b"400"),
        (b"Transfer-Encoding: chunked\r\n\r\n-5", b"400"),
        (b"Transfer-Encoding: chunked\r\n\r\nzz", b"400"),
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\n".encode()
                + length_header
                + b"\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 " + status)


def test_chunked_bodies_are_read_with_the_same_limit(serve: Serve) -> None:
    body = _request([_good_http()], "chunked")
    answer = requests.post(
        serve.traces_url, data=iter([body[:7], body[7:]]), headers=PB, timeout=10
    )
    assert answer.status_code == 200
    big = iter([b"\x00" * 65536] * (MAX_BODY // 65536 + 2))
    answer = requests.post(serve.traces_url, data=big, headers=PB, timeout=30)
    assert answer.status_code == 413


def test_wrong_method_and_path(serve: Serve) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = requests.request(method, serve.traces_url, timeout=10)
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "POST"
    answer = requests.post(f"{serve.http}/v1/metrics", data=b"", headers=PB, timeout=10)
    assert answer.status_code == 404


# --- absurd values: partial success, counted rejections -------------------------------------------


def test_absurd_values_are_rejected_per_span_and_the_rest_accounted(serve: Serve) -> None:
    absurd: list[dict[str, object]] = [
        {"http.request.method": "GET", "http.response.body.size": -5},
        {"http.request.method": "GET", "http.response.body.size": 10**15},
        {"http.request.method": "GET", "http.response.body.size": float("nan")},
        {"http.request.method": "GET", "http.request.body.size": "lots"},
    ]
    genai: dict[str, object] = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": -100,
        "gen_ai.usage.output_tokens": 10,
    }
    spans = [("GET /", Span.SPAN_KIND_SERVER, attrs) for attrs in absurd]
    spans += [("chat", Span.SPAN_KIND_CLIENT, genai), _good_http(), _good_http()]
    before = scrape(serve.metrics_url)
    answer = requests.post(serve.traces_url, data=_request(spans, "absurd"), headers=PB, timeout=10)
    assert answer.status_code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    assert response.partial_success.rejected_spans == 5
    assert "invalid footprint attributes" in response.partial_success.error_message
    after = scrape(serve.metrics_url)
    assert total(after, "downstream_requests_total", service_name="absurd") == 2
    rejected = total(after, "downstream_spans_rejected_total") - total(
        before, "downstream_spans_rejected_total"
    )
    assert rejected == 5


def test_a_malformed_sampling_threshold_rejects_only_that_span(serve: Serve) -> None:
    request = ExportTraceServiceRequest()
    request.ParseFromString(_request([_good_http(), _good_http()], "threshold"))
    request.resource_spans[0].scope_spans[0].spans[0].trace_state = "ot=th:not-hex"
    request.resource_spans[0].scope_spans[0].spans[1].trace_state = "ot=th:8"  # counts twice
    answer = requests.post(
        serve.traces_url, data=request.SerializeToString(), headers=PB, timeout=10
    )
    assert answer.status_code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    samples = scrape(serve.metrics_url)
    assert total(samples, "downstream_requests_total", service_name="threshold") == 2.0


def _model_attack(serve: Serve, service: str, batch: int, batches: int) -> None:
    """A cardinality attack: every call names a new model; series stay bounded via ``other``."""
    before = _rss_kib(serve.proc.pid)
    for b in range(batches):
        spans = [
            (
                "chat",
                Span.SPAN_KIND_CLIENT,
                {
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": f"attack-model-{b}-{i}",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 10,
                },
            )
            for i in range(batch)
        ]
        answer = requests.post(
            serve.traces_url, data=_request(spans, service), headers=PB, timeout=120
        )
        assert answer.status_code == 200
    samples = scrape(serve.metrics_url)
    calls = {
        dict(labels)["gen_ai_request_model"]
        for (name, labels), _ in samples.items()
        if name == "downstream_gen_ai_calls_total" and ("service_name", service) in labels
    }
    assert len(calls) <= 201  # the model limit, plus "other"
    assert "other" in calls
    assert total(samples, "downstream_gen_ai_calls_total", service_name=service) == batch * batches
    assert total(samples, "downstream_label_overflow_total", label="gen_ai_request_model") > 0
    assert _rss_kib(serve.proc.pid) - before < 64 * 1024


def test_many_distinct_model_names_are_bounded_and_counted(serve: Serve) -> None:
    _model_attack(serve, "attack", batch=2_000, batches=10)


@pytest.mark.slow
def test_a_million_distinct_model_names(serve: Serve) -> None:
    _model_attack(serve, "attack-1m", batch=2_000, batches=500)


# --- gRPC --------------------------------------------------------------------------------------


def test_grpc_refusals(serve: Serve) -> None:
    auth = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(serve.grpc) as channel:
        export = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.RpcError) as info:
            export(_request([_good_http()], "grpc-bad"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            export(b"\x0a\xff\xff\xff\x0f", metadata=auth, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a protobuf" in (info.value.details() or "")
        huge = ExportTraceServiceRequest()
        huge.resource_spans.add().scope_spans.add().spans.add(name="x" * (MAX_INFLATED + 10))
        for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
            with pytest.raises(grpc.RpcError) as info:
                export(huge.SerializeToString(), metadata=auth, compression=compression, timeout=30)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        reply = export(_request([_good_http()], "grpc-ok"), metadata=auth, timeout=10)
        assert ExportTraceServiceResponse.FromString(reply) == ExportTraceServiceResponse()
    samples = scrape(serve.metrics_url)
    assert total(samples, "downstream_requests_total", service_name="grpc-ok") == 1
    assert total(samples, "downstream_requests_total", service_name="grpc-bad") == 0


def test_still_serving_after_all_that(serve: Serve) -> None:
    answer = requests.post(
        serve.traces_url, data=_request([_good_http()], "after"), headers=PB, timeout=10
    )
    assert answer.status_code == 200
    assert total(scrape(serve.metrics_url), "downstream_requests_total", service_name="after") == 1
    body = json.dumps({"resourceSpans": []}).encode()
    assert requests.post(serve.traces_url, data=body, headers=JS, timeout=10).json() == {}


def test_a_slow_upload_holds_no_export_slot() -> None:
    server = Serve("--max-concurrent-exports=1")
    try:
        host, port = server.info["otlp_http"].rsplit(":", 1)  # type: ignore[union-attr]
        body = _request([_good_http()], "busy")
        with socket.create_connection((host, int(port)), timeout=10) as slow:
            # a sender that is slow to upload: the only export slot is taken once its body is in
            slow.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:5]
            )
            time.sleep(0.3)
            other = requests.post(server.traces_url, data=body, headers=PB, timeout=10)
            assert other.status_code == 200
            slow.sendall(body[5:])
            assert slow.recv(4096).startswith(b"HTTP/1.1 200")
        again = requests.post(server.traces_url, data=body, headers=PB, timeout=10)
        assert again.status_code == 200
        samples = scrape(server.metrics_url)
        assert total(samples, "downstream_requests_total", service_name="busy") == 3
    finally:
        server.close()


def test_connection_flood_is_bounded() -> None:
    server = Serve("--max-connections=2")
    try:
        host, port = server.info["otlp_http"].rsplit(":", 1)  # type: ignore[union-attr]
        held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(2)]
        for sock in held:  # in a request: not evicted (idle ones would make room for the extra)
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\n")
        time.sleep(0.2)
        with socket.create_connection((host, int(port)), timeout=10) as extra:
            assert extra.recv(4096).startswith(b"HTTP/1.1 503")
        for sock in held:
            sock.close()
        time.sleep(0.2)
        body = _request([_good_http()], "flood")
        assert (
            requests.post(server.traces_url, data=body, headers=PB, timeout=10).status_code == 200
        )
    finally:
        server.close()


def test_partial_success_in_json_and_over_grpc(serve: Serve) -> None:
    negative = {
        "key": "http.response.body.size",
        "value": {"intValue": "-1"},
    }
    method = {"key": "http.request.method", "value": {"stringValue": "GET"}}
    spans = [
        {"name": "GET /", "kind": 2, "attributes": [method, negative]},
        {"name": "GET /", "kind": 2, "attributes": [method]},
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    answer = requests.post(serve.traces_url, data=json.dumps(body), headers=JS, timeout=10)
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"  # OTLP/JSON: int64 as a string
    assert "1 of 2 spans" in partial["errorMessage"]

    request = _request(
        [
            (
                "GET /",
                Span.SPAN_KIND_SERVER,
                {"http.request.method": "GET", "http.request.body.size": -3},
            )
        ],
        "grpc-partial",
    )
    with grpc.insecure_channel(serve.grpc) as channel:
        reply = channel.unary_unary(EXPORT)(
            request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
        )
    response = ExportTraceServiceResponse.FromString(reply)
    assert response.partial_success.rejected_spans == 1
