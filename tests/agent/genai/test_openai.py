"""The OpenAI wrapper against the real openai SDK over HTTP to the fake API on 127.0.0.1."""

from __future__ import annotations

import gc
import importlib.metadata
import json
from typing import Any

import openai
import pytest
from openai._base_client import AsyncAPIClient, SyncAPIClient
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from opentelemetry.trace import SpanKind, StatusCode

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import fault_counts
from otel_downstream.agent.genai.openai_client import (
    OpenAIInstrumentor,
    instrument_openai,
    uninstrument_openai,
)
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI

from .conftest import Spans
from .sdk import http as sdk_http

PROMPT = "Tell me about the carbon footprint of tea."
MESSAGES = [{"role": "user", "content": PROMPT}]


def sync_client(api: FakeLLMAPI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.openai_base_url, api_key="sk-fake", max_retries=0, **kwargs)


def async_client(api: FakeLLMAPI, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=api.openai_base_url, api_key="sk-fake", max_retries=0, **kwargs
    )


async def chat(api: FakeLLMAPI, spans: Spans, mode: str, stream: bool, **extra: Any) -> Any:
    """One chat call through an instrumented client; returns (result, chunks)."""
    if mode == "async":
        client = instrument_openai(async_client(api), tracer_provider=spans.provider)
        result = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=stream, **extra
        )
        chunks = [c async for c in result] if stream else None
        await client.close()
    else:
        client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=stream, **extra
        )
        chunks = list(result) if stream else None
        client.close()
    return result, chunks


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_span_and_unchanged_result(
    api: FakeLLMAPI, spans: Spans, mode: str, stream: bool
) -> None:
    result, chunks = await chat(api, spans, mode, stream)
    if stream:
        expected = openai.AsyncStream if mode == "async" else openai.Stream
        assert isinstance(result, expected)
        assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "tok " * 12
    else:
        assert type(result) is ChatCompletion
        assert result.usage.completion_tokens == 12
    span = spans.one()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[attr.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[attr.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[attr.GEN_AI_REQUEST_STREAM] is stream
    assert a[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1"
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    seen = api.last()
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == seen.request_bytes
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == seen.response_bytes
    if stream:  # no include_usage: estimated, and we never add the option ourselves
        assert a[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
        assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 3 + 3 + -(-len(PROMPT) // 4)
        assert a[attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK] >= 0
        assert span.end_time - span.start_time >= a[attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK]
    else:
        assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in a
        assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
        assert a[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 5
        assert a[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    for value in a.values():  # never the prompt or the completion
        assert PROMPT not in str(value) and "tok tok" not in str(value)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_with_include_usage_is_exact(api: FakeLLMAPI, spans: Spans, mode: str) -> None:
    _, chunks = await chat(api, spans, mode, True, stream_options={"include_usage": True})
    assert chunks[-1].usage is not None  # the caller asked for it and got it
    a = spans.one().attributes
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in a


def test_stream_request_body_not_changed(api: FakeLLMAPI, spans: Spans) -> None:
    plain = sync_client(api)
    plain.chat.completions.create(model="m", messages=MESSAGES, stream=True).close()
    bare = api.last().request_bytes
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    client.chat.completions.create(model="m", messages=MESSAGES, stream=True).close()
    assert api.last().request_bytes == bare  # no stream_options injected


def needs(owner: object, name: str) -> None:
    if not hasattr(owner, name):
        pytest.skip(f"this openai version has no {name}")


def test_stream_helper_and_parse(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    needs(client.chat.completions, "stream")
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "tok " * 12
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)
    assert parsed.choices[0].message.parsed is None
    first, second = spans.finished()
    assert first.attributes[attr.GEN_AI_REQUEST_STREAM] is True
    assert first.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert second.attributes[attr.GEN_AI_REQUEST_STREAM] is False
    assert second.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21


def test_stream_helper_closed_early_ends_span(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    needs(client.chat.completions, "stream")
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        for _ in stream:
            break
        assert spans.finished() == ()
    span = spans.one()
    assert span.attributes[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert span.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] < 12


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_responses_api(api: FakeLLMAPI, spans: Spans, mode: str, stream: bool) -> None:
    needs(openai.OpenAI, "responses")
    if mode == "async":
        client: Any = instrument_openai(async_client(api), tracer_provider=spans.provider)
        if stream:
            async with client.responses.stream(model="gpt-5", input=PROMPT) as events:
                response = await events.get_final_response()
        else:
            response = await client.responses.create(model="gpt-5", input=PROMPT)
    else:
        client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
        if stream:
            with client.responses.stream(model="gpt-5", input=PROMPT) as events:
                response = events.get_final_response()
        else:
            response = client.responses.create(model="gpt-5", input=PROMPT)
    assert response.output_text == "tok " * 12
    a = spans.one().attributes
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 5
    assert a[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)


def test_responses_compact(api: FakeLLMAPI, spans: Spans) -> None:
    """``responses.compact`` runs a model over the conversation: a call with usage like any other."""
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    needs(client, "responses")
    needs(client.responses, "compact")
    compacted = client.responses.compact(model="gpt-5", input=PROMPT)
    assert type(compacted).__name__ == "CompactedResponse"
    a = spans.one().attributes
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == compacted.usage.input_tokens > 0
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == compacted.usage.output_tokens


def test_embeddings_and_legacy_completions(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    emb = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    comp = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once")
    assert comp.choices[0].text == "tok " * 12
    streamed = list(
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True)
    )
    assert streamed[0].choices[0].text == "tok "
    e, c, s = spans.finished()
    assert e.name == "embeddings text-embedding-3-small"
    assert e.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert attr.GEN_AI_USAGE_OUTPUT_TOKENS not in e.attributes
    assert c.attributes[attr.GEN_AI_OPERATION_NAME] == "text_completion"
    assert c.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert s.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12  # 48 chars / 4
    assert s.attributes[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True


async def test_raw_and_streaming_responses(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_fake"
    assert isinstance(raw.parse(), ChatCompletion)
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, stream=True
    ) as response:
        chunks = list(response.parse())
    assert len(chunks) == 13
    aclient = instrument_openai(async_client(api), tracer_provider=spans.provider)
    async with aclient.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES
    ) as aresponse:
        parsed = await aresponse.parse()
    assert isinstance(parsed, ChatCompletion)
    await aclient.close()
    first, second, third = spans.finished()
    assert first.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in first.attributes
    assert second.attributes[attr.GEN_AI_REQUEST_STREAM] is True
    assert second.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert third.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("error-401", openai.AuthenticationError),
        ("error-429", openai.RateLimitError),
        ("error-500", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_status_errors_propagate(
    api: FakeLLMAPI, spans: Spans, scenario: str, error: type[Exception], mode: str
) -> None:
    headers = {"x-fake-scenario": scenario}
    with pytest.raises(error) as caught:
        await chat(api, spans, mode, False, extra_headers=headers)
    assert json.loads(caught.value.response.text)["error"]["type"]  # the provider's error JSON
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == error.__name__
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == api.last().response_bytes


def test_timeout_and_connection_errors(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api, timeout=0.05), tracer_provider=spans.provider)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-fake-latency-ms": "300"}
        )
    dead = instrument_openai(
        openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0),
        tracer_provider=spans.provider,
    )
    with pytest.raises(openai.APIConnectionError) as caught:
        dead.chat.completions.create(model="m", messages=MESSAGES)
    assert type(caught.value) is openai.APIConnectionError
    timeout_span, conn_span = spans.finished()
    assert timeout_span.attributes[attr.ERROR_TYPE] == "APITimeoutError"
    assert conn_span.attributes[attr.ERROR_TYPE] == "APIConnectionError"


def test_broken_stream_errors_reach_caller(api: FakeLLMAPI, spans: Spans) -> None:
    """Malformed and truncated streams raise exactly what the bare SDK raises."""

    def failure(client: openai.OpenAI, scenario: str) -> BaseException:
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, extra_headers={"x-fake-scenario": scenario}
        )
        with pytest.raises(Exception) as caught:
            list(stream)
        return caught.value

    traced = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    for scenario in ("malformed-sse", "truncated"):
        bare_error = failure(sync_client(api), scenario)
        traced_error = failure(traced, scenario)
        assert type(traced_error) is type(bare_error)
    malformed, truncated = spans.finished()
    assert malformed.attributes[attr.ERROR_TYPE] == "JSONDecodeError"
    assert truncated.attributes[attr.ERROR_TYPE] in ("APIConnectionError", "RemoteProtocolError")
    # tokens received before the cut still cost energy: estimated from what arrived
    assert 0 < truncated.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] < 12


def test_stream_ends_once_on_break_close_and_gc(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    assert spans.finished() == ()
    stream.close()
    stream.close()
    assert len(spans.finished()) == 1
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    assert len(spans.finished()) == 2
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    ends = spans.finished()
    assert len(ends) == 3
    assert all(s.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 1 for s in ends)


def test_instrument_twice_global_and_client_no_double_count(api: FakeLLMAPI, spans: Spans) -> None:
    original = SyncAPIClient.request
    original_async = AsyncAPIClient.request
    instrument_openai(tracer_provider=spans.provider)
    instrument_openai(tracer_provider=spans.provider)
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    assert instrument_openai(client, tracer_provider=spans.provider) is client
    assert type(client) is openai.OpenAI
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 1
    uninstrument_openai()
    uninstrument_openai(client)
    assert SyncAPIClient.request is original
    assert AsyncAPIClient.request is original_async
    assert "request" not in vars(client)
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 1


def test_global_instrumentation_covers_new_clients(api: FakeLLMAPI, spans: Spans) -> None:
    instrument_openai(tracer_provider=spans.provider)
    sync_client(api).chat.completions.create(model="m", messages=MESSAGES)
    sync_client(api).models.list()  # not a GenAI operation: no span
    assert spans.one().name == "chat m"


def test_azure_and_provider_override(
    api: FakeLLMAPI, spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=api.azure_endpoint, api_key="k", api_version="2024-10-21", max_retries=0
    )
    instrument_openai(azure, tracer_provider=spans.provider)
    azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
    named = instrument_openai(
        sync_client(api), tracer_provider=spans.provider, provider_name="groq"
    )
    named.chat.completions.create(model="m", messages=MESSAGES)
    monkeypatch.setenv("OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME", "deepseek")
    env = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    env.chat.completions.create(model="m", messages=MESSAGES)
    providers = [s.attributes[attr.GEN_AI_PROVIDER_NAME] for s in spans.finished()]
    assert providers == ["azure.ai.openai", "groq", "deepseek"]
    assert api.received[-3].path.startswith("/openai/deployments/my-deployment/chat/completions")


async def test_async_azure(api: FakeLLMAPI, spans: Spans) -> None:
    azure = openai.AsyncAzureOpenAI(
        azure_endpoint=api.azure_endpoint, api_key="k", api_version="2024-10-21", max_retries=0
    )
    instrument_openai(azure, tracer_provider=spans.provider)
    stream = await azure.chat.completions.create(model="dep", messages=MESSAGES, stream=True)
    async with stream:
        chunks = [c async for c in stream]
    await azure.close()
    assert len(chunks) == 13
    span = spans.one()
    assert span.attributes[attr.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert span.attributes[attr.GEN_AI_REQUEST_MODEL] == "dep"


class _BrokenTracerProvider:
    """A tracer provider whose tracer fails: faults inside our code must not reach the caller."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer is broken")


def test_internal_fault_is_swallowed_counted_and_logged_once(
    api: FakeLLMAPI, spans: Spans, caplog: pytest.LogCaptureFixture
) -> None:
    # the spans fixture also resets the fault log, so "first of its type" holds here
    client = instrument_openai(sync_client(api), tracer_provider=_BrokenTracerProvider())  # type: ignore[arg-type]
    before = fault_counts().get("openai", 0)
    with caplog.at_level("WARNING", logger="otel_downstream"):
        result = client.chat.completions.create(model="m", messages=MESSAGES)
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        chunks = list(stream)
    assert isinstance(result, ChatCompletion)
    assert isinstance(stream, openai.Stream) and len(chunks) == 13
    assert fault_counts()["openai"] == before + 2
    assert len([r for r in caplog.records if "internal error in openai" in r.getMessage()]) == 1


def test_public_api_names() -> None:
    from otel_downstream import agent

    assert agent.instrument_openai is instrument_openai
    assert agent.uninstrument_openai is uninstrument_openai
    from otel_downstream.agent.genai.mistral_client import instrument_mistral, uninstrument_mistral

    assert agent.instrument_mistral is instrument_mistral
    assert agent.uninstrument_mistral is uninstrument_mistral


def test_entry_point_loads_and_instruments(api: FakeLLMAPI, spans: Spans) -> None:
    points = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    loaded = {p.name: p.load() for p in points if p.name.startswith("downstream_")}
    assert loaded["downstream_openai"] is OpenAIInstrumentor
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        sync_client(api).chat.completions.create(model="m", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    assert spans.one().attributes[attr.GEN_AI_PROVIDER_NAME] == "openai"


def test_with_options_copy_stays_instrumented(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    faster = client.with_options(timeout=5.0)
    assert type(faster) is openai.OpenAI
    faster.chat.completions.create(model="m", messages=MESSAGES)
    client.copy(max_retries=1).chat.completions.create(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 2
    uninstrument_openai(client)
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 2


def test_span_is_current_during_the_http_request(api: FakeLLMAPI, spans: Spans) -> None:
    from opentelemetry import trace

    seen: list[Any] = []
    http = sdk_http.Client(
        event_hooks={"request": [lambda r: seen.append(trace.get_current_span())]}
    )
    client = instrument_openai(sync_client(api, http_client=http), tracer_provider=spans.provider)
    client.chat.completions.create(model="m", messages=MESSAGES)
    span = spans.one()
    assert seen[0].get_span_context().span_id == span.context.span_id


def test_defers_to_another_genai_span(api: FakeLLMAPI, spans: Spans) -> None:
    """Inside another instrumentation's span of the same call we add no second span but fill in
    what it lacks (tokens, bytes); inside an agent span or any ordinary parent we do trace."""
    from opentelemetry.trace import SpanKind as Kind

    tracer = spans.provider.get_tracer("other-instrumentation")
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    same_call = {attr.GEN_AI_OPERATION_NAME: "chat", attr.GEN_AI_REQUEST_MODEL: "theirs"}
    with tracer.start_as_current_span("chat m", kind=Kind.CLIENT, attributes=same_call):
        result = client.chat.completions.create(model="m", messages=MESSAGES)
    agent = {attr.GEN_AI_OPERATION_NAME: "invoke_agent"}
    with tracer.start_as_current_span("invoke_agent shop", attributes=agent):
        client.chat.completions.create(model="m", messages=MESSAGES)
    with tracer.start_as_current_span("handler"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    finished = spans.finished()
    assert sorted(s.name for s in finished) == [
        "chat m",
        "chat m",
        "chat m",
        "handler",
        "invoke_agent shop",
    ]
    foreign = finished[0].attributes or {}
    assert finished[0].instrumentation_scope.name == "other-instrumentation"
    assert foreign[attr.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert foreign[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert foreign[attr.HTTP_RESPONSE_BODY_SIZE] == api.last().response_bytes
    assert foreign[attr.GEN_AI_REQUEST_MODEL] == "theirs"  # what it had is never overwritten


def test_a_framework_span_around_several_calls_is_a_parent(api: FakeLLMAPI, spans: Spans) -> None:
    """A workflow span that only carries ``gen_ai.system`` (CrewAI-style, or a user's batch) is
    not any one call: each call inside it gets its own span, under its own provider."""
    tracer = spans.provider.get_tracer("crewai-style")
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    with tracer.start_as_current_span("crewai.workflow", attributes={attr.GEN_AI_SYSTEM: "crewai"}):
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    ours = [s for s in spans.finished() if s.name == "chat gpt-4o-mini"]
    assert len(ours) == 3
    assert {(s.attributes or {})[attr.GEN_AI_PROVIDER_NAME] for s in ours} == {"openai"}


def test_foreign_tokens_are_kept_and_deprecated_markers_defer(
    api: FakeLLMAPI, spans: Spans
) -> None:
    """A span marked the pre-1.37 way (``gen_ai.system``) is a model call's span for the exporter,
    so it is one for us too; token counts it already has (under either name) are not mixed with
    ours."""
    from opentelemetry.trace import SpanKind as Kind

    tracer = spans.provider.get_tracer("openllmetry-style")
    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    marked = {
        attr.GEN_AI_SYSTEM: "openai",
        attr.GEN_AI_USAGE_PROMPT_TOKENS: 1000,
        attr.GEN_AI_USAGE_COMPLETION_TOKENS: 7,
    }
    with tracer.start_as_current_span("openai.chat", kind=Kind.CLIENT, attributes=marked):
        client.chat.completions.create(model="m", messages=MESSAGES)
        # a stream ending after the other span has: nothing may be written to an ended span
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    list(stream)
    span = spans.one()
    attributes = span.attributes or {}
    assert attributes[attr.GEN_AI_USAGE_PROMPT_TOKENS] == 1000
    assert attributes[attr.HTTP_REQUEST_BODY_SIZE] > 0  # what it lacked is added
    assert attr.GEN_AI_USAGE_INPUT_TOKENS not in attributes
    assert attr.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in attributes
    assert fault_counts() == {}


@pytest.mark.parametrize("form", ["read to the end", "with block left early"])
def test_openai_v2_stream_without_usage_gets_our_estimate(
    api: FakeLLMAPI, spans: Spans, form: str
) -> None:
    """With opentelemetry-instrumentation-openai-v2 also active, a stream without usage is counted
    once, on its span, with our estimated tokens (it records none for such streams). Leaving a
    ``with`` block ends its span without closing the stream: we annotate before that end."""
    v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    from otel_downstream.exporters.accounting.span_inputs import classify, gen_ai_input

    official = v2.OpenAIInstrumentor()
    official.instrument(tracer_provider=spans.provider)
    try:
        instrument_openai(tracer_provider=spans.provider)
        client = sync_client(api)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        if form == "read to the end":
            chunks = list(stream)
        else:
            chunks = []
            with stream:
                for chunk in stream:
                    chunks.append(chunk)
                    if len(chunks) == 3:
                        break
    finally:
        official.uninstrument()
    span = spans.one()
    assert span.instrumentation_scope.name != "otel_downstream.agent.genai.openai_client"
    attributes = span.attributes or {}
    assert attributes[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] >= len(chunks) - 1 > 0
    assert fault_counts() == {}
    assert classify(attributes, span.name, str(span.kind)) == "gen_ai"
    assert gen_ai_input(attributes).output_tokens == attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS]


def test_suppressed_instrumentation_is_not_traced(api: FakeLLMAPI, spans: Spans) -> None:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    client = instrument_openai(sync_client(api), tracer_provider=spans.provider)
    with suppress_instrumentation():
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert spans.finished() == ()
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 1


def test_zero_code_opentelemetry_instrument(api: FakeLLMAPI, tmp_path: Any) -> None:
    """``opentelemetry-instrument python app.py`` loads our entry points and traces the calls."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    app = tmp_path / "app.py"
    app.write_text(
        "import json, sys, openai\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "client = openai.OpenAI(base_url=sys.argv[1], api_key='k', max_retries=0)\n"
        "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'x'}])\n"
        "print(json.dumps([(s.name, dict(s.attributes)) for s in exporter.get_finished_spans()]))\n"
    )
    command = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",  # the contrib one, if it loads at all
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    done = subprocess.run(
        [str(command), sys.executable, str(app), api.openai_base_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    assert [name for name, _ in spans] == ["chat gpt-4o-mini"]
    assert spans[0][1][attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_sdk_exception_is_the_same_object(api: FakeLLMAPI, spans: Spans) -> None:
    """The exception the SDK raises reaches the caller as that very object (not a copy or wrapper)."""
    sentinel = openai.APIConnectionError(request=sdk_http.Request("POST", api.openai_base_url))

    def fail(request: Any) -> None:
        raise sentinel

    def raised(client: openai.OpenAI) -> BaseException:
        with pytest.raises(openai.APIConnectionError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)
        return caught.value

    hooks = {"request": [fail]}
    bare = raised(sync_client(api, http_client=sdk_http.Client(event_hooks=hooks)))
    traced = instrument_openai(
        sync_client(api, http_client=sdk_http.Client(event_hooks=hooks)),
        tracer_provider=spans.provider,
    )
    assert (raised(traced) is sentinel) == (bare is sentinel)
    assert spans.one().attributes[attr.ERROR_TYPE] == "APIConnectionError"
