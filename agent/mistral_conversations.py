"""The Conversations API read as chat completions, so one accumulator counts both.

Mistral's ``beta.conversations`` results name the model in their output entries, stream text in
``message.output.delta`` events and report usage in ``conversation.response.done``, unlike the chat
completions that :class:`.genai_call.GenAICall` reads. Rather than teach the shared accumulator a
second shape, :class:`ConversationCall` adapts each result and event to the chat-completion shape
(``model``, ``usage``, ``choices[].delta``) here, so the accounting itself stays in one place and
:mod:`.mistral` stays about patching the SDK.
"""

from __future__ import annotations

from typing import Any

from .faults import report_fault
from .genai_call import GenAICall


class ConversationCall(GenAICall):
    """A call of the Conversations API, whose results read differently from chat completions: the
    model is named by the output entries, streamed text comes in ``message.output.delta`` events and
    usage in ``conversation.response.done``. Each is adapted to the chat-completion shape that
    :class:`GenAICall` reads, so the accounting itself stays in one place."""

    __slots__ = ()

    def observe_result(self, result: object) -> None:
        try:
            model = None
            for output in getattr(result, "outputs", None) or ():
                named = getattr(output, "model", None)
                if isinstance(named, str) and named:
                    model = named
                    break
            adapted = _Reading(model, getattr(result, "usage", None), ())
        except Exception as exc:
            report_fault(self.component, exc)
            return
        super().observe_result(adapted)

    def observe_chunk(self, chunk: Any) -> None:
        try:
            adapted = _conversation_event(getattr(chunk, "data", chunk))
        except Exception as exc:
            report_fault(self.component, exc)
            adapted = _NOTHING  # still the first chunk's time
        super().observe_chunk(adapted)


class _Reading:
    """A chat-completion-shaped view (``model``, ``usage``, ``choices``) of a conversation result."""

    __slots__ = ("choices", "model", "usage")

    def __init__(self, model: object, usage: object, choices: tuple[_Choice, ...]) -> None:
        self.model = model
        self.usage = usage
        self.choices = choices


class _Choice:
    __slots__ = ("delta", "finish_reason", "index")

    def __init__(self, delta: _Delta) -> None:
        self.delta = delta
        self.finish_reason = None
        self.index = 0


class _Delta:
    __slots__ = ("content", "tool_calls")

    def __init__(self, content: object, tool_calls: tuple[_ToolCall, ...] | None) -> None:
        self.content = content
        self.tool_calls = tool_calls


class _ToolCall:
    """A streamed function call: its ``function.arguments`` text is what is counted."""

    __slots__ = ("function",)

    def __init__(self, arguments: object) -> None:
        self.function = _Function(arguments)


class _Function:
    __slots__ = ("arguments", "name")

    def __init__(self, arguments: object) -> None:
        self.arguments = arguments
        self.name = None  # repeated on every delta of the call: not counted


_NOTHING = _Reading(None, None, ())


def _conversation_event(data: Any) -> _Reading:
    """The chat-chunk reading of one streamed conversation event (``ConversationEvents.data``)."""
    kind = getattr(data, "type", None)
    if kind == "message.output.delta":
        model = getattr(data, "model", None)
        delta = _Delta(getattr(data, "content", None), None)
        return _Reading(model if isinstance(model, str) else None, None, (_Choice(delta),))
    if kind == "function.call.delta":
        call = _ToolCall(getattr(data, "arguments", None))
        return _Reading(None, None, (_Choice(_Delta(None, (call,))),))
    if kind == "conversation.response.done":
        return _Reading(None, getattr(data, "usage", None), ())
    return _NOTHING
