"""Mistral's Conversations API as the fake LLM API answers it: ``conversation.response`` objects
and their typed SSE events, with usage in ``conversation.response.done``."""

from __future__ import annotations

from typing import Any

from otel_downstream.exporters.demo.fake_llm.payloads import WORD, FakeLLMSettings
from otel_downstream.exporters.demo.fake_llm.streams import sse

__all__ = ["conversation_events", "conversation_response"]

_CONVERSATION_ID = "conv_fake"
_CREATED = "2023-11-14T22:13:20Z"  # the created timestamp above, as Mistral's ISO 8601 text


def _conversation_usage(settings: FakeLLMSettings, tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": settings.input_tokens,
        "completion_tokens": tokens,
        "total_tokens": settings.input_tokens + tokens,
        "connector_tokens": None,
        "connectors": None,
    }


def conversation_response(model: str, tokens: int, settings: FakeLLMSettings) -> dict[str, Any]:
    """Mistral's ``ConversationResponse`` (start, append and restart of ``/v1/conversations``): one
    ``message.output`` entry naming the model, and the usage of the call."""
    entry = {
        "object": "entry",
        "type": "message.output",
        "created_at": _CREATED,
        "completed_at": _CREATED,
        "id": "msg_fake",
        "agent_id": None,
        "model": model,
        "role": "assistant",
        "content": WORD * tokens,
    }
    return {
        "object": "conversation.response",
        "conversation_id": _CONVERSATION_ID,
        "outputs": [entry],
        "usage": _conversation_usage(settings, tokens),
    }


def conversation_events(
    model: str, tokens: int, settings: FakeLLMSettings, include_usage: bool
) -> list[str]:
    """Mistral's streamed conversation: typed SSE events (``event:`` names the type), one
    ``message.output.delta`` per token, usage in the closing ``conversation.response.done`` (left
    out when ``include_usage`` is false). No ``[DONE]`` sentinel: Mistral sends none here."""
    started = {
        "type": "conversation.response.started",
        "created_at": _CREATED,
        "conversation_id": _CONVERSATION_ID,
    }
    events = [sse(started, typed=True)]
    for _ in range(tokens):
        delta = {
            "type": "message.output.delta",
            "created_at": _CREATED,
            "output_index": 0,
            "id": "msg_fake",
            "content_index": 0,
            "model": model,
            "agent_id": None,
            "role": "assistant",
            "content": WORD,
        }
        events.append(sse(delta, typed=True))
    if include_usage:
        done = {
            "type": "conversation.response.done",
            "created_at": _CREATED,
            "usage": _conversation_usage(settings, tokens),
        }
        events.append(sse(done, typed=True))
    return events
