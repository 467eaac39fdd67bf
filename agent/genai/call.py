"""The life of one traced LLM API call: open a CLIENT span, accumulate what the SDK returns, end once.

Both provider wrappers create a :class:`GenAICall` when an instrumented method starts, feed it the
HTTP exchange, the parsed result or the streamed chunks, and call :meth:`GenAICall.finish` from every
place a call can end (return, error, stream exhaustion, close, garbage collection). ``finish`` is
idempotent, so those places need not coordinate. Nothing here may raise into the host application:
every observation is guarded and faults go to :func:`otel_downstream.agent.faults.report_fault`.

When another instrumentation's span of the same call is current (see
:func:`.genai_context.foreign_call_span`), no span is opened: the call observes as usual and, at its
end or just before that span's end if that comes first, adds to that span only what it lacks
(typically the tokens of a stream without usage, and the byte counts; see
:mod:`.genai_annotation`), so the exporter counts the call once, with tokens.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otel_downstream.agent.attributes import SERVER_ADDRESS, SERVER_PORT
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.annotation import annotation
from otel_downstream.agent.genai.context import foreign_call_span
from otel_downstream.agent.genai.record import (
    FIELDS,
    GenAIRecord,
    as_int,
    end_attributes,
    span_name,
    start_attributes,
    usage_counts,
)
from otel_downstream.agent.genai.text import (
    error_type,
    in_choice_order,
    reason_text,
    tool_call_chars,
)
from otel_downstream.agent.genai.token_estimate import input_tokens, text_chars, tokens_from_chars

_CONVERSATION_EVENTS = frozenset(
    ("message.output.delta", "function.call.delta", "conversation.response.done")
)


class GenAICall:
    """Mutable accumulator for one call; turned into a frozen :class:`GenAIRecord` at the end."""

    __slots__ = (
        "_body",
        "_chars",
        "_done",
        "_end_hook",
        "_operation",
        "_provider",
        "_reasons",
        "_request_bytes",
        "_request_model",
        "_response",
        "_response_model",
        "_server",
        "_start",
        "_stream",
        "_ttfc",
        "_usage",
        "busy",
        "component",
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
        self.component = component
        self.context = context  # the caller's context, when already read (None: read it here)
        self._operation = operation
        self._provider = provider
        self._request_model = request_model
        self._stream = stream
        self._server = server
        self._body = body
        # only streams report a time to first chunk: a plain call skips the clock read
        self._start = time.perf_counter() if stream else 0.0
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
        self._usage: object = None
        self._reasons: dict[int, str] = {}
        self._chars = 0
        self._ttfc: float | None = None
        self._response: Any = None
        self._request_bytes: int | None = None
        self._response_model: str | None = None
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

    def observe_result(self, result: object) -> None:
        """Take model, usage and finish reasons from a parsed (non-streamed) response."""
        try:
            fields = FIELDS[type(result)]
            model = getattr(result, "model", None) if "model" in fields else None
            if isinstance(model, str) and model:
                self._response_model = model
            usage = getattr(result, "usage", None) if "usage" in fields else None
            if usage is not None:
                self._usage = usage
            if "choices" in fields:
                for index, choice in enumerate(getattr(result, "choices", None) or ()):
                    reason = getattr(choice, "finish_reason", None)
                    if reason:
                        self._reasons[index] = reason_text(reason)
            elif "status" in fields and "output" in fields:  # Responses API: the status
                status = getattr(result, "status", None)
                if isinstance(status, str):
                    self._reasons[0] = status
            elif "outputs" in fields:  # Mistral Conversations: the output entries name the model
                for output in getattr(result, "outputs", None) or ():
                    model = getattr(output, "model", None)
                    if isinstance(model, str) and model:
                        self._response_model = model
                        break
        except Exception as exc:
            report_fault(self.component, exc)

    def observe_chunk(self, chunk: Any) -> None:
        """One streamed chunk: OpenAI chat/completion chunk, Responses event, Mistral chunk or
        Conversations event."""
        try:
            if self._ttfc is None:
                self._ttfc = time.perf_counter() - self._start
            fields = FIELDS[type(chunk)]
            if "data" in fields and "choices" not in fields:  # Mistral wraps chunks in events
                chunk = chunk.data
                fields = FIELDS[type(chunk)]
            if "choices" not in fields:
                kind = getattr(chunk, "type", None)
                if isinstance(kind, str):
                    if kind.startswith("response."):
                        self._observe_response_event(kind, chunk)
                    elif kind in _CONVERSATION_EVENTS:
                        self._observe_conversation_event(kind, chunk)
                return
            if self._response_model is None:
                model = chunk.model if "model" in fields else None
                if isinstance(model, str) and model:
                    self._response_model = model
            usage = chunk.usage if "usage" in fields else None
            if usage is not None:
                self._usage = usage
            for choice in chunk.choices or ():
                if "delta" in FIELDS[type(choice)]:
                    delta = choice.delta
                    text = delta.content
                    calls = delta.tool_calls
                    if calls:
                        self._chars += tool_call_chars(calls)
                else:
                    text = choice.text
                if text:
                    self._chars += len(text) if type(text) is str else text_chars(text)
                reason = choice.finish_reason
                if reason:
                    index = choice.index
                    self._reasons[index if isinstance(index, int) else 0] = reason_text(reason)
        except Exception as exc:
            report_fault(self.component, exc)

    def _observe_response_event(self, kind: str, event: Any) -> None:
        if kind.endswith(".delta"):
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self._chars += len(delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.observe_result(getattr(event, "response", None))
        elif kind == "response.created" and self._response_model is None:
            model = getattr(getattr(event, "response", None), "model", None)
            if isinstance(model, str):
                self._response_model = model

    def _observe_conversation_event(self, kind: str, event: Any) -> None:
        """Mistral Conversations: text in ``message.output.delta``, function-call arguments in
        ``function.call.delta`` (the name repeats on every delta: not counted), usage in
        ``conversation.response.done``."""
        if kind == "message.output.delta":
            model = getattr(event, "model", None)
            if self._response_model is None and isinstance(model, str) and model:
                self._response_model = model
            text = getattr(event, "content", None)
            if text:
                self._chars += len(text) if type(text) is str else text_chars(text)
        elif kind == "function.call.delta":
            arguments = getattr(event, "arguments", None)
            if isinstance(arguments, str):
                self._chars += len(arguments)
        else:  # conversation.response.done
            usage = getattr(event, "usage", None)
            if usage is not None:
                self._usage = usage

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
