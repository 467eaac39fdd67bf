"""The shared core: one stream helper ending each span exactly once, the record, the estimates."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import openai
import pytest

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import fault_counts
from otel_downstream.agent.genai.call import GenAICall
from otel_downstream.agent.genai.mistral_client import instrument_mistral
from otel_downstream.agent.genai.openai_client import instrument_openai
from otel_downstream.agent.genai.record import (
    GenAIRecord,
    record_attributes,
    span_name,
    usage_counts,
)
from otel_downstream.agent.genai.token_estimate import input_tokens, text_chars, tokens_from_chars
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI

from .conftest import Spans
from .sdk import Mistral

MESSAGES = [{"role": "user", "content": "hello"}]


async def open_stream(api: FakeLLMAPI, spans: Spans, sdk: str, mode: str) -> Any:
    """A freshly opened stream from the real SDK (not yet iterated)."""
    if sdk == "openai":
        if mode == "async":
            aclient = instrument_openai(
                openai.AsyncOpenAI(base_url=api.openai_base_url, api_key="k", max_retries=0),
                tracer_provider=spans.provider,
            )
            return await aclient.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        client = instrument_openai(
            openai.OpenAI(base_url=api.openai_base_url, api_key="k", max_retries=0),
            tracer_provider=spans.provider,
        )
        return client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    mistral = instrument_mistral(
        Mistral(api_key="k", server_url=api.mistral_server_url), tracer_provider=spans.provider
    )
    if mode == "async":
        return await mistral.chat.stream_async(model="m", messages=MESSAGES)
    return mistral.chat.stream(model="m", messages=MESSAGES)


async def first(stream: Any) -> None:
    if hasattr(stream, "__anext__"):
        await stream.__anext__()
    else:
        next(iter(stream))


async def consume(stream: Any) -> None:
    if hasattr(stream, "__aiter__"):
        async for _ in stream:
            pass
    else:
        for _ in stream:
            pass


async def close(stream: Any) -> None:
    # mistralai 1.x streams have no close(); their response does
    closer = getattr(stream, "close", None)
    if closer is None:  # mistralai 1.x: the response closes; 1.0.x: the async generator does
        owner = getattr(stream, "response", stream)
        closer = owner.aclose if hasattr(stream, "__aiter__") else owner.close
    result = closer()
    if isinstance(result, Awaitable):
        await result


async def exhaust(stream: Any) -> None:
    await consume(stream)


async def break_then_close(stream: Any) -> None:
    await first(stream)
    await close(stream)
    await close(stream)  # a second close must not end a second span


async def context_exit(stream: Any) -> None:
    if not hasattr(stream, "__enter__") and not hasattr(stream, "__aenter__"):
        pytest.skip("this SDK's streams are bare generators, without a context manager")
    if hasattr(stream, "__aenter__"):
        async with stream:
            await first(stream)
    else:
        with stream:
            await first(stream)


async def exhaust_then_close(stream: Any) -> None:
    await consume(stream)
    await close(stream)


ENDINGS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "exhaust": exhaust,
    "break_then_close": break_then_close,
    "context_exit": context_exit,
    "exhaust_then_close": exhaust_then_close,
}


@pytest.mark.parametrize("sdk", ["openai", "mistral"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("ending", sorted(ENDINGS))
async def test_every_ending_finalises_exactly_once(
    api: FakeLLMAPI, spans: Spans, sdk: str, mode: str, ending: str
) -> None:
    stream = await open_stream(api, spans, sdk, mode)
    assert spans.finished() == ()  # the span lives as long as the stream
    await ENDINGS[ending](stream)
    span = spans.one()
    expected = 12 if ending.startswith("exhaust") else 1
    assert span.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == expected
    assert span.attributes[attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK] >= 0
    assert attr.ERROR_TYPE not in span.attributes
    gc.collect()
    assert len(spans.finished()) == 1


@pytest.mark.parametrize("sdk", ["openai", "mistral"])
async def test_abandoned_stream_finalised_on_garbage_collection(
    api: FakeLLMAPI, spans: Spans, sdk: str
) -> None:
    stream = await open_stream(api, spans, sdk, "sync")
    await first(stream)
    del stream
    gc.collect()
    assert spans.one().attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 1


@pytest.mark.parametrize("sdk", ["openai", "mistral"])
async def test_unread_stream_finalised_on_garbage_collection(
    api: FakeLLMAPI, spans: Spans, sdk: str
) -> None:
    stream = await open_stream(api, spans, sdk, "sync")
    if not hasattr(stream, "response"):
        pytest.skip("this SDK's streams are bare generators, without a response")
    stream.response.close()  # release the connection; the stream object is then dropped unread
    assert len(spans.finished()) == 1
    del stream
    gc.collect()
    span = spans.one()
    assert attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK not in span.attributes
    assert attr.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes  # unknown, not a guessed 0
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in span.attributes


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_bare_generator_stream_dropped_unread_is_finalised(
    api: FakeLLMAPI, spans: Spans, mode: str
) -> None:
    stream = await open_stream(api, spans, "mistral", mode)
    if hasattr(stream, "response"):
        pytest.skip("this SDK's streams are stream objects (covered by the tests above)")
    assert spans.finished() == ()
    del stream  # never iterated: the generator's own code never runs
    gc.collect()
    span = spans.one()
    assert attr.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes  # unknown, not a guessed 0


def test_record_attributes_leave_out_unknowns() -> None:
    record = GenAIRecord(operation="chat", provider="openai", request_model="gpt-4o")
    assert record_attributes(record) == {
        attr.GEN_AI_OPERATION_NAME: "chat",
        attr.GEN_AI_PROVIDER_NAME: "openai",
        attr.GEN_AI_REQUEST_MODEL: "gpt-4o",
        attr.GEN_AI_REQUEST_STREAM: False,
    }
    full = GenAIRecord(
        operation="chat",
        provider="mistral_ai",
        output_tokens=0,
        finish_reasons=("stop", "length"),
        tokens_estimated=True,
        error_type="SDKError",
    )
    a = record_attributes(full)
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 0  # zero is a value, not an absence
    assert a[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "length")
    assert a[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert a[attr.ERROR_TYPE] == "SDKError"
    assert span_name("chat", None) == "chat"
    assert span_name("embeddings", "mistral-embed") == "embeddings mistral-embed"


def test_usage_counts_same_from_sdk_models_dicts_and_extras() -> None:
    """The plain-attribute fast path (SDK usage models) reads what the generic one reads."""
    from openai.types import CompletionUsage

    try:
        from openai.types.responses import ResponseUsage
    except ImportError:  # openai before the Responses API (1.40 in the SDK matrix)
        ResponseUsage = None

    chat = {
        "prompt_tokens": 21,
        "completion_tokens": 12,
        "total_tokens": 33,
        "prompt_tokens_details": {"cached_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    assert usage_counts(CompletionUsage.model_validate(chat)) == (21, 12, 5, 3)
    assert usage_counts(chat) == (21, 12, 5, 3)
    responses = {
        "input_tokens": 7,
        "output_tokens": 4,
        "total_tokens": 11,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 1},
    }
    if ResponseUsage is not None:
        assert usage_counts(ResponseUsage.model_validate(responses)) == (7, 4, 2, 1)
    assert usage_counts(responses) == (7, 4, 2, 1)
    # a chat-shaped model carrying Responses-style names as extra fields: the generic path
    extras = CompletionUsage.model_validate(
        {"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1, "input_tokens": 9}
    )
    assert usage_counts(extras) == (9, 2, None, None)
    flag = CompletionUsage.model_construct(prompt_tokens=1, completion_tokens=True, total_tokens=2)
    assert usage_counts(flag) == (1, None, None, None)  # a bool is not a count
    assert usage_counts(None) == (None, None, None, None)


def test_token_estimates() -> None:
    assert tokens_from_chars(0) == 0
    assert tokens_from_chars(1) == 1
    assert tokens_from_chars(8) == 2
    assert tokens_from_chars(9) == 3
    parts = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert text_chars(parts) == 4
    chat = {
        "messages": [{"role": "system", "content": "a" * 8}, {"role": "user", "content": parts}]
    }
    assert input_tokens(chat) == 2 + 1 + 2 * 3 + 3
    assert input_tokens({"input": "abcdefgh", "instructions": "abcd"}) == 3
    assert input_tokens({"inputs": ["abcd", "abcdefgh"]}) == 3
    assert input_tokens({"prompt": "def f(", "suffix": "return"}) == 2 + 2
    assert input_tokens({"model": "m"}) is None


@pytest.mark.parametrize("sdk", ["openai", "mistral"])
async def test_unsampled_calls_are_not_observed(api: FakeLLMAPI, sdk: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    class Unsampled:
        provider = TracerProvider(sampler=ALWAYS_OFF)

    stream = await open_stream(api, Unsampled, sdk, "sync")  # type: ignore[arg-type]
    assert not hasattr(stream, "_otel_downstream_call")  # no per-chunk work for a dropped span
    await consume(stream)


def test_streamed_upload_size_comes_from_its_header(spans: Spans) -> None:
    """An upload streamed by httpx is never read into memory: its Content-Length is the size."""
    request = httpx.Request(
        "POST",
        "http://127.0.0.1:9/v1/chat/completions",
        content=iter([b"{}"]),
        headers={"content-length": "2"},
    )
    call = GenAICall(
        spans.provider.get_tracer("test"),
        component="openai",
        operation="chat",
        provider="openai",
        request_model=None,
        stream=False,
        server=(None, None),
        body=None,
    )
    call.observe_http(httpx.Response(200, request=request))
    call.finish()
    a = spans.one().attributes
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == 2
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1" and a[attr.SERVER_PORT] == 9
    assert fault_counts() == {}
