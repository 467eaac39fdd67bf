"""Hostile protobuf bodies cost bounded memory, and one bad span is rejected alone.

Bodies are built on the wire directly (the SDK cannot make 8 million empty spans quickly); peak
memory is measured in a fresh interpreter, from ``VmHWM`` after the body is loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_downstream.exporters.otlp.decode import decode_protobuf
from otel_downstream.exporters.otlp.decoded import DecodeFailure, TooManySpans
from otel_downstream.exporters.otlp.export import ExportOutcome
from otel_downstream.exporters.otlp.json_decode import MAX_JSON_VALUES, decode_json

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
    span.attributes.append(KeyValue(key="http.request.method", value=AnyValue(string_value="GET")))
    return span.SerializeToString()


_GOOD_ATTRIBUTES = {"http.request.method": "GET"}


def _cost(tmp_path: Path, body: bytes, json_body: bool = False) -> tuple[float, float, str]:
    """Peak RSS increase (MiB) and CPU time (s) of decoding ``body`` in a fresh process, and what
    it returned. The process may map at most 4 GiB, so a decoder that would take many gigabytes
    fails here with a MemoryError instead of taking the machine down."""
    path = tmp_path / "body.bin"
    path.write_bytes(body)
    module, decoder = (
        ("otlp.json_decode", "decode_json") if json_body else ("otlp.decode", "decode_protobuf")
    )
    script = f"""
import resource, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from otel_downstream.exporters.{module} import {decoder} as decode
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
body = open({str(path)!r}, "rb").read()
base = hwm()
start = time.process_time()
try:
    spans = decode(body)
    outcome = f"{{len(spans)}} spans, problems {{sorted({{s.problem for s in spans}})}}"
except Exception as exc:
    outcome = f"{{type(exc).__name__}}: {{exc}}"
print((hwm() - base) / 1024, time.process_time() - start, outcome)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600
    )
    peak, seconds, outcome = done.stdout.strip().split(" ", 2)
    return float(peak), float(seconds), outcome


_SPANS_UNDER_THE_CAP = [b"\x4a\x00" * (MIB // 2 - 8)] * 12 + [b"\x5a\x00" * (MIB // 2 - 8)] * 4
HOSTILE = {
    # 8 million 2-byte empty spans: +3.0 GiB when the whole body went through upb.
    "empty_spans": lambda: _request([b""] * (8 * MIB)),
    # One 16 MiB span of empty attributes, events, links: one message per 2 bytes.
    "empty_attributes": lambda: _request([b"\x4a\x00" * (8 * MIB)]),
    "empty_events": lambda: _request([b"\x5a\x00" * (8 * MIB)]),
    "empty_links": lambda: _request([b"\x6a\x00" * (8 * MIB)]),
    # 16 spans just under max_span_bytes, each of ~500k empty attributes: parsed one at a time,
    # each rejected on its count (too_many_attributes), and 8.4M attributes are more than the
    # body's allowance (6.4M): refused after 13 of them.
    "many_attributes_under_the_cap": lambda: _request([b"\x4a\x00" * (MIB // 2 - 8)] * 16),
    # An attribute array nested as deep as upb allows, 16 times over (12 spans of ~500k empty
    # attributes and 4 of empty events: parsed, within the attribute allowance).
    "deep_arrays": lambda: _request([_deep_array(45)] * 16 + _SPANS_UNDER_THE_CAP),
    # ... and past upb's limit (100 messages): those 16 spans are rejected alone, not the batch.
    "deep_arrays_60": lambda: _request([_deep_array(60)] * 16 + _SPANS_UNDER_THE_CAP),
}
OUTCOMES = {
    "many_attributes_under_the_cap": (
        "TooManySpans: body: more than 6401024 attributes (32 per span of "
        "max_spans_per_export=200000, + 1024); send smaller batches"
    ),
    "deep_arrays": "32 spans, problems ['', 'too_many_attributes']",
    "deep_arrays_60": "32 spans, problems ['', 'too_many_attributes', 'unparsable_span']",
}


def _deep_key_value(depth: int) -> bytes:
    value = b""
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value{values: [value]}
    return _field(1, b"k") + _field(2, value)


def _deep_array(depth: int) -> bytes:
    """A span (its ``attributes`` field) whose one attribute is an array nested ``depth`` deep."""
    return _field(9, _deep_key_value(depth))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bodies_cost_bounded_memory(tmp_path: Path, case: str) -> None:
    body = HOSTILE[case]()
    assert len(body) >= 16 * MIB - 1024
    peak, _, outcome = _cost(tmp_path, body)
    # Bound: 8x the 16 MiB body (was 190x). Each group of spans upb parses is ~1 MiB.
    print(case, f"+{peak:.0f} MiB", outcome)
    assert peak <= 128, (case, peak, outcome)
    assert outcome == OUTCOMES.get(case, outcome)


def _int_array_span(size: int) -> bytes:
    """A span of one attribute ``k`` whose array holds ~``size`` bytes of ``int_value: 1000``."""
    return _field(9, _field(1, b"k") + _field(2, _field(5, b"\x0a\x03\x18\xe8\x07" * (size // 5))))


ATTRIBUTE_BOMBS = {
    # 64 spans just under max_span_bytes, each of 524k empty attributes: 18 s of CPU (each
    # attribute went through the Python loop); now each span is rejected on its count, and the
    # body once past its attribute allowance (6.4M attributes, 13 such spans).
    "empty_attributes_64": (
        lambda: _request([b"\x4a\x00" * (MIB // 2 - 8)] * 64),
        "TooManySpans: body: more than 6401024 attributes (32 per span of "
        "max_spans_per_export=200000, + 1024); send smaller batches",
    ),
    # The same 64 MiB as spans of 1,024 empty attributes each (the most a span may hold): read
    # one by one until the allowance refuses the body.
    "attributes_at_the_span_cap": (
        lambda: _request([b"\x4a\x00" * 1024] * (32 * 1024)),
        "TooManySpans: body: more than 6401024 attributes (32 per span of "
        "max_spans_per_export=200000, + 1024); send smaller batches",
    ),
    # 64 MiB of int array items under a key nothing reads: +611 MiB (a Python int each).
    "int_arrays_64": (
        lambda: _request([_int_array_span(MIB - 64)] * 64),
        "64 spans, problems ['']",
    ),
    # One ScopeSpans just under 1 MiB of 524k empty spans: +89 MiB, parsed whole past the group
    # cap before the span count refused it; now walked in groups (+40 MiB: the 200k spans
    # decoded before the count refuses, as for any body of empty spans).
    "small_scope_of_empty_spans": (
        lambda: _field(1, _field(2, b"\x12\x00" * (MIB // 2 - 8))),
        "TooManySpans: body: more than 200000 spans (max_spans_per_export); send smaller batches",
    ),
}


@pytest.mark.parametrize("case", sorted(ATTRIBUTE_BOMBS))
def test_work_inside_spans_is_bounded(tmp_path: Path, case: str) -> None:
    build, expected = ATTRIBUTE_BOMBS[case]
    peak, seconds, outcome = _cost(tmp_path, build())
    print(case, f"+{peak:.0f} MiB {seconds:.2f} s", outcome)
    assert outcome == expected
    assert seconds <= 2, (case, seconds)
    assert peak <= (128 if case != "small_scope_of_empty_spans" else 48), (case, peak)


@pytest.mark.parametrize("values", [3_800_000, MAX_JSON_VALUES - 64])
def test_json_of_millions_of_values_costs_bounded_memory(tmp_path: Path, values: int) -> None:
    # 36 MiB, 3.8M values of int arrays under a key nothing reads: +672 MiB (json.loads, then a
    # Python int each). The largest body admitted stays near json.loads' documented bound.
    items = values // 2 - 16
    array = b"[" + b'{"intValue":"1000"},' * items + b'{"intValue":"1"}]'
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","attributes":[{"key":"k",'
        b'"value":{"arrayValue":{"values":' + array + b"}}}]}]}]}]}"
    )
    peak, seconds, outcome = _cost(tmp_path, body, json_body=True)
    print(values, f"+{peak:.0f} MiB {seconds:.2f} s", outcome)
    if values > MAX_JSON_VALUES:
        assert outcome.startswith("TooManySpans: body: about"), outcome
        assert peak <= 64
    else:
        assert outcome == "1 spans, problems ['']"
        assert peak <= 400, peak


def test_too_many_spans_is_refused_naming_the_cap() -> None:
    body = _request([b""] * 1001)
    with pytest.raises(TooManySpans, match="more than 1000 spans") as info:
        decode_protobuf(body, max_spans=1000)
    assert info.value.status == 413
    assert len(decode_protobuf(body, max_spans=1001)) == 1001


def test_millions_of_empty_scope_entries_are_refused() -> None:
    body = _field(1, _field(2, b"") * 2_000_000)
    with pytest.raises(TooManySpans, match="protobuf fields") as info:
        decode_protobuf(body)
    assert "max_spans_per_export=200000" in str(info.value)
    assert info.value.status == 413


def test_the_walk_refuses_more_fields_than_its_budget() -> None:
    # 6 steps per span of max_spans_per_export, + 1024: 7024 here; a field of any number or type
    # is a step.
    body = b"\x10\x00" * 7_100 + _request([_good_span()])
    with pytest.raises(
        TooManySpans, match="more than 7024 steps to walk its protobuf fields"
    ) as info:
        decode_protobuf(body, max_spans=1000)
    assert "max_spans_per_export=1000" in str(info.value)
    assert len(decode_protobuf(body)) == 1


def test_one_span_per_resource_fits_the_budget() -> None:
    # The most steps per span a real sender needs: a resource and a scope for every span; as many
    # such spans as the previous limit (max_spans_per_export resource + scope entries) allowed.
    resource = _field(1, _field(1, b"service.name") + _field(2, _field(1, b"svc")))
    body = _request([_good_span()], resource=resource) * 500
    spans = decode_protobuf(body, max_spans=1000)
    assert len(spans) == 500 and all(s.service_name == "svc" and not s.problem for s in spans)


def test_repeated_resource_fields_merge_as_upb_merges_them() -> None:
    def attribute(key: bytes, value: bytes) -> bytes:
        return _field(1, _field(1, key) + _field(2, _field(1, value)))

    scope = _field(2, _field(2, _good_span()))
    body = _field(
        1,
        _field(1, attribute(b"service.name", b"first"))
        + scope
        + _field(1, attribute(b"host.name", b"h"))
        + _field(1, attribute(b"service.name", b"last")),
    )
    parsed = ExportTraceServiceRequest.FromString(body).resource_spans[0].resource
    assert [kv.value.string_value for kv in parsed.attributes] == ["first", "h", "last"]
    (span,) = decode_protobuf(body)
    assert (span.service_name, span.problem) == ("last", "")


def _varint_fields(number: int, size: int) -> bytes:
    """``size`` bytes of an unknown varint field ``number`` set to 0: one field per 2 bytes."""
    return bytes([number << 3, 0]) * (size // 2)


WALKED = {
    # One ResourceSpans of empty `resource` fields: +7 GiB and 35 s for 64 MiB (a range was kept
    # per field, and none was counted).
    "repeated_resource": lambda size: _field(1, b"\x0a\x00" * (size // 2)),
    # Unknown fields at each level the walk reads field by field: 1.25 s per 8 MiB, uncounted.
    "unknown_in_request": lambda size: _varint_fields(2, size),
    "unknown_in_resource_spans": lambda size: _field(1, _varint_fields(3, size)),
    "unknown_in_scope_spans": lambda size: _field(1, _field(2, _varint_fields(4, size))),
    "repeated_scope": lambda size: _field(1, _field(2, b"\x0a\x00" * (size // 2))),
    "empty_scope_spans": lambda size: _field(1, b"\x12\x00" * (size // 2)),
    "empty_resource_spans": lambda size: b"\x0a\x00" * (size // 2),
    # Entries handed to upb one by one (each a ScopeSpans of an empty scope, no span).
    "scope_spans_without_spans": lambda size: b"\x0a\x04\x12\x02\x0a\x00" * (size // 6),
    # Large unknown fields are skipped whole, each in one step.
    "large_unknown_fields": lambda size: _field(1, _field(7, b"x" * (MIB - 8)) * (size // MIB)),
}


@pytest.mark.parametrize("size_mib", [16, 64])
@pytest.mark.parametrize("case", sorted(WALKED))
def test_walking_the_top_levels_costs_bounded_memory_and_time(
    tmp_path: Path, case: str, size_mib: int
) -> None:
    body = WALKED[case](size_mib * MIB)
    peak, seconds, outcome = _cost(tmp_path, body)
    print(case, size_mib, f"+{peak:.0f} MiB {seconds:.2f} s", outcome)
    # Bounds: +128 MiB and 2 s, whatever the size (64 MiB is serve's default inflated cap).
    assert peak <= 128, (case, peak, outcome)
    assert seconds <= 2, (case, seconds, outcome)
    refused = outcome.startswith("TooManySpans: body: more than") and "protobuf fields" in outcome
    assert outcome == "0 spans, problems []" or refused, outcome


def test_an_oversized_span_is_rejected_alone() -> None:
    big = b"\x4a\x00" * (MIB // 2 + 1)
    good, bad, after = decode_protobuf(_request([_good_span(), big, _good_span("after")]))
    assert (good.problem, good.name, good.attributes) == ("", "GET /", _GOOD_ATTRIBUTES)
    assert bad.problem == "span_too_large"
    assert "spans[1]" in bad.problem_detail
    assert "max_span_bytes=1048576" in bad.problem_detail
    assert (after.problem, after.name) == ("", "after")


def test_a_large_string_is_not_a_large_span() -> None:
    # A GenAI prompt of 900 kB is one message: well under the cap, decoded as usual.
    span = Span(name="chat")
    span.attributes.append(
        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="x" * 900_000))
    )
    (decoded,) = decode_protobuf(_request([span.SerializeToString()] + [_good_span()] * 0))
    assert decoded.problem == ""
    assert len(str(decoded.attributes["gen_ai.request.model"])) == 900_000


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


def _bad_utf8_span(size: int) -> bytes:
    """``size`` bytes of empty events, then a name that is not UTF-8: found last."""
    return b"\x5a\x00" * ((size - 3) // 2) + b"\x2a\x01\xff"


def test_spans_with_invalid_utf8_cost_little_more_than_valid_ones(tmp_path: Path) -> None:
    # Finding the field took 0.65 s per MiB of span in Python: 13x the parse of the same spans.
    spans = [_bad_utf8_span(MIB - 16)] * 15
    peak, bad_s, outcome = _cost(tmp_path, _request(spans))
    _, good_s, good = _cost(tmp_path, _request([span[:-1] + b"x" for span in spans]))
    print(f"+{peak:.0f} MiB, {bad_s:.2f} s (valid UTF-8: {good_s:.2f} s)", outcome)
    assert (outcome, good) == ("15 spans, problems ['invalid_utf8']", "15 spans, problems ['']")
    assert bad_s <= 1.5 * good_s + 0.5
    assert peak <= 128


def test_many_small_spans_with_invalid_utf8_cost_bounded_time(tmp_path: Path) -> None:
    spans = [_good_span(), BAD_UTF8["name"], BAD_UTF8["attributes[1].value.string_value"]]
    peak, seconds, outcome = _cost(tmp_path, _request(spans * 60_000))
    print(f"+{peak:.0f} MiB, {seconds:.2f} s", outcome)
    assert outcome == "180000 spans, problems ['', 'invalid_utf8']"
    assert seconds <= 3 and peak <= 128


def test_invalid_utf8_found_past_the_fields_searched_is_still_named() -> None:
    good, bad = decode_protobuf(_request([_good_span(), _bad_utf8_span(100_000)]))
    assert (good.problem, bad.problem) == ("", "invalid_utf8")
    assert bad.problem_detail.startswith("resourceSpans[0].scopeSpans[0].spans[1]: ")
    assert "not valid UTF-8" in bad.problem_detail


@pytest.mark.parametrize("large_scope", [False, True])
def test_a_span_nested_past_upbs_limit_is_rejected_alone(large_scope: bool) -> None:
    padding = [_good_span()] * (MIB // len(_good_span()) if large_scope else 0)
    body = _request([_good_span("before"), _deep_array(60), _good_span("after"), *padding])
    before, bad, after, *rest = decode_protobuf(body)
    assert (before.name, after.name, before.problem, after.problem) == ("before", "after", "", "")
    assert bad.problem == "unparsable_span"
    path = "resourceSpans[0].scopeSpans[0].spans[1].attributes[0].value.array_value.values[0]"
    assert bad.problem_detail.startswith(path), bad.problem_detail
    assert "nested deeper than 100 messages" in bad.problem_detail
    assert len(bad.problem_detail) < 300
    assert len(rest) == len(padding) and all(not s.problem for s in rest)


def test_a_resource_nested_past_upbs_limit_rejects_its_spans_only() -> None:
    body = _request([_good_span()] * 2, resource=_field(1, _deep_key_value(60)))
    body += _request([_good_span("other")])
    first, second, other = decode_protobuf(body)
    assert first.problem == second.problem == "unparsable_resource"
    assert first.problem_detail.startswith("resourceSpans[0].resource.attributes[0].value")
    assert (other.problem, other.name) == ("", "other")


@pytest.mark.parametrize(
    "body",
    [
        b"not protobuf at all, just text",
        b'{"resourceSpans": []}',
        _request([_good_span()])[:-3],  # truncated
        _request([_good_span()[:-2] + b"\x0a"]),  # a span whose own fields are cut short
        # a length past its parent, deep inside an attribute value: framing, not one span's problem
        _request([_good_span(), _field(9, _field(1, b"k") + _field(2, b"\x2a\x05ab"))]),
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
    assert all(s.attributes == _GOOD_ATTRIBUTES and s.kind == "SERVER" for s in decoded)


def _json_spans(spans: str) -> bytes:
    return f'{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}'.encode()


def test_json_of_millions_of_empty_spans_is_refused_before_parsing(tmp_path: Path) -> None:
    # json.loads alone of 16 MiB of `{},` took +404 MiB; decoding them +1 GiB more.
    body = _json_spans(",".join(["{}"] * (16 * MIB // 3)))
    peak, _, outcome = _cost(tmp_path, body, json_body=True)
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


def test_json_lone_surrogates_are_shown_escaped_in_answers() -> None:
    """OTLP/JSON can escape a lone surrogate (``\\ud800``), which no UTF-8 encoder takes: the
    reasons a span or a body is refused are sent back (partial success, ``google.rpc.Status``), so
    they must show it escaped. The values themselves are kept; the exposition makes labels safe
    (``test_exposition.py``)."""
    lone = "\\ud800"
    doc = (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        f'{{"stringValue":"svc{lone}"}}}}]}},"scopeSpans":[{{"spans":[{{"name":"n{lone}",'
        f'"kind":"{lone}","attributes":[{{"key":"gen_ai.system","value":{{"stringValue":"v{lone}"}}}}]}},'
        '{"name":"ok"}]}]}]}'
    )
    bad, good = decode_json(doc.encode())
    assert (bad.service_name, bad.attributes) == ("svc\ud800", {"gen_ai.system": "v\ud800"})
    assert bad.problem == "invalid_span_kind" and (good.problem, good.name) == ("", "ok")
    ExportOutcome(1, bad.problem_detail).to_protobuf()  # UnicodeEncodeError with a raw surrogate
    assert "\\ud800" in bad.problem_detail
    with pytest.raises(DecodeFailure) as info:
        decode_json(f'{{"resourceSpans":"{lone}"}}'.encode())
    assert "\\ud800" in str(info.value)
    str(info.value).encode("utf-8")
