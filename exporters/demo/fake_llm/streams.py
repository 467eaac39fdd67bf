"""Streamed bodies of the fake LLM API: chat and completion chunks, and the Responses API's typed
events, as Server-Sent Events (the non-streamed bodies are in ``payloads``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from otel_downstream.exporters.demo.fake_llm.payloads import (
    WORD,
    FakeLLMSettings,
    response_object,
    usage,
)

__all__ = ["sse", "stream_events"]


def sse(payload: dict[str, Any], typed: bool = False) -> str:
    """One SSE message; typed events (Responses API) also name the event."""
    head = f"event: {payload['type']}\n" if typed else ""
    return f"{head}data: {json.dumps(payload)}\n\n"


def stream_events(
    *,
    endpoint: str,
    model: str,
    tokens: int,
    settings: FakeLLMSettings,
    include_usage: bool,
    mistral: bool,
) -> list[str]:
    if endpoint == "responses":
        return list(_response_events(model, tokens, settings, mistral))
    events = []
    for index in range(tokens + 1):
        last = index == tokens
        if endpoint == "completions":
            choice: dict[str, Any] = {"index": 0, "text": "" if last else WORD}
        else:
            delta: dict[str, Any] = {"content": "" if last else WORD}
            if index == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta}
        choice["finish_reason"] = "stop" if last else None
        chunk: dict[str, Any] = {
            "id": "chunk-fake",
            "object": "text_completion" if endpoint == "completions" else "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [choice],
        }
        if mistral and last and include_usage:
            chunk["usage"] = usage(settings, tokens, mistral=True)
        events.append(sse(chunk))
    if include_usage and not mistral:  # OpenAI: a final chunk with no choices carries usage
        usage_chunk = {
            "id": "chunk-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": usage(settings, tokens),
        }
        events.append(sse(usage_chunk))
    events.append("data: [DONE]\n\n")
    return events


def _response_events(
    model: str, tokens: int, settings: FakeLLMSettings, mistral: bool
) -> Iterator[str]:
    seq = iter(range(1_000_000))
    text = WORD * tokens
    part = {"type": "output_text", "text": "", "annotations": []}
    ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    created = response_object(model, tokens, settings, status="in_progress", mistral=mistral)
    yield sse(
        {"type": "response.created", "sequence_number": next(seq), "response": created},
        typed=True,
    )
    item = {
        "id": "msg_fake",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    added = {
        "type": "response.output_item.added",
        "sequence_number": next(seq),
        "output_index": 0,
        "item": item,
    }
    yield sse(added, typed=True)
    part_added = {
        "type": "response.content_part.added",
        "sequence_number": next(seq),
        "part": part,
        **ids,
    }
    yield sse(part_added, typed=True)
    for _ in range(tokens):
        delta = {
            "type": "response.output_text.delta",
            "sequence_number": next(seq),
            "delta": WORD,
            "logprobs": [],
            **ids,
        }
        yield sse(delta, typed=True)
    done = {
        "type": "response.output_text.done",
        "sequence_number": next(seq),
        "text": text,
        "logprobs": [],
        **ids,
    }
    yield sse(done, typed=True)
    full_part = {**part, "text": text}
    part_done = {
        "type": "response.content_part.done",
        "sequence_number": next(seq),
        "part": full_part,
        **ids,
    }
    yield sse(part_done, typed=True)
    final = response_object(model, tokens, settings, mistral=mistral)
    item_done = {
        "type": "response.output_item.done",
        "sequence_number": next(seq),
        "output_index": 0,
        "item": final["output"][0],
    }
    yield sse(item_done, typed=True)
    yield sse(
        {"type": "response.completed", "sequence_number": next(seq), "response": final},
        typed=True,
    )
