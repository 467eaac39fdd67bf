"""What OTLP/HTTP and OTLP/gRPC share in ``serve``: auth, limits, backpressure, accounting.

Both transports hand a raw body to :class:`ExportCore`, so a malformed body, a wrong token, an
oversized message or a rejected span gets the same outcome whichever way the spans came, and the
partial-success answer is built in one place.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otel_downstream.agent.attributes import GEN_AI_CALL_MARKERS
from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.accounting.span_inputs import classify
from otel_downstream.exporters.otlp.decode import (
    MAX_SPAN_BYTES,
    MAX_SPANS_PER_EXPORT,
    decode_protobuf,
)
from otel_downstream.exporters.otlp.decoded import DecodedSpan
from otel_downstream.exporters.otlp.json_decode import decode_json

__all__ = ["ExportCore", "ExportOutcome", "Overloaded", "SpanAccounting"]


class SpanAccounting(Protocol):
    """What ``serve`` needs from the accounting core (``accounting.Accountant`` provides it)."""

    def account(
        self,
        attributes: Mapping[str, Any],
        *,
        service_name: str,
        weight: float = 1.0,
        name: str = "",
        kind: str = "",
        duration_s: float | None = None,
        span_key: Hashable | None = None,
        parent_key: Hashable | None = None,
        ignored: dict[str, float] | None = None,
    ) -> bool: ...

    def count_ignored(self, ignored: Mapping[str, float]) -> None:
        """Count the spans ``account`` gathered in ``ignored`` (reason -> weight), per export."""

    def reject(self, reason: str, weight: float = 1.0) -> None:
        """Count a span ``serve`` could not read (``reason`` names the field) as rejected."""

    # Optional: ``take_rejection() -> str``, right after ``account`` returned False on this
    # thread, why it rejected the span, or "" when it ignored it (``Accountant`` has it); without
    # it the core tells the two apart with ``classify`` and cannot name the reasons.

    def flush(self, *, release: bool = False) -> None:
        """Write what was accounted into the metrics (``serve`` calls it once, on stop, with
        ``release=True``: new series' held amounts too)."""


def children_first(spans: list[DecodedSpan]) -> list[DecodedSpan]:
    """``spans`` with every span after its descendants in the batch, so that a model call recorded
    by nested spans is counted once, on its innermost span (see ``nested_calls``).

    A batch without a GenAI-marked span whose parent is in it is returned as it is. Otherwise each
    span's depth is found once (a walk up that stops at any span already measured, so the work is
    linear in the batch) and the batch is sorted deepest first; a parent loop from a broken sender
    is cut where it closes."""
    if not any(
        span.parent_key is not None
        and any(marker in span.attributes for marker in GEN_AI_CALL_MARKERS)
        for span in spans
    ):
        return spans
    by_key = {span.span_key: span for span in spans if span.span_key is not None}
    if not any(span.parent_key in by_key for span in spans):
        return spans
    depth: dict[bytes, int] = {}
    for span in spans:
        chain: list[bytes] = []
        on_chain: set[bytes] = set()
        key = span.span_key
        while key is not None and key not in depth and key not in on_chain:
            chain.append(key)
            on_chain.add(key)
            parent_key = by_key[key].parent_key
            key = parent_key if parent_key in by_key else None
        level = depth.get(key, 0) if key is not None and key not in on_chain else 0
        for walked in reversed(chain):
            level += 1
            depth[walked] = level
    return sorted(spans, key=lambda span: -depth.get(span.span_key, 0) if span.span_key else 0)


class ExportOutcome(NamedTuple):
    """How many spans of one export were rejected, and why (OTLP partial success)."""

    rejected: int
    message: str

    def to_protobuf(self) -> bytes:
        return self.response().SerializeToString()

    def response(self) -> ExportTraceServiceResponse:
        if not self.rejected and not self.message:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(
                rejected_spans=self.rejected, error_message=self.message
            )
        )

    def to_json(self) -> dict[str, Any]:
        if not self.rejected and not self.message:
            return {}
        # OTLP/JSON writes int64 as a decimal string.
        return {
            "partialSuccess": {"rejectedSpans": str(self.rejected), "errorMessage": self.message}
        }


class Overloaded(Exception):
    """Too many exports in flight: the sender should retry later (HTTP 503 / gRPC UNAVAILABLE)."""


class ExportCore:
    """Auth, limits, backpressure and accounting shared by OTLP/HTTP and OTLP/gRPC."""

    def __init__(
        self,
        accountant: SpanAccounting,
        *,
        auth_token: str | None,
        max_body_bytes: int,
        max_decompressed_bytes: int,
        max_concurrent_exports: int,
        max_spans_per_export: int = MAX_SPANS_PER_EXPORT,
        max_span_bytes: int = MAX_SPAN_BYTES,
    ) -> None:
        self._accountant = accountant
        self._take_rejection: Callable[[], str] | None = getattr(accountant, "take_rejection", None)
        self.max_spans_per_export = max_spans_per_export
        self.max_span_bytes = max_span_bytes
        self._token = auth_token.encode() if auth_token else None
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent_exports)
        self._tally_lock = threading.Lock()
        self.tally = {
            "spans_received": 0,
            "spans_accounted": 0,
            "spans_rejected": 0,
            "spans_ignored": 0,
        }
        """Spans seen since start, for the ``stopped`` line and tests (metrics carry the rest)."""

    def authorized(self, header: str | None) -> bool:
        """``Bearer <token>``, the scheme in any case (RFC 7235), the token compared in constant
        time so its bytes cannot be guessed from how fast a wrong one is refused."""
        if self._token is None:
            return True
        scheme, _, credentials = (header or "").strip().partition(" ")
        given = credentials.strip().encode("utf-8", "replace")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self._token)

    @contextlib.contextmanager
    def slot(self, wait_s: float = 1.0) -> Iterator[None]:
        if not self._slots.acquire(timeout=wait_s):
            raise Overloaded("too many exports in flight; retry later")
        try:
            yield
        finally:
            self._slots.release()

    def export(self, body: bytes, *, json_body: bool) -> ExportOutcome:
        """Decode a whole body (raising ``DecodeFailure``), then account every span in it."""
        return self.account(self.decode(body, json_body=json_body))

    def decode(self, body: bytes, *, json_body: bool) -> list[DecodedSpan]:
        """A whole body's spans under this service's limits (raising ``DecodeFailure``); apart
        from :meth:`export` for a transport that decides between decoding and accounting."""
        if json_body:
            return decode_json(body, max_spans=self.max_spans_per_export)
        return decode_protobuf(
            body, max_spans=self.max_spans_per_export, max_span_bytes=self.max_span_bytes
        )

    def _rejection(self, span: DecodedSpan) -> str:
        """Why ``account`` refused ``span`` (``""``: it ignored it, not a footprint span)."""
        if self._take_rejection is not None:
            return self._take_rejection()
        # An accountant without take_rejection: classified only now, so an accounted span is
        # classified once, inside account.
        return "" if classify(span.attributes, span.name, span.kind) is None else "unknown"

    def account(self, spans: list[DecodedSpan]) -> ExportOutcome:
        """Account each span; only footprint spans the core refused count as rejected.

        Spans the footprint does not cover (database calls, internal work) are accepted and
        ignored (the accountant counts them in ``downstream_spans_ignored_total``): OTLP's
        ``rejected_spans`` means data the receiver could not take. The partial-success message
        gives the count and names each rejection reason with its count.
        """
        rejected = accounted = ignored = 0
        unreadable = ""
        reasons: dict[str, int] = {}
        ignored_by_reason: dict[str, float] = {}
        account = self._accountant.account
        for span in children_first(spans):
            try:
                if span.problem:  # a span-level field did not parse: nothing of it is known
                    rejected += 1
                    unreadable = unreadable or span.problem_detail
                    reasons[span.problem] = reasons.get(span.problem, 0) + 1
                    self._accountant.reject(span.problem, span.weight)
                elif account(
                    span.attributes,
                    service_name=span.service_name,
                    weight=span.weight,
                    name=span.name,
                    kind=span.kind,
                    duration_s=span.duration_s,
                    span_key=span.span_key,
                    parent_key=span.parent_key,
                    ignored=ignored_by_reason,
                ):
                    accounted += 1
                # Not accounted: refused, unless the footprint does not cover the span at all
                # (the accountant counted it in downstream_spans_ignored_total: not an error).
                elif reason := self._rejection(span):
                    rejected += 1
                    reasons[reason] = reasons.get(reason, 0) + 1
                else:
                    ignored += 1
            except Exception as exc:  # the service keeps serving whatever one span does
                report_fault("serve", exc)
                rejected += 1
                reasons["internal_error"] = reasons.get("internal_error", 0) + 1
                with contextlib.suppress(Exception):  # the accountant's never raises
                    self._accountant.reject("internal_error")
        if ignored_by_reason:
            self._accountant.count_ignored(ignored_by_reason)
        with self._tally_lock:
            self.tally["spans_received"] += len(spans)
            self.tally["spans_accounted"] += accounted
            self.tally["spans_rejected"] += rejected
            self.tally["spans_ignored"] += ignored
        if not rejected:
            return ExportOutcome(0, "")
        named = ", ".join(
            f"{reason}: {count}"
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        )
        message = (
            f"{rejected} of {len(spans)} spans had invalid footprint attributes ({named}); "
            "see downstream_spans_rejected_total{reason} on /metrics"
        )
        if unreadable:
            message += f"; first unreadable span: {unreadable}"
        return ExportOutcome(rejected, message)
