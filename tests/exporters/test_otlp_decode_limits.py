"""Hostile protobuf bodies cost bounded memory, and one bad span is rejected alone.

Bodies are built on the wire directly (the SDK cannot make 8 million empty spans quickly); peak
memory is measured in a fresh interpreter, from ``VmHWM`` after the body is loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_downstream.exporters.otlp.decode import DecodeFailure, TooManySpans, decode_protobuf
from otel_downstream.exporters.otlp.json_decode import decode_json

MIB = 1 << 20


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _request(spans: list[bytes], resource: bytes = b"") -> bytes:
    """One ResourceSpans (optionally with a Resource payload) of one ScopeSpans of these spans."""
    scope = b"".join(_field(2, s) for s in spans)
    resource_field = _field(1, resource) if resource else b""
    return _field(1, resource_field + _field(2, scope))


def _good_span(name: str = "GET /") -> bytes:
    span = Span(name=name, kind=Span.SPAN_KIND_SERVER, trace_id=b"t" * 16, span_id=b"s" * 8)
    span.attributes.append(KeyValue(key="http.route", value=AnyValue(string_value="/")))
    return span.SerializeToString()


def _peak_mib(tmp_path: Path, body: bytes, json_body: bool = False) -> tuple[float, str]:
    """Peak RSS increase (MiB) of decoding ``body`` in a fresh process, and what it returned."""
    path = tmp_path / "body.bin"
    path.write_bytes(body)
    module, decoder = (
        ("otlp.json_decode", "decode_json") if json_body else ("otlp.decode", "decode_protobuf")
    )
    script = f"""
from otel_downstream.exporters.{module} import {decoder} as decode_protobuf
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
body = open({str(path)!r}, "rb").read()
base = hwm()
try:
    spans = decode_protobuf(body)
    outcome = f"{{len(spans)}} spans, problems {{sorted({{s.problem for s in spans}})}}"
except Exception as exc:
    outcome = f"{{type(exc).__name__}}: {{exc}}"
print((hwm() - base) / 1024, outcome)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    peak, outcome = done.stdout.strip().split(" ", 1)
    return float(peak), outcome


HOSTILE = {
    # 8 million 2-byte empty spans: +3.0 GiB when the whole body went through upb.
    "empty_spans": lambda: _request([b""] * (8 * MIB)),
    # One 16 MiB span of empty attributes, events, links: one message per 2 bytes.
    "empty_attributes": lambda: _request([b"\x4a\x00" * (8 * MIB)]),
    "empty_events": lambda: _request([b"\x5a\x00" * (8 * MIB)]),
    "empty_links": lambda: _request([b"\x6a\x00" * (8 * MIB)]),
    # 16 spans just under max_span_bytes, each of ~500k empty attributes: parsed, one at a time.
    "many_attributes_under_the_cap": lambda: _request([b"\x4a\x00" * (MIB // 2 - 8)] * 16),
    # An attribute array nested as deep as upb allows, 16 times over.
    "deep_arrays": lambda: _request([_deep_array(45)] * 16 + [b"\x4a\x00" * (MIB // 2 - 8)] * 16),
}


def _deep_array(depth: int) -> bytes:
    value = b""
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value{values: [value]}
    return _field(9, _field(1, b"k") + _field(2, value))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bodies_cost_bounded_memory(tmp_path: Path, case: str) -> None:
    body = HOSTILE[case]()
    assert len(body) >= 16 * MIB - 1024
    peak, outcome = _peak_mib(tmp_path, body)
    # Bound: 8x the 16 MiB body (was 190x). Each group of spans upb parses is ~1 MiB.
    print(case, f"+{peak:.0f} MiB", outcome)
    assert peak <= 128, (case, peak, outcome)


def test_too_many_spans_is_refused_naming_the_cap() -> None:
    body = _request([b""] * 1001)
    with pytest.raises(TooManySpans, match="more than 1000 spans") as info:
        decode_protobuf(body, max_spans=1000)
    assert info.value.status == 413
    assert len(decode_protobuf(body, max_spans=1001)) == 1001


def test_millions_of_empty_scope_entries_are_refused() -> None:
    body = _field(1, _field(2, b"") * 300_000)
    with pytest.raises(TooManySpans, match="scopeSpans entries"):
        decode_protobuf(body)


def test_an_oversized_span_is_rejected_alone() -> None:
    big = b"\x4a\x00" * (MIB // 2 + 1)
    good, bad, after = decode_protobuf(_request([_good_span(), big, _good_span("after")]))
    assert (good.problem, good.name, good.attributes) == ("", "GET /", {"http.route": "/"})
    assert bad.problem == "span_too_large"
    assert "spans[1]" in bad.problem_detail
    assert "max_span_bytes=1048576" in bad.problem_detail
    assert (after.problem, after.name) == ("", "after")


def test_a_large_string_is_not_a_large_span() -> None:
    # A GenAI prompt of 900 kB is one message: well under the cap, decoded as usual.
    span = Span(name="chat")
    span.attributes.append(
        KeyValue(key="gen_ai.prompt", value=AnyValue(string_value="x" * 900_000))
    )
    (decoded,) = decode_protobuf(_request([span.SerializeToString()] + [_good_span()] * 0))
    assert decoded.problem == ""
    assert len(str(decoded.attributes["gen_ai.prompt"])) == 900_000


BAD_UTF8 = {
    "name": _field(5, b"bad \xff name"),
    "trace_state": _field(3, b"\xc3"),
    "attributes[0].key": _field(9, _field(1, b"\xed\xa0\x80")),  # an encoded surrogate
    "attributes[1].value.string_value": _field(9, _field(1, b"ok"))
    + _field(9, _field(1, b"k") + _field(2, _field(1, b"\x80"))),
}


@pytest.mark.parametrize("field", sorted(BAD_UTF8))
@pytest.mark.parametrize("large_scope", [False, True])
def test_invalid_utf8_rejects_only_its_span(field: str, large_scope: bool) -> None:
    padding = [_good_span()] * (MIB // len(_good_span()) if large_scope else 0)
    body = _request([_good_span("before"), BAD_UTF8[field], _good_span("after"), *padding])
    before, bad, after, *rest = decode_protobuf(body)
    assert (before.name, after.name, before.problem, after.problem) == ("before", "after", "", "")
    assert bad.problem == "invalid_utf8"
    assert bad.problem_detail == f"resourceSpans[0].scopeSpans[0].spans[1].{field}: not valid UTF-8"
    assert len(rest) == len(padding)
    assert all(not s.problem for s in rest)


def test_invalid_utf8_in_the_resource_rejects_its_spans_only() -> None:
    bad_resource = _field(1, _field(1, b"service.name") + _field(2, _field(1, b"\xfe")))
    good = ExportTraceServiceRequest()
    good.ParseFromString(_request([_good_span()]))
    body = _request([_good_span(), _good_span()], resource=bad_resource) + _request([_good_span()])
    first, second, third = decode_protobuf(body)
    assert first.problem == second.problem == "invalid_utf8"
    assert first.problem_detail == (
        "resourceSpans[0].resource.attributes[0].value.string_value: not valid UTF-8"
    )
    assert (third.problem, third.name) == ("", "GET /")


def test_invalid_utf8_in_the_scope_is_ignored_as_the_scope_is() -> None:
    scope = _field(1, _field(1, b"\xff"))  # InstrumentationScope.name
    body = _field(1, _field(2, scope + _field(2, _good_span())))
    (span,) = decode_protobuf(body)
    assert (span.problem, span.name) == ("", "GET /")


@pytest.mark.parametrize(
    "body",
    [
        b"not protobuf at all, just text",
        b'{"resourceSpans": []}',
        _request([_good_span()])[:-3],  # truncated
        _request([_good_span()[:-2] + b"\x0a"]),  # a span whose own fields are cut short
    ],
)
def test_a_body_that_is_not_protobuf_is_refused_whole(body: bytes) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode_protobuf(body)
    assert info.value.status == 400
    assert not isinstance(info.value, TooManySpans)


def test_groups_decode_the_same_spans_as_one_parse() -> None:
    spans = [_good_span(f"s{i}") for i in range(30_000)]  # > 1 MiB: walked, parsed in groups
    decoded = decode_protobuf(_request(spans))
    assert [s.name for s in decoded] == [f"s{i}" for i in range(30_000)]
    assert all(s.attributes == {"http.route": "/"} and s.kind == "SERVER" for s in decoded)


def _json_spans(spans: str) -> bytes:
    return f'{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}'.encode()


def test_json_of_millions_of_empty_spans_is_refused_before_parsing(tmp_path: Path) -> None:
    # json.loads alone of 16 MiB of `{},` took +404 MiB; decoding them +1 GiB more.
    body = _json_spans(",".join(["{}"] * (16 * MIB // 3)))
    peak, outcome = _peak_mib(tmp_path, body, json_body=True)
    print(f"+{peak:.0f} MiB", outcome)
    assert outcome.startswith("TooManySpans: body: about 11184") and "max_json_values" in outcome
    assert peak <= 64


def test_json_spans_beyond_the_cap_are_refused() -> None:
    body = _json_spans(",".join(['{"name":"s"}'] * 11))
    with pytest.raises(TooManySpans, match="more than 10 spans") as info:
        decode_json(body, max_spans=10)
    assert info.value.status == 413
    assert len(decode_json(body, max_spans=11)) == 11
    with pytest.raises(TooManySpans, match="max_json_values=20"):
        decode_json(body, max_values=20)


def test_json_lone_surrogates_do_not_break_decoding() -> None:
    lone = "\\ud800"
    doc = (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        f'{{"stringValue":"svc{lone}"}}}}]}},"scopeSpans":[{{"spans":[{{"name":"n{lone}",'
        f'"traceState":"ot=th:8{lone}","kind":"{lone}","attributes":[{{"key":"k{lone}",'
        f'"value":{{"stringValue":"v{lone}"}}}},{{"key":"a","value":{{"arrayValue":'
        f'{{"values":[{{"stringValue":"{lone}"}}]}}}}}}]}},{{"name":"ok"}}]}}]}}]}}'
    )
    bad, good = decode_json(doc.encode())
    assert bad.service_name == "svc\ud800"
    assert bad.problem == "invalid_span_kind"
    assert "\\ud800" in bad.problem_detail or "\ud800" in bad.problem_detail
    assert bad.attributes == {"k\ud800": "v\ud800", "a": ("\ud800",)}
    assert (good.problem, good.name) == ("", "ok")
    json.dumps(bad.problem_detail)  # the partial-success message stays serializable
