"""OpenAI SDK wrapper: one CLIENT span per chat, Responses, embeddings or legacy completions call.

We wrap the SDK at its narrowest common point, ``SyncAPIClient.request``/``AsyncAPIClient.request``
(plus ``_process_response``, which hands us the HTTP response for byte counts). Every resource method,
``.parse()``, the ``.stream()`` helpers, ``with_raw_response``, ``with_streaming_response`` and the Azure
clients go through it, in openai 1.x, 2.x and 3.x alike, so one wrapper sees them all and no resource
signature is copied. The caller gets the SDK's own return value back, unchanged; streams and raw
responses are the SDK's objects observed in place (see :mod:`.stream`).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.trace import Tracer, TracerProvider

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.environment import OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME, env_str
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.call import GenAICall
from otel_downstream.agent.genai.context import CURRENT_CALL, trace_context, traced
from otel_downstream.agent.genai.patch import unwrap_attribute, wrap_attribute
from otel_downstream.agent.genai.record import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
)
from otel_downstream.agent.genai.stream import trace_stream, watch_close

__all__ = ["OpenAIInstrumentor", "instrument_openai", "uninstrument_openai"]

_COMPONENT = "openai"
_OPERATIONS: Mapping[str, str] = {
    "/chat/completions": OPERATION_CHAT,
    "/responses": OPERATION_CHAT,
    "/responses/compact": OPERATION_CHAT,  # compacts a conversation with a model: usage as /responses
    "/completions": OPERATION_TEXT_COMPLETION,
    "/embeddings": OPERATION_EMBEDDINGS,
}
_METHODS = ("request", "_process_response")
_COPIES = ("copy", "with_options")


# (stream classes, raw-response classes, Azure client classes) of the installed SDK, imported by
# the first instrument_openai() so that importing this module never imports openai
_TYPES: tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]] = ((), (), ())


def _load_types() -> None:
    global _TYPES
    if _TYPES[0]:
        return
    try:
        from openai import AsyncStream, Stream
        from openai._legacy_response import LegacyAPIResponse
        from openai._response import BaseAPIResponse
        from openai.lib.azure import AsyncAzureOpenAI, AzureOpenAI
    except ImportError as exc:
        raise ImportError(
            "instrument_openai needs the openai SDK (>= 1.40): pip install 'otel-downstream[openai]'"
        ) from exc
    _TYPES = (
        (Stream, AsyncStream),
        (BaseAPIResponse, LegacyAPIResponse),
        (AzureOpenAI, AsyncAzureOpenAI),
    )


@dataclass(frozen=True, slots=True)
class _Settings:
    tracer: Tracer
    provider: str | None  # explicit override; None = decide per client (Azure or openai)


def _settings(tracer_provider: TracerProvider | None, provider_name: str | None) -> _Settings:
    provider = provider_name or env_str(OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME, "") or None
    return _Settings(trace.get_tracer(__name__, tracer_provider=tracer_provider), provider)


def _begin(
    settings: _Settings, bound_client: Any
) -> Callable[[tuple[Any, ...], dict[str, Any]], GenAICall | None]:
    """The ``begin`` of :func:`.context.traced` for ``request`` (class-level when
    ``bound_client`` is None)."""

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> GenAICall | None:
        """A call for ``request(*args, **kwargs)`` if it is a GenAI endpoint; None for anything
        else (files, models, nested calls) and on any fault of ours."""
        try:
            client = bound_client if bound_client is not None else args[0]
            options = kwargs.get("options")
            if options is None:
                options = args[2] if bound_client is None else args[1]
            operation = _OPERATIONS.get(getattr(options, "url", ""))
            if operation is None:
                return None
            method = getattr(options, "method", "")
            if method != "post" and str(method).lower() != "post":  # the SDK passes "post" as such
                return None
            context = trace_context()
            if context is None:
                return None
            body = getattr(options, "json_data", None)
            if not isinstance(body, dict) and not isinstance(body, Mapping):  # dict: no ABC check
                body = None
            model = body.get("model") if body is not None else None
            provider = settings.provider
            if provider is None:
                provider = (
                    attr.PROVIDER_AZURE_OPENAI
                    if isinstance(client, _TYPES[2])
                    else attr.PROVIDER_OPENAI
                )
            # the public ``base_url`` property imports a helper on every read in openai 3.x (~1 µs)
            base = getattr(client, "_base_url", None)
            if base is None:
                base = client.base_url
            return GenAICall(
                settings.tracer,
                component=_COMPONENT,
                operation=operation,
                provider=provider,
                request_model=model if isinstance(model, str) else None,
                stream=bool(kwargs.get("stream", False)),
                server=(base.host or None, base.port),
                body=body,
                context=context,
            )
        except Exception as exc:
            report_fault(_COMPONENT, exc)
            return None

    return begin


def _complete(call: GenAICall, result: Any) -> Any:
    """Observe what the SDK returned (a parsed model, a stream or a raw response); returns it."""
    try:
        if not call.recording:
            call.finish()
        elif isinstance(result, _TYPES[0]):
            trace_stream(result, "_iterator", call)
        elif isinstance(result, _TYPES[1]):
            _trace_raw(result, call)
        else:
            call.observe_result(result)
            call.finish()
    except Exception as exc:
        report_fault(_COMPONENT, exc)
        call.finish()
    return result


def _trace_raw(raw: Any, call: GenAICall) -> None:
    """``with_raw_response``/``with_streaming_response``: tokens arrive when the caller parses."""
    parse = raw.parse
    if inspect.iscoroutinefunction(parse):

        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                result = await parse(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            finally:
                call.busy = False
            return _complete(call, result)

        raw.parse = parse_async
    else:

        def parse_sync(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                result = parse(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            finally:
                call.busy = False
            return _complete(call, result)

        raw.parse = parse_sync
    watch_close(raw.http_response, call)
    weakref.finalize(raw, call.finish)


def _wrap_request(settings: _Settings, bound_client: Any = None) -> Callable[[Any], Any]:
    """Factory for the ``request`` wrapper (class-level when ``bound_client`` is None)."""
    begin = _begin(settings, bound_client)

    def make(original: Any) -> Any:
        return traced(original, begin, _complete)

    return make


def _wrap_process_response(original: Any) -> Any:
    """Hand the HTTP response to the running call; returns whatever (or whichever coroutine)
    the SDK's own method returns."""

    def process_response(*args: Any, **kwargs: Any) -> Any:
        call = CURRENT_CALL.get()
        if call is not None:
            response = kwargs.get("response")
            if response is not None:
                call.observe_http(response)
        return original(*args, **kwargs)

    return process_response


def _sdk_classes() -> tuple[type, ...]:
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    return (SyncAPIClient, AsyncAPIClient)


def instrument_openai(
    client: Any = None,
    *,
    tracer_provider: TracerProvider | None = None,
    provider_name: str | None = None,
) -> Any:
    """Trace OpenAI calls: of ``client`` only (returned, same object), or of every client when None.

    ``provider_name`` overrides ``gen_ai.provider.name`` (else ``OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME``,
    else ``azure.ai.openai`` for Azure clients and ``openai`` for all others, whatever the base URL).
    """
    _load_types()
    settings = _settings(tracer_provider, provider_name)
    if client is None:
        for cls in _sdk_classes():
            wrap_attribute(cls, "request", _wrap_request(settings))
            wrap_attribute(cls, "_process_response", _wrap_process_response)
        return None
    _instrument_client(client, settings)
    return client


def _instrument_client(client: Any, settings: _Settings) -> None:
    wrap_attribute(client, "request", _wrap_request(settings, client))
    wrap_attribute(client, "_process_response", _wrap_process_response)
    for name in _COPIES:
        wrap_attribute(client, name, _wrap_copy(settings))


def _wrap_copy(settings: _Settings) -> Callable[[Any], Any]:
    """``client.with_options(...)``/``copy()`` of an instrumented client is instrumented too."""

    def make(original: Any) -> Any:
        def copy(*args: Any, **kwargs: Any) -> Any:
            new = original(*args, **kwargs)
            try:
                _instrument_client(new, settings)
            except Exception as exc:
                report_fault(_COMPONENT, exc)
            return new

        return copy

    return make


def uninstrument_openai(client: Any = None) -> None:
    """Undo :func:`instrument_openai` for ``client``, or the global patch when None."""
    if client is None:
        for cls in _sdk_classes():
            for name in _METHODS:
                unwrap_attribute(cls, name)
        return
    for name in (*_METHODS, *_COPIES):
        unwrap_attribute(client, name)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``opentelemetry-instrument`` entry point (``downstream_openai``) for every OpenAI client."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.40",)

    def _instrument(self, **kwargs: Any) -> None:
        instrument_openai(
            tracer_provider=kwargs.get("tracer_provider"),
            provider_name=kwargs.get("provider_name"),
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument_openai()
