"""Mistral SDK wrapper: one CLIENT span per chat, FIM, agents, embeddings, Responses or
Conversations call.

The Speakeasy-generated Mistral SDK has no single method that returns parsed results (each operation
parses its own response), so we wrap the operation methods themselves (``chat.complete``/``stream``
and their ``_async`` twins, ``fim``, ``agents``, ``embeddings.create``, ``responses.create``,
``beta.conversations.start``/``append``/``restart`` and their ``_stream``/``_async`` variants) and,
for byte counts, ``BaseSDK.do_request``/``do_request_async``, which every operation calls with the
HTTP exchange. Both the 3.x layout (``mistralai.client``) and the 1.x/2.x one (``mistralai``) are
supported, and so are the Azure and GCP clients 3.x bundles (``mistralai.azure.client``,
``mistralai.gcp.client``) when they import; where each keeps those methods is
:mod:`.mistral_targets`. Streams are the SDK's own ``EventStream`` objects, observed in place (see
:mod:`.stream`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.trace import Tracer, TracerProvider

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.environment import OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME, env_str
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.call import GenAICall
from otel_downstream.agent.genai.context import CURRENT_CALL, trace_context, traced
from otel_downstream.agent.genai.mistral_targets import HTTP_METHODS, base_sdks, owners, packages
from otel_downstream.agent.genai.patch import unwrap_attribute, wrap_attribute
from otel_downstream.agent.genai.stream import trace_iterator, trace_stream

__all__ = ["MistralInstrumentor", "instrument_mistral", "uninstrument_mistral"]

_COMPONENT = "mistral"


@dataclass(frozen=True, slots=True)
class _Settings:
    tracer: Tracer
    provider: str


_SERVERS: dict[str, tuple[str | None, int | None]] = {}
_MAX_SERVERS = 64  # distinct server URLs a process talks to; a bound, not a tuning knob


def _server(sdk: Any, kwargs: dict[str, Any]) -> tuple[str | None, int | None]:
    """(host, port) of the server the call goes to: its own ``server_url=`` when it passes one, else
    the client's server URL; parsed once per URL rather than on every call."""
    try:
        url = kwargs.get("server_url")
        if not isinstance(url, str) or not url:
            url, _ = sdk.sdk_configuration.get_server_details()
        server = _SERVERS.get(url)
        if server is None:
            parts = urlsplit(url)
            server = (parts.hostname, parts.port)
            if len(_SERVERS) >= _MAX_SERVERS:
                _SERVERS.clear()
            _SERVERS[url] = server
        return server
    except Exception as exc:  # costs us server.address, which the HTTP exchange may still give
        report_fault(_COMPONENT, exc)
        return None, None


def _wrap_operation(
    settings: _Settings,
    operation: str,
    streamed: bool | None,
    bound_sdk: Any = None,
) -> Callable[[Any], Any]:
    """Factory for an operation-method wrapper (class-level when ``bound_sdk`` is None);
    ``streamed`` None means the call's ``stream=True`` decides."""

    def make(original: Any) -> Any:
        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> GenAICall | None:
            try:
                context = trace_context()
                if context is None:
                    return None
                sdk = bound_sdk if bound_sdk is not None else args[0]
                model = kwargs.get("model")
                return GenAICall(
                    settings.tracer,
                    component=_COMPONENT,
                    operation=operation,
                    provider=settings.provider,
                    request_model=model if isinstance(model, str) else None,
                    stream=kwargs.get("stream") is True if streamed is None else streamed,
                    server=_server(sdk, kwargs),
                    body=kwargs,
                    context=context,
                )
            except Exception as exc:
                report_fault(_COMPONENT, exc)
                return None

        # a stream=None method may return either: _complete_stream passes plain results on
        return traced(original, begin, _complete if streamed is False else _complete_stream)

    return make


def _complete(call: GenAICall, result: Any) -> Any:
    """Observe a parsed result (unless the span is dropped, as in :mod:`.openai_client`); returns it."""
    if call.recording:
        call.observe_result(result)  # guarded, like finish: neither raises
    call.finish()
    return result


def _complete_stream(call: GenAICall, result: Any) -> Any:
    """Observe a streaming operation's result; returns what the caller gets (the same object,
    except for mistralai 1.0.x streams, which are bare generators and get a generator that
    observes them)."""
    try:
        if call.recording:
            if hasattr(result, "generator") and hasattr(result, "response"):
                trace_stream(result, "generator", call)
                return result
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                return trace_iterator(result, call)
    except Exception as exc:
        report_fault(_COMPONENT, exc)
        call.finish()
        return result
    return _complete(call, result)


def _wrap_http(original: Any) -> Any:
    """Hand the HTTP response of ``do_request``/``do_request_async`` to the running call."""
    if inspect.iscoroutinefunction(original):

        async def do_request_async(*args: Any, **kwargs: Any) -> Any:
            response = await original(*args, **kwargs)
            call = CURRENT_CALL.get()
            if call is not None:
                call.observe_http(response)
            return response

        return do_request_async

    def do_request(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        call = CURRENT_CALL.get()
        if call is not None:
            call.observe_http(response)
        return response

    return do_request


def _settings(tracer_provider: TracerProvider | None, provider_name: str | None) -> _Settings:
    provider = provider_name or env_str(
        OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME, attr.PROVIDER_MISTRAL
    )
    return _Settings(trace.get_tracer(__name__, tracer_provider=tracer_provider), provider)


def instrument_mistral(
    client: Any = None,
    *,
    tracer_provider: TracerProvider | None = None,
    provider_name: str | None = None,
) -> Any:
    """Trace Mistral calls: of ``client`` only (returned, same object), or of every client when None.

    ``provider_name`` overrides ``gen_ai.provider.name`` (else ``OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME``,
    else ``mistral_ai``).
    """
    settings = _settings(tracer_provider, provider_name)
    bound = client is not None
    found = packages()
    for owner, operation, methods in owners(client, found):
        for name, streamed in methods.items():
            wrap_attribute(
                owner,
                name,
                _wrap_operation(settings, operation, streamed, owner if bound else None),
            )
        if bound:
            for name in HTTP_METHODS:
                wrap_attribute(owner, name, _wrap_http)
    if not bound:
        for base in base_sdks(found):
            for name in HTTP_METHODS:
                wrap_attribute(base, name, _wrap_http)
    return client


def uninstrument_mistral(client: Any = None) -> None:
    """Undo :func:`instrument_mistral` for ``client``, or the global patch when None."""
    found = packages()
    for owner, _, methods in owners(client, found):
        for name in (*methods, *HTTP_METHODS):
            unwrap_attribute(owner, name)
    if client is None:
        for base in base_sdks(found):
            for name in HTTP_METHODS:
                unwrap_attribute(base, name)


class MistralInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``opentelemetry-instrument`` entry point (``downstream_mistral``) for every Mistral client."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("mistralai >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        instrument_mistral(
            tracer_provider=kwargs.get("tracer_provider"),
            provider_name=kwargs.get("provider_name"),
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument_mistral()
