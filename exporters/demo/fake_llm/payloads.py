"""Response bodies of the fake LLM API, shaped like the providers' documented ones.

OpenAI: chat completions and chunks (a usage chunk only with ``stream_options.include_usage``), the
Responses API object and its typed stream events, the compacted response of ``/responses/compact``,
embeddings (float or base64), legacy completions, and ``{"error": {...}}`` bodies. Mistral: the same
chat/FIM shapes with usage on the last chunk, its Responses API (the OpenAI-shaped object and typed
events), its Conversations API (``conversation.response`` objects and typed SSE events, usage in
``conversation.response.done``), and its ``{"message": ...}`` / ``{"detail": [...]}`` error bodies.
Content is the filler word ``"tok "`` per token (four characters, so the chars/4 estimate is exact on
it). Never a model's output.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WORD",
    "FakeLLMSettings",
    "compacted_response",
    "completion",
    "embeddings",
    "error_body",
    "response_object",
    "usage",
]

WORD = "tok "  # four characters per token, so the chars/4 estimate is exact on this filler
_EMBEDDING_DIM = 8


@dataclass(frozen=True, slots=True)
class FakeLLMSettings:
    """What every response reports unless a request header overrides it."""

    input_tokens: int = 21
    output_tokens: int = 12
    cached_tokens: int = 5
    reasoning_tokens: int = 3
    latency_s: float = 0.0  # before the response starts
    chunk_delay_s: float = 0.0  # between streamed chunks


def error_body(status: int, mistral: bool) -> dict[str, Any]:
    if mistral:
        if status == 422:
            return {
                "detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]
            }
        messages = {401: "Unauthorized", 429: "Requests rate limit exceeded"}
        return {
            "object": "error",
            "message": messages.get(status, "Internal server error"),
            "type": "invalid_request_error" if status < 500 else "internal_server_error",
            "param": None,
            "code": str(status),
        }
    kinds = {
        401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        422: ("Unprocessable request.", "invalid_request_error", None),
        429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    }
    message, kind, code = kinds.get(status, ("The server had an error.", "server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def usage(settings: FakeLLMSettings, output_tokens: int, mistral: bool = False) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": settings.input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": settings.input_tokens + output_tokens,
    }
    if not mistral:  # Mistral's documented usage has only the three totals
        usage["prompt_tokens_details"] = {"cached_tokens": settings.cached_tokens}
        usage["completion_tokens_details"] = {"reasoning_tokens": settings.reasoning_tokens}
    return usage


def completion(endpoint: str, model: str, tokens: int, settings: FakeLLMSettings) -> dict[str, Any]:
    text = WORD * tokens
    if endpoint == "completions":
        choice: dict[str, Any] = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": "stop",
        }
        kind = "text_completion"
    else:
        message = {"role": "assistant", "content": text, "tool_calls": None}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        kind = "chat.completion"
    return {
        "id": "cmpl-fake",
        "object": kind,
        "created": 1_700_000_000,
        "model": model,
        "choices": [choice],
        "usage": usage(settings, tokens),
    }


def embeddings(
    body: dict[str, Any], model: str, settings: FakeLLMSettings, mistral: bool
) -> dict[str, Any]:
    items = body.get("input") or body.get("inputs") or [""]
    count = len(items) if isinstance(items, list) else 1
    vector = [0.25] * _EMBEDDING_DIM
    data = []
    for index in range(count):
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{_EMBEDDING_DIM}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": settings.input_tokens, "total_tokens": settings.input_tokens}
    if mistral:
        usage["completion_tokens"] = 0
    return {"id": "emb-fake", "object": "list", "data": data, "model": model, "usage": usage}


def response_object(
    model: str,
    tokens: int,
    settings: FakeLLMSettings,
    status: str = "completed",
    mistral: bool = False,
) -> dict[str, Any]:
    """A Responses API object; Mistral's version of it requires ``cache_write_tokens`` too."""
    text = WORD * tokens if status == "completed" else ""
    content = [{"type": "output_text", "text": text, "annotations": []}]
    item = {
        "id": "msg_fake",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }
    input_details: dict[str, Any] = {"cached_tokens": settings.cached_tokens}
    if mistral:
        input_details["cache_write_tokens"] = 0
    usage = {
        "input_tokens": settings.input_tokens,
        "input_tokens_details": input_details,
        "output_tokens": tokens,
        "output_tokens_details": {"reasoning_tokens": settings.reasoning_tokens},
        "total_tokens": settings.input_tokens + tokens,
    }
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": [item] if status == "completed" else [],
        "usage": usage if status == "completed" else None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
    }


def compacted_response(tokens: int, settings: FakeLLMSettings) -> dict[str, Any]:
    """OpenAI's ``CompactedResponse`` (``POST /v1/responses/compact``): the user messages, then one
    compaction item (opaque encrypted content), and the usage of the compaction pass (it names no
    model)."""
    user = {
        "id": "msg_fake_user",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": WORD}],
    }
    compaction = {
        "id": "cmp_fake",
        "type": "compaction",
        "encrypted_content": "ZmFrZQ==",  # base64 "fake": opaque to clients, as the real one
        "created_by": "fake",
    }
    return {
        "id": "resp_fake_compact",
        "object": "response.compaction",
        "created_at": 1_700_000_000,
        "output": [user, compaction],
        "usage": {
            "input_tokens": settings.input_tokens,
            "input_tokens_details": {"cached_tokens": settings.cached_tokens},
            "output_tokens": tokens,
            "output_tokens_details": {"reasoning_tokens": settings.reasoning_tokens},
            "total_tokens": settings.input_tokens + tokens,
        },
    }
