"""What one call's SDK hands back, read shape by shape: parsed results, streamed chunks and events.

OpenAI chat and completion chunks, Responses events, Mistral chunks (wrapped in events) and
Mistral Conversations events all carry the same few facts (response model, usage, finish reasons,
generated text) in different places. Reading them is kept apart from the call's span life
(:mod:`~otel_downstream.agent.genai.call`), so following a new SDK shape touches only this module;
:class:`Observations` is the base of ``GenAICall``, so a chunk costs no extra indirection.
"""

from __future__ import annotations

import time
from typing import Any

from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.record import FIELDS
from otel_downstream.agent.genai.text import reason_text, tool_call_chars
from otel_downstream.agent.genai.token_estimate import text_chars

__all__ = ["Observations"]

_CONVERSATION_EVENTS = frozenset(
    ("message.output.delta", "function.call.delta", "conversation.response.done")
)


class Observations:
    """The accumulators one call fills as results and chunks arrive (set by the subclass)."""

    __slots__ = ("_chars", "_reasons", "_response_model", "_start", "_ttfc", "_usage", "component")

    def __init__(self, component: str, stream: bool) -> None:
        self.component = component
        # only streams report a time to first chunk: a plain call skips the clock read
        self._start = time.perf_counter() if stream else 0.0
        self._ttfc: float | None = None
        self._chars = 0  # generated characters seen in a stream, for the token estimate
        self._usage: object = None
        self._reasons: dict[int, str] = {}  # finish reason by choice index
        self._response_model: str | None = None

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
