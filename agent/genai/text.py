"""How the SDKs' values read for a call's record: counted characters, finish reasons, error types.

The OpenAI and Mistral SDKs hand back tool calls, finish reasons and exceptions in shapes of their
own (plain strings or enums, reasons keyed by choice index). These small readings turn them into
what :class:`.record.GenAIRecord` holds, apart from :mod:`.call`, which is about the
life of one call. The first two run on the streaming path, chunk by chunk, so they stay plain
functions with cheap type checks.
"""

from __future__ import annotations

from typing import Any


def tool_call_chars(calls: Any) -> int:
    """The characters of streamed tool-call deltas (function arguments and name), counted towards
    the output-token estimate of a stream without usage."""
    chars = 0
    for call in calls:
        function = getattr(call, "function", None)
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            chars += len(arguments)
        name = getattr(function, "name", None)
        if isinstance(name, str):
            chars += len(name)
    return chars


def reason_text(reason: object) -> str:
    """A finish reason as text: OpenAI sends plain strings, some SDKs enums (use their value)."""
    if type(reason) is str:  # skips a failing getattr, which costs an exception inside
        return reason
    return str(getattr(reason, "value", reason))


def in_choice_order(reasons: dict[int, str]) -> tuple[str, ...]:
    """The finish reasons of several choices by choice index, whatever order they arrived in."""
    return tuple(reasons[index] for index in sorted(reasons))


def error_type(error: BaseException) -> str:
    """The exception's class name, as the GenAI conventions suggest when no status code applies."""
    return type(error).__qualname__
