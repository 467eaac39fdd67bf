"""The life of one traced LLM API call: open a CLIENT span, accumulate what the SDK returns, end once.

Both provider wrappers create a :class:`GenAICall` when an instrumented method starts, feed it the
HTTP exchange, the parsed result or the streamed chunks, and call :meth:`GenAICall.finish` from every
place a call can end (return, error, stream exhaustion, close, garbage collection). ``finish`` is
idempotent, so those places need not coordinate. Nothing here may raise into the host application:
every observation is guarded and faults go to :func:`otel_downstream.agent.faults.report_fault`.
Reading results and chunks, shape by shape, is :mod:`.observe` (the base class).

When another instrumentation's span of the same call is current (see
:func:`.context.foreign_call_span`), no span is opened: the call observes as usual and, at its
end or just before that span's end if that comes first, adds to that span only what it lacks
(typically the tokens of a stream without usage, and the byte counts; see
:mod:`.annotation`), so the exporter counts the call once, with tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otel_downstream.agent.attributes import SERVER_ADDRESS, SERVER_PORT
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.annotation import annotation
from otel_downstream.agent.genai.context import foreign_call_span
from otel_downstream.agent.genai.observe import Observations
from otel_downstream.agent.genai.record import (
    GenAIRecord,
    as_int,
    end_attributes,
    span_name,
    start_attributes,
    usage_counts,
)
from otel_downstream.agent.genai.text import error_type, in_choice_order
from otel_downstream.agent.genai.token_estimate import input_tokens, tokens_from_chars


class GenAICall(Observations):
    """Mutable accumulator for one call; turned into a frozen :class:`GenAIRecord` at the end."""

    __slots__ = (
        "_body",
        "_done",
        "_end_hook",
        "_operation",
        "_provider",
        "_request_bytes",
        "_request_model",
        "_response",
        "_server",
        "_stream",
        "busy",
        "context",
        "owns_span",
        "recording",
        "span",
    )

    def __init__(
        self,
        tracer: Tracer,
        *,
        component: str,
        operation: str,
        provider: str,
        request_model: str | None,
        stream: bool,
        server: tuple[str | None, int | None],
        body: Mapping[str, Any] | None,
        context: Context | None = None,
    ) -> None:
        super().__init__(component, stream)
        self.context = context  # the caller's context, when already read (None: read it here)
        self._operation = operation
        self._provider = provider
        self._request_model = request_model
        self._stream = stream
        self._server = server
        self._body = body
        foreign = foreign_call_span(context if context is not None else get_current())
        self.owns_span = foreign is None
        self.span = span = foreign or tracer.start_span(
            span_name(operation, request_model),
            context=context,
            kind=SpanKind.CLIENT,
            attributes=start_attributes(
                operation=operation,
                provider=provider,
                request_model=request_model,
                stream=stream,
                server_address=server[0],
                server_port=server[1],
            ),
        )
        self._response: Any = None
        self._request_bytes: int | None = None
        self.busy = False
        self._done = False
        self.recording = span.is_recording()  # unsampled: nothing to observe
        self._end_hook: Any = None if foreign is None else self._hook_end(foreign)

    # --- observations -------------------------------------------------------------------------
    def observe_http(self, response: Any) -> None:
        """Remember the HTTP response (last attempt wins) to read byte counts from at the end."""
        try:
            self._response = response
            request = response.request
            try:
                # the body the SDK built (JSON): its length is what Content-Length says, without
                # a header lookup (httpx normalises every header name on each lookup)
                self._request_bytes = len(request.content)
            except RuntimeError:  # httpx.RequestNotRead: a streamed upload, so trust the header
                length = request.headers.get("content-length")
                self._request_bytes = int(length) if length is not None else None
            if self._server[0] is None:  # not known from the client's configuration
                url = request.url
                self._server = (url.host, url.port)
                if self.owns_span:  # a foreign span gets it at the end, if it lacks it
                    self.span.set_attribute(SERVER_ADDRESS, url.host)
                    if url.port is not None:
                        self.span.set_attribute(SERVER_PORT, url.port)
        except Exception as exc:
            report_fault(self.component, exc)

    # --- the end ------------------------------------------------------------------------------
    def finish(self, error: BaseException | None = None) -> None:
        """End the span with everything observed; later calls do nothing (so every place a call
        can end, including a ``weakref.finalize`` of an abandoned stream, may call it)."""
        if self._done:
            return
        self._done = True
        try:
            if error is not None and self._response is None:
                # SDK errors carry the failed HTTP response (openai: .response, mistral: .raw_response)
                failed = getattr(error, "response", None) or getattr(error, "raw_response", None)
                if failed is not None and hasattr(failed, "request"):
                    self.observe_http(failed)
            if not self.owns_span:  # the other instrumentation ends (and marks) its span
                self._annotate(error)
                self._unhook_end()
                return
            record = self._record(error)
            span = self.span
            attributes = end_attributes(record)
            if attributes:
                span.set_attributes(attributes)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, record.error_type))
            span.end()
        except Exception as exc:
            report_fault(self.component, exc)
        finally:
            # a finaliser may keep this object until the stream is collected: drop the payloads
            self._body = self._response = self._usage = self.context = None

    def _annotate(self, error: BaseException | None) -> None:
        """Add what we observed to the other instrumentation's span, unless it has ended."""
        span = self.span
        if span.is_recording():
            span.set_attributes(annotation(getattr(span, "attributes", None), self._record(error)))

    def _hook_end(self, span: Any) -> Any:
        """Annotate the other span just before it ends, when that comes first: openai-v2 ends
        its span when a ``with`` block around a stream exits, without closing the stream, whose
        end we would only see at garbage collection, too late."""
        original = span.end

        def end(*args: Any, **kwargs: Any) -> Any:
            try:
                self._annotate(None)
            except Exception as exc:
                report_fault(self.component, exc)
            return original(*args, **kwargs)

        try:
            span.end = end
        except Exception:  # a span type without instance attributes: annotated at our end only
            return None
        return end

    def _unhook_end(self) -> None:
        hook, self._end_hook = self._end_hook, None
        if hook is not None and vars(self.span).get("end") is hook:
            del self.span.end

    def _record(self, error: BaseException | None) -> GenAIRecord:
        inp, out, cached, reasoning = usage_counts(self._usage)
        estimated = False
        # estimate only from chunks we saw: a stream read raw (iter_lines) or never read stays unknown
        if (
            out is None
            and self._stream
            and self._ttfc is not None
            and (error is None or self._chars)
        ):
            out = tokens_from_chars(self._chars)
            estimated = True
        if inp is None and self._body is not None and (estimated or out is not None):
            inp = input_tokens(self._body)
            estimated = estimated or inp is not None
        response_bytes = None
        if self._response is not None:
            response_bytes = as_int(getattr(self._response, "num_bytes_downloaded", None))
        reasons = self._reasons
        server = self._server
        return GenAIRecord(
            operation=self._operation,
            provider=self._provider,
            request_model=self._request_model,
            response_model=self._response_model,
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cached,
            reasoning_tokens=reasoning,
            stream=self._stream,
            finish_reasons=tuple(reasons.values())
            if len(reasons) < 2
            else in_choice_order(reasons),
            error_type=None if error is None else error_type(error),
            server_address=server[0],
            server_port=server[1],
            request_bytes=self._request_bytes,
            response_bytes=response_bytes,
            time_to_first_chunk=self._ttfc if self._stream else None,
            tokens_estimated=estimated,
        )
