"""Token estimates for calls whose provider reported no usage (e.g. OpenAI streams without
``stream_options.include_usage``).

The footprint model needs a token count; a documented, cheap estimate (flagged on the span with
``downstream.tokens.estimated=true``) is better than dropping the call. We use the rule of thumb the
providers publish for English text with BPE tokenisers: about four characters per token. Chat input
adds a small per-message overhead for the role and separators (OpenAI's cookbook counts 3 tokens per
message plus 3 to prime the reply). No tokeniser is loaded: it would cost milliseconds and megabytes
per process for an estimate that the footprint model's own uncertainty dwarfs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHARS_PER_TOKEN = 4
"""Average characters per token of English text for GPT/Mistral-style BPE tokenisers."""

TOKENS_PER_MESSAGE = 3
"""Role and separator tokens each chat message adds."""

TOKENS_PER_REPLY = 3
"""Tokens that prime the assistant's reply."""

_MAX_DEPTH = 6


def tokens_from_chars(chars: int) -> int:
    """Tokens for ``chars`` characters of generated or prompt text (ceil(chars / 4)); 0 for none."""
    if chars <= 0:
        return 0
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(value: object, _depth: int = 0) -> int:
    """Characters of text in a message content: a string, a list of parts, or a model with ``text``.

    Only text counts: images, audio and file parts are priced differently by providers and we do not
    guess them.
    """
    if isinstance(value, str):
        return len(value)
    if _depth > _MAX_DEPTH or value is None:
        return 0
    if isinstance(value, (list, tuple)):
        return sum(text_chars(part, _depth + 1) for part in value)
    get = value.get if isinstance(value, Mapping) else _attr_getter(value)
    for key in ("text", "content", "input_text"):
        inner = get(key)
        if inner is not None:
            return text_chars(inner, _depth + 1)
    return 0


def input_tokens(body: Mapping[str, Any]) -> int | None:
    """Estimated input tokens of a request body (chat ``messages``, Responses ``input``/``instructions``,
    completion/FIM ``prompt``+``suffix``, embeddings ``input``); ``None`` when it has none of them."""
    messages = body.get("messages")
    if isinstance(messages, (list, tuple)):
        chars = 0
        for message in messages:
            get = message.get if isinstance(message, Mapping) else _attr_getter(message)
            chars += text_chars(get("content"))
        per_message = TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_REPLY
        return tokens_from_chars(chars) + per_message
    found = False
    total = 0
    for key in ("instructions", "input", "prompt", "suffix", "inputs"):
        value = body.get(key)
        if value is None or isinstance(value, (int, float)):
            continue
        found = True
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            total += sum(tokens_from_chars(len(item)) for item in value)
        else:
            total += tokens_from_chars(text_chars(value))
    return total if found else None


def _attr_getter(obj: object) -> Any:
    return lambda name: getattr(obj, name, None)
