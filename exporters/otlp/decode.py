"""OTLP/protobuf trace export bodies -> the few fields the accounting core needs (JSON is in
``json_decode``; what both produce is in ``decoded``).

``serve`` never builds SDK ``ReadableSpan`` objects: it reads the generated protobuf classes (upb,
C-backed) directly and hands on, per span, the resource's ``service.name``, the attributes the
accounting reads (``ACCOUNTED_KEYS``; ``pb_spans``) as a plain dict, the span name, kind and
duration, and its sampling weight from ``tracestate``. A body is
decoded completely before anything is accounted, so a malformed body is rejected as a whole (400)
and the sender's retry cannot double-count half of it.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span

from otel_downstream.exporters.otlp.decoded import (
    UNKNOWN_SERVICE,
    DecodedSpan,
    DecodeFailure,
    TooManySpans,
)
from otel_downstream.exporters.otlp.pb_spans import (
    AttributeAllowance,
    decode_spans,
    resource_service,
)
from otel_downstream.exporters.otlp.refusal import FRAMING, INVALID_UTF8, Search
from otel_downstream.exporters.otlp.wire import (
    GROUP_SPANS,
    FieldBudget,
    WireError,
    WireLimit,
    resource,
    resource_spans,
    scope_spans,
    span_fields,
    span_groups,
)

__all__ = ["MAX_SPANS_PER_EXPORT", "MAX_SPAN_BYTES", "STEPS_PER_SPAN", "decode_protobuf"]


MAX_SPANS_PER_EXPORT: Final = 200_000
"""Spans per export: the decoded spans are what an export keeps in memory (~200 bytes each when
empty), so this bounds it whatever the body's size."""
STEPS_PER_SPAN: Final = 6
"""The wire walk's budget, in steps per span of ``max_spans`` (plus 1024): a protobuf field read,
at any level and of any kind, is a step; a resource or scope handed to upb is ``ENTRY_STEPS``.
Unknown or repeated fields read one by one in Python cost ~0.3 µs each (10 s for 64 MiB), and
an entry ~2 µs; a real export has a few steps per span, 11 when every span has its own resource
and scope (the most the previous entry limit allowed, 100k such spans, still fit)."""
ENTRY_STEPS: Final = 4
MAX_SPAN_BYTES: Final = 1 << 20
"""One span's encoded size. A large string (a GenAI prompt) is one cheap message; what costs is
the number of messages (~170 bytes of upb arena each, from 2 bytes of wire), which this bounds."""
_GROUP_BYTES: Final = 1 << 20
"""Spans are handed to upb in groups of about this many bytes, so its arena stays that small."""
_SMALL_SCOPE_BYTES: Final = 2 * GROUP_SPANS
"""A ScopeSpans this small holds at most ``GROUP_SPANS`` spans (2 bytes each at least); a larger
one is parsed whole only if it holds no more ``0x12`` bytes (every span's tag is one) than that."""


def decode_protobuf(
    body: bytes, *, max_spans: int = MAX_SPANS_PER_EXPORT, max_span_bytes: int = MAX_SPAN_BYTES
) -> list[DecodedSpan]:
    """Decode a binary protobuf body, upb parsing at most ~1 MiB of spans at a time.

    The top levels are walked in Python (``wire``) so memory stays a small multiple of the body
    whatever it holds; a span (or resource) larger than ``max_span_bytes``, or that upb refuses
    while its encoding is sound (invalid UTF-8, nested too deep), is rejected alone; more than
    ``max_spans`` spans, or more than ``STEPS_PER_SPAN`` steps per span to walk, is
    :class:`TooManySpans`.
    """
    budget = FieldBudget(STEPS_PER_SPAN * max_spans + 1024)
    batch = _Batch(body, max_spans, max_span_bytes, budget)
    try:
        for r, (rs_start, rs_end) in enumerate(resource_spans(body, budget)):
            if rs_start == rs_end:
                continue
            data, size, scopes = resource(body, rs_start, rs_end, budget, max_span_bytes)
            if not scopes:  # no span to decode: the resource does not matter
                continue
            budget.spend(ENTRY_STEPS)
            service, problem, detail = batch.service(data, size, f"resourceSpans[{r}].resource")
            for s, (start, end) in enumerate(scope_spans(body, rs_start, rs_end)):
                if start == end:
                    continue
                budget.spend(ENTRY_STEPS)
                where = f"resourceSpans[{r}].scopeSpans[{s}]"
                if problem:
                    for _ in span_fields(body, start, end, budget):
                        batch.reject(service, problem, detail)
                elif (
                    end - start > min(_GROUP_BYTES, max_span_bytes)
                    or (
                        end - start > _SMALL_SCOPE_BYTES
                        and body.count(b"\x12", start, end) > GROUP_SPANS
                    )
                    or batch.group(body[start:end], service, f"{where}.spans", 0) is not None
                ):
                    batch.walked(start, end, service, where)
    except WireError as exc:
        raise DecodeFailure(f"body: not a protobuf ExportTraceServiceRequest ({exc})") from None
    except WireLimit as exc:
        raise TooManySpans(
            f"body: {exc} ({STEPS_PER_SPAN} per span of max_spans_per_export={max_spans}, "
            f"+ 1024; a field is one step, a resource or scope {ENTRY_STEPS}); "
            "send smaller batches"
        ) from None
    return batch.out


class _Batch:
    """One body being decoded: the spans so far and the limits they are held to."""

    def __init__(
        self, body: bytes, max_spans: int, max_span_bytes: int, budget: FieldBudget
    ) -> None:
        self.body, self.max_spans, self.max_span_bytes = body, max_spans, max_span_bytes
        self.budget = budget
        self.attributes = AttributeAllowance(max_spans)
        self.search = Search()
        self.out: list[DecodedSpan] = []
        self._last_resource: tuple[bytes, tuple[str, str, str]] = b"", (UNKNOWN_SERVICE, "", "")

    def count(self, more: int) -> None:
        if len(self.out) + more > self.max_spans:
            raise TooManySpans(
                f"body: more than {self.max_spans} spans (max_spans_per_export); "
                "send smaller batches"
            )

    def reject(self, service: str, problem: str, detail: str) -> None:
        self.count(1)
        self.out.append(
            DecodedSpan(service, {}, "", "", 1.0, None, problem=problem, problem_detail=detail)
        )

    def service(self, data: bytes, size: int, where: str) -> tuple[str, str, str]:
        """The service name of a resource (merged, ``size`` bytes), or the problem that rejects
        all of its spans. The last resource's answer is kept: a batch of many small
        ``ResourceSpans`` often repeats one resource, and a hostile one does it on purpose."""
        if size <= self.max_span_bytes and data == self._last_resource[0]:
            return self._last_resource[1]
        answer = self._service(data, size, where)
        if not answer[1]:  # a problem's detail names where it is
            self._last_resource = data, answer
        return answer

    def _service(self, data: bytes, size: int, where: str) -> tuple[str, str, str]:
        if size > self.max_span_bytes:
            detail = f"{where}: {size} bytes exceeds max_span_bytes={self.max_span_bytes}"
            return UNKNOWN_SERVICE, "resource_too_large", detail
        try:
            parsed = Resource.FromString(data)
        except DecodeError as exc:
            refusal = self.search.refusal(
                data, 0, len(data), Resource.DESCRIPTOR, depth=0, error=str(exc)
            )
            if refusal.kind == FRAMING:
                what = f"not a protobuf Resource ({refusal.what})"
                raise DecodeFailure(f"{where}{refusal.path}: {what}") from None
            problem = INVALID_UTF8 if refusal.kind == INVALID_UTF8 else "unparsable_resource"
            return UNKNOWN_SERVICE, problem, f"{where}{refusal.path}: {refusal.what}"
        self.attributes.spend(len(parsed.attributes))
        return resource_service(parsed.attributes, UNKNOWN_SERVICE), "", ""

    def group(self, data: bytes, service: str, where: str, first: int) -> str | None:
        """Decode ``data`` (a ScopeSpans, or spans of one: ``where[first]``, ...) in one upb
        parse; if upb refuses it, its error."""
        scope = ScopeSpans()
        try:
            scope.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return str(exc) or type(exc).__name__
        self.count(len(scope.spans))
        decode_spans(
            scope.spans, service, self.out.append, self.attributes, where=where, first=first
        )
        return None

    def walked(self, start: int, end: int, service: str, where: str) -> None:
        """Spans of a large ScopeSpans (or one upb refused) in groups of ~``_GROUP_BYTES``; an
        oversized span is rejected unparsed, and a group upb refuses is retried span by span."""
        for group_start, group_end, first, oversized in span_groups(
            self.body,
            start,
            end,
            budget=self.budget,
            group_bytes=_GROUP_BYTES,
            max_span_bytes=self.max_span_bytes,
        ):
            if oversized:
                detail = (
                    f"{where}.spans[{first}]: {group_end - group_start} bytes exceeds "
                    f"max_span_bytes={self.max_span_bytes}"
                )
                self.reject(service, "span_too_large", detail)
            else:
                self.flush(group_start, group_end, service, f"{where}.spans", first)

    def flush(self, start: int, end: int, service: str, where: str, first: int) -> None:
        """Decode the spans in ``body[start:end]``; if upb refuses them, find which and why.

        A span upb refuses is rejected alone: the walk knows where it ends, so the other spans
        are sound whatever it holds. Only a broken encoding inside it refuses the body."""
        group_error = (
            None if start == end else self.group(self.body[start:end], service, where, first)
        )
        if group_error is None:
            return
        body = self.body
        for index, (field_start, payload, field_end) in enumerate(
            span_fields(body, start, end), first
        ):
            error: str | None = group_error  # when the group is this span: upb refused it alone
            if field_start != start or field_end != end:
                error = self.group(body[field_start:field_end], service, where, index)
            if error is None:
                continue
            refusal = self.search.refusal(
                body, payload, field_end, Span.DESCRIPTOR, depth=1, error=error
            )
            if refusal.kind == FRAMING:
                what = f"not a protobuf Span ({refusal.what})"
                raise DecodeFailure(f"{where}[{index}]{refusal.path}: {what}")
            problem = INVALID_UTF8 if refusal.kind == INVALID_UTF8 else "unparsable_span"
            self.reject(service, problem, f"{where}[{index}]{refusal.path}: {refusal.what}")
