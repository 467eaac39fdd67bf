"""The Mistral wrapper against the real mistralai SDK over HTTP to the fake API on 127.0.0.1."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.genai.mistral_client import (
    MistralInstrumentor,
    instrument_mistral,
    uninstrument_mistral,
)
from otel_downstream.agent.genai.patch import ORIGINAL
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI

from .conftest import Spans
from .sdk import (
    MODERN_SDK,
    BaseSDK,
    Chat,
    EventStream,
    EventStreamAsync,
    HTTPValidationError,
    Mistral,
    SDKError,
    models,
)

PROMPT = "Which grid is greener, France or Poland?"
MESSAGES = [{"role": "user", "content": PROMPT}]


def client_for(api: FakeLLMAPI, scenario: str = "ok") -> Mistral:
    # the scenario rides in the URL: mistralai 1.0 cannot add request headers
    return Mistral(api_key="fake", server_url=api.mistral_url(scenario))


async def chat(client: Mistral, mode: str, stream: bool, **extra: Any) -> tuple[Any, Any]:
    model = "mistral-small-latest"
    if mode == "async":
        if stream:
            result = await client.chat.stream_async(model=model, messages=MESSAGES, **extra)
            return result, [event async for event in result]
        return await client.chat.complete_async(model=model, messages=MESSAGES, **extra), None
    if stream:
        result = client.chat.stream(model=model, messages=MESSAGES, **extra)
        return result, list(result)
    return client.chat.complete(model=model, messages=MESSAGES, **extra), None


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_span_and_unchanged_result(
    api: FakeLLMAPI, spans: Spans, mode: str, stream: bool
) -> None:
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    result, events = await chat(client, mode, stream)
    if stream:
        assert isinstance(result, EventStreamAsync if mode == "async" else EventStream)
        assert all(isinstance(e, models.CompletionEvent) for e in events)
        text = "".join(e.data.choices[0].delta.content or "" for e in events)
        assert text == "tok " * 12
        assert events[-1].data.usage.completion_tokens == 12
    else:
        assert type(result) is models.ChatCompletionResponse
    span = spans.one()
    a = span.attributes
    assert span.name == "chat mistral-small-latest"
    assert span.kind is SpanKind.CLIENT
    assert a[attr.GEN_AI_PROVIDER_NAME] == "mistral_ai"
    assert a[attr.GEN_AI_REQUEST_STREAM] is stream
    assert a[attr.GEN_AI_RESPONSE_MODEL] == "mistral-small-latest"
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in a  # Mistral reports usage on the last chunk
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1"
    assert a[attr.SERVER_PORT] == api.port
    seen = api.last()
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == seen.request_bytes
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == seen.response_bytes
    assert (attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK in a) is stream
    for value in a.values():
        assert PROMPT not in str(value)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_without_usage_is_estimated(api: FakeLLMAPI, spans: Spans, mode: str) -> None:
    client = instrument_mistral(client_for(api, "no-usage"), tracer_provider=spans.provider)
    await chat(client, mode, True)
    a = spans.one().attributes
    assert a[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 3 + 3 + -(-len(PROMPT) // 4)


async def test_fim_agents_embeddings(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    fim = client.fim.complete(model="codestral-latest", prompt="def area(r):", suffix="")
    assert isinstance(fim, models.FIMCompletionResponse)
    streamed = list(client.fim.stream(model="codestral-latest", prompt="def f():"))
    assert len(streamed) == 13
    agent = await client.agents.complete_async(agent_id="ag_123", messages=MESSAGES)
    assert isinstance(agent, models.ChatCompletionResponse)
    emb = client.embeddings.create(model="mistral-embed", inputs=["a", "b", "c"])
    assert len(emb.data) == 3
    f, fs, ag, e = spans.finished()
    assert f.name == "text_completion codestral-latest"
    assert fs.attributes[attr.GEN_AI_REQUEST_STREAM] is True
    assert fs.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert ag.name == "chat"  # agents are addressed by id, there is no request model
    assert attr.GEN_AI_REQUEST_MODEL not in ag.attributes
    assert ag.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert e.name == "embeddings mistral-embed"
    assert e.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("error-401", SDKError),
        ("error-422", HTTPValidationError),
        ("error-429", SDKError),
        ("error-500", SDKError),
    ],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_errors_propagate(
    api: FakeLLMAPI, spans: Spans, scenario: str, error: type[Exception], mode: str, stream: bool
) -> None:
    with pytest.raises(Exception) as bare:
        await chat(client_for(api, scenario), mode, stream)
    client = instrument_mistral(client_for(api, scenario), tracer_provider=spans.provider)
    with pytest.raises(Exception) as caught:
        await chat(client, mode, stream)
    assert type(caught.value) is type(bare.value)  # whatever the SDK raises, we raise
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == type(bare.value).__qualname__
    if MODERN_SDK:  # mistralai >= 1.x with EventStream; 1.0.x fails differently on streams
        assert type(caught.value) is error
        assert caught.value.raw_response.status_code == int(scenario[-3:])
        assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == api.last().response_bytes


def test_stream_early_break_and_truncation(api: FakeLLMAPI, spans: Spans) -> None:
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    stream = client.chat.stream(model="m", messages=MESSAGES)
    for _ in stream:
        break
    stream.close() if hasattr(stream, "close") else stream.response.close()
    cut = instrument_mistral(client_for(api, "truncated"), tracer_provider=spans.provider)
    with pytest.raises(Exception) as caught:
        list(cut.chat.stream(model="m", messages=MESSAGES))
    early, truncated = spans.finished()
    assert early.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert early.attributes[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert truncated.attributes[attr.ERROR_TYPE] == type(caught.value).__qualname__


def test_instrument_twice_and_uninstrument_identity(api: FakeLLMAPI, spans: Spans) -> None:
    originals = (Chat.complete, Chat.stream_async, BaseSDK.do_request)
    instrument_mistral(tracer_provider=spans.provider)
    instrument_mistral(tracer_provider=spans.provider)
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    assert type(client) is Mistral
    conversations = _has("beta.conversations")
    if conversations:  # patched, and given back below
        assert hasattr(type(client.beta.conversations).start_stream, ORIGINAL)
    client.chat.complete(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 1
    uninstrument_mistral()
    uninstrument_mistral(client)
    assert (Chat.complete, Chat.stream_async, BaseSDK.do_request) == originals
    assert "complete" not in vars(client.chat)
    if conversations:
        assert not hasattr(type(client.beta.conversations).start_stream, ORIGINAL)
    client.chat.complete(model="m", messages=MESSAGES)
    client_for(api).chat.complete(model="m", messages=MESSAGES)
    assert len(spans.finished()) == 1


def test_provider_override(api: FakeLLMAPI, spans: Spans, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME", "azure.ai.inference")
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    client.chat.complete(model="m", messages=MESSAGES)
    assert spans.one().attributes[attr.GEN_AI_PROVIDER_NAME] == "azure.ai.inference"


def test_entry_point_loads_and_instruments(api: FakeLLMAPI, spans: Spans) -> None:
    points = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    loaded = {p.name: p.load() for p in points if p.name == "downstream_mistral"}
    assert loaded["downstream_mistral"] is MistralInstrumentor
    instrumentor = MistralInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        client_for(api).chat.complete(model="m", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    assert spans.one().attributes[attr.GEN_AI_PROVIDER_NAME] == "mistral_ai"


class _BrokenTracerProvider:
    """A tracer provider whose tracer fails: faults inside our code must not reach the caller."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer is broken")


def test_internal_fault_is_swallowed_and_counted(api: FakeLLMAPI, spans: Spans) -> None:
    from otel_downstream.agent.faults import fault_counts

    client = instrument_mistral(client_for(api), tracer_provider=_BrokenTracerProvider())  # type: ignore[arg-type]
    before = fault_counts().get("mistral", 0)
    result = client.chat.complete(model="m", messages=MESSAGES)
    assert isinstance(result, models.ChatCompletionResponse)
    events = list(client.chat.stream(model="m", messages=MESSAGES))
    assert len(events) == 13
    assert fault_counts()["mistral"] == before + 2


def test_sdk_exception_is_the_same_object(api: FakeLLMAPI, spans: Spans) -> None:
    """The exception the SDK raises reaches the caller as that very object (not a copy or wrapper)."""
    from .sdk import http

    sentinel = RuntimeError("transport failed")

    def fail(request: Any) -> None:
        raise sentinel

    def raised(client: Mistral) -> BaseException:
        with pytest.raises(Exception) as caught:
            client.chat.complete(model="m", messages=MESSAGES)
        return caught.value

    def client_with_hook() -> Mistral:
        return Mistral(
            api_key="fake",
            server_url=api.mistral_server_url,
            client=http.Client(event_hooks={"request": [fail]}),
        )

    bare = raised(client_with_hook())
    traced = instrument_mistral(client_with_hook(), tracer_provider=spans.provider)
    assert (raised(traced) is sentinel) == (bare is sentinel)
    assert spans.one().attributes[attr.ERROR_TYPE] == type(bare).__qualname__


def _has(path: str) -> bool:
    """Whether this mistralai's client has the resource at ``path`` (e.g. ``beta.conversations``)."""
    owner: Any = Mistral(api_key="fake")
    try:
        for part in path.split("."):
            owner = getattr(owner, part)
    except AttributeError:
        return False
    return True


responses_api = pytest.mark.skipif(not _has("responses"), reason="no Responses API in this SDK")
conversations_api = pytest.mark.skipif(
    not _has("beta.conversations"), reason="no Conversations API in this SDK"
)


async def respond(client: Mistral, mode: str, stream: bool) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {"model": "mistral-small-latest", "input": PROMPT}
    if stream:
        kwargs["stream"] = True
    if mode == "async":
        result = await client.responses.create_async(**kwargs)
        return result, [event async for event in result] if stream else None
    result = client.responses.create(**kwargs)
    return result, list(result) if stream else None


@responses_api
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_responses_api(api: FakeLLMAPI, spans: Spans, mode: str, stream: bool) -> None:
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    result, events = await respond(client, mode, stream)
    if stream:
        assert isinstance(result, EventStreamAsync if mode == "async" else EventStream)
        assert events[-1].data.type == "response.completed"
    else:
        assert type(result) is models.CreateResponseResponse
    span = spans.one()
    a = span.attributes
    assert span.name == "chat mistral-small-latest"
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_REQUEST_STREAM] is stream
    assert a[attr.GEN_AI_RESPONSE_MODEL] == "mistral-small-latest"
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 5
    assert a[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert a[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in a
    seen = api.last()
    assert seen.path.endswith("/v1/responses")
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == seen.request_bytes
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == seen.response_bytes
    assert (attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK in a) is stream
    for value in a.values():
        assert PROMPT not in str(value)


async def converse(
    client: Mistral, verb: str, mode: str, stream: bool, **extra: Any
) -> tuple[Any, Any]:
    """``beta.conversations.<verb>[_stream][_async]`` with the arguments each verb needs."""
    kwargs: dict[str, Any] = {"inputs": PROMPT, **extra}
    if verb == "start":
        kwargs["model"] = "mistral-small-latest"
    else:
        kwargs["conversation_id"] = "conv_fake"
    if verb == "restart":
        kwargs["from_entry_id"] = "msg_fake"
    name = verb + ("_stream" if stream else "") + ("_async" if mode == "async" else "")
    method = getattr(client.beta.conversations, name)
    if mode == "async":
        result = await method(**kwargs)
        return result, [event async for event in result] if stream else None
    result = method(**kwargs)
    return result, list(result) if stream else None


@conversations_api
@pytest.mark.parametrize("verb", ["start", "append", "restart"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_conversations(
    api: FakeLLMAPI, spans: Spans, verb: str, mode: str, stream: bool
) -> None:
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    result, events = await converse(client, verb, mode, stream)
    if stream:
        assert isinstance(result, EventStreamAsync if mode == "async" else EventStream)
        assert events[-1].data.type == "conversation.response.done"
    else:
        assert type(result) is models.ConversationResponse
    span = spans.one()
    a = span.attributes
    # only start names a model; append and restart continue a conversation addressed by id
    assert span.name == ("chat mistral-small-latest" if verb == "start" else "chat")
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_REQUEST_STREAM] is stream
    expected_model = "mistral-small-latest" if verb == "start" else "fake-model"
    assert a[attr.GEN_AI_RESPONSE_MODEL] == expected_model  # read from the output entries
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attr.DOWNSTREAM_TOKENS_ESTIMATED not in a
    seen = api.last()
    tail = {"start": "/v1/conversations", "append": "/conv_fake", "restart": "/conv_fake/restart"}
    assert seen.path.endswith(tail[verb])
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == seen.request_bytes
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == seen.response_bytes
    assert (attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK in a) is stream
    for value in a.values():
        assert PROMPT not in str(value)


@conversations_api
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_conversation_stream_without_usage_is_estimated(
    api: FakeLLMAPI, spans: Spans, mode: str
) -> None:
    client = instrument_mistral(client_for(api, "no-usage"), tracer_provider=spans.provider)
    await converse(client, "start", mode, True)
    a = spans.one().attributes
    assert a[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12  # 12 deltas of "tok "
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == -(-len(PROMPT) // 4)


@conversations_api
@pytest.mark.parametrize("stream", [False, True])
async def test_conversation_errors_propagate(api: FakeLLMAPI, spans: Spans, stream: bool) -> None:
    with pytest.raises(Exception) as bare:
        await converse(client_for(api, "error-500"), "append", "sync", stream)
    client = instrument_mistral(client_for(api, "error-500"), tracer_provider=spans.provider)
    with pytest.raises(Exception) as caught:
        await converse(client, "append", "sync", stream)
    assert type(caught.value) is type(bare.value)
    span = spans.one()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == type(bare.value).__qualname__


@conversations_api
def test_conversation_function_call_deltas_are_estimated(api: FakeLLMAPI, spans: Spans) -> None:
    """A streamed function call counts its argument text when the stream reports no usage."""
    from otel_downstream.agent.genai.call import GenAICall

    call = GenAICall(
        spans.provider.get_tracer("test"),
        component="mistral",
        operation="chat",
        provider="mistral_ai",
        request_model="m",
        stream=True,
        server=(None, None),
        body=None,
    )
    for data in (
        {"type": "conversation.response.started", "conversation_id": "conv_fake"},
        {
            "type": "function.call.delta",
            "id": "fc_1",
            "name": "get_grid_intensity",
            "tool_call_id": "call_1",
            "arguments": '{"zone": "FR"}',  # 14 characters
            "model": "mistral-small-latest",
        },
    ):
        call.observe_chunk(models.ConversationEvents(event=data["type"], data=data))
    call.finish()
    a = spans.one().attributes
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert a[attr.DOWNSTREAM_TOKENS_ESTIMATED] is True


def test_per_call_server_url_is_reported(api: FakeLLMAPI, spans: Spans) -> None:
    """A call's own ``server_url=`` is where it goes, so it is the server the span names."""
    configured = Mistral(api_key="fake", server_url="http://mistral.invalid:9/mistral")
    client = instrument_mistral(configured, tracer_provider=spans.provider)
    client.chat.complete(model="m", messages=MESSAGES, server_url=api.mistral_server_url)
    a = spans.one().attributes
    assert a[attr.SERVER_ADDRESS] == "127.0.0.1"
    assert a[attr.SERVER_PORT] == api.port


def test_unreadable_server_url_is_a_counted_fault(api: FakeLLMAPI, spans: Spans) -> None:
    from otel_downstream.agent.faults import fault_counts

    bad = "http://127.0.0.1:99999/mistral"  # port out of range: urlsplit(...).port raises
    with pytest.raises(Exception) as bare:
        client_for(api).chat.complete(model="m", messages=MESSAGES, server_url=bad)
    client = instrument_mistral(client_for(api), tracer_provider=spans.provider)
    before = fault_counts().get("mistral", 0)
    with pytest.raises(Exception) as caught:
        client.chat.complete(model="m", messages=MESSAGES, server_url=bad)
    assert type(caught.value) is type(bare.value)
    assert fault_counts()["mistral"] == before + 1
    assert spans.one().attributes[attr.ERROR_TYPE] == type(bare.value).__qualname__


def _azure() -> Any:
    return pytest.importorskip("mistralai.azure.client", reason="mistralai bundles no Azure client")


async def azure_chat(client: Any, mode: str, stream: bool) -> Any:
    kwargs: dict[str, Any] = {"model": "mistral-small-latest", "messages": MESSAGES}
    if mode == "async":
        if stream:
            return [event async for event in await client.chat.stream_async(**kwargs)]
        return await client.chat.complete_async(**kwargs)
    if stream:
        return list(client.chat.stream(**kwargs))
    return client.chat.complete(**kwargs)


@pytest.mark.parametrize("scope", ["global", "client"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [False, True])
async def test_azure_client(
    api: FakeLLMAPI, spans: Spans, scope: str, mode: str, stream: bool
) -> None:
    azure = _azure()
    client = azure.MistralAzure(api_key="fake", server_url=api.mistral_server_url)
    if scope == "global":
        instrument_mistral(tracer_provider=spans.provider)
    else:
        assert instrument_mistral(client, tracer_provider=spans.provider) is client
    result = await azure_chat(client, mode, stream)
    if not stream:
        assert type(result) is azure.models.ChatCompletionResponse
    span = spans.one()
    a = span.attributes
    assert span.name == "chat mistral-small-latest"
    # the GenAI conventions name no provider for Mistral on Azure (azure.ai.inference is the Azure
    # AI Inference SDK's): keep mistral_ai, overridable with provider_name
    assert a[attr.GEN_AI_PROVIDER_NAME] == "mistral_ai"
    assert a[attr.GEN_AI_REQUEST_STREAM] is stream
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert a[attr.SERVER_PORT] == api.port
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == api.last().response_bytes


def test_azure_uninstrument_restores_originals(api: FakeLLMAPI, spans: Spans) -> None:
    azure = _azure()
    from mistralai.azure.client.basesdk import BaseSDK as AzureBaseSDK
    from mistralai.azure.client.chat import Chat as AzureChat

    originals = (AzureChat.complete, AzureChat.stream_async, AzureBaseSDK.do_request)
    instrument_mistral(tracer_provider=spans.provider)
    assert AzureChat.complete is not originals[0]
    uninstrument_mistral()
    assert (AzureChat.complete, AzureChat.stream_async, AzureBaseSDK.do_request) == originals
    azure.MistralAzure(api_key="fake", server_url=api.mistral_server_url).chat.complete(
        model="m", messages=MESSAGES
    )
    assert not spans.finished()
