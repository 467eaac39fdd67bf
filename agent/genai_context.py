"""Which traced LLM call is running in this context, and whether a new one should be traced.

The HTTP-level hooks (``_process_response``, ``do_request``) find the running call through
:data:`CURRENT_CALL`; the same variable keeps nested SDK methods (``chat.parse`` calling
``complete``, a per-client wrapper calling a global one) from opening a second span.
:func:`traced` is the one sync/async method wrapper both provider modules build on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from .attributes import GEN_AI_OPERATION_NAME
from .genai_record import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_GENERATE_CONTENT,
    OPERATION_TEXT_COMPLETION,
)

if TYPE_CHECKING:
    from .genai_call import GenAICall

CURRENT_CALL: ContextVar[GenAICall | None] = ContextVar("otel_downstream_genai_call", default=None)
"""The call whose SDK method is running in this context (lets the HTTP-level hook find it)."""


_INFERENCE_OPERATIONS = frozenset(
    (OPERATION_CHAT, OPERATION_TEXT_COMPLETION, OPERATION_EMBEDDINGS, OPERATION_GENERATE_CONTENT)
)


def trace_context() -> Context | None:
    """The context to open a new call's span in, or None when this call must not be traced: inside
    a call we already trace, or inside another instrumentation's span of the same call (a CLIENT
    span with an inference ``gen_ai.operation.name``).

    The exporter counts every GenAI span; when e.g. opentelemetry-instrumentation-openai-v2 already
    wraps this call, a second span of ours would count its tokens twice, so we defer to it. Agent or
    tool spans (``invoke_agent``, ``execute_tool``, INTERNAL kind) are parents, not the call itself,
    and do not stop us. The context is read once here and handed on to the span's start and to
    :func:`enter`, which would otherwise each read it again.
    """
    if CURRENT_CALL.get() is not None:
        return None
    context = otel_context.get_current()
    current = trace.get_current_span(context)
    if not current.is_recording() or getattr(current, "kind", None) is not SpanKind.CLIENT:
        return context
    attributes = getattr(current, "attributes", None)
    if attributes and attributes.get(GEN_AI_OPERATION_NAME) in _INFERENCE_OPERATIONS:
        return None
    return context


def enter(call: GenAICall) -> tuple[Token[GenAICall | None], Token[Context]]:
    """Make ``call`` (and its span, so HTTP client spans nest under it) current in this context."""
    return CURRENT_CALL.set(call), otel_context.attach(
        trace.set_span_in_context(call.span, call.context)
    )


def leave(tokens: tuple[Token[GenAICall | None], Token[Context]]) -> None:
    otel_context.detach(tokens[1])
    CURRENT_CALL.reset(tokens[0])


def traced(
    original: Callable[..., Any],
    begin: Callable[[tuple[Any, ...], dict[str, Any]], GenAICall | None],
    complete: Callable[[GenAICall, Any], Any],
) -> Callable[..., Any]:
    """Wrap an SDK method, sync or async, so that each call runs inside the call ``begin`` opens.

    ``begin(args, kwargs)`` returns None to leave the call untraced (and must not raise); the SDK's
    own exception ends the call and propagates unchanged; ``complete(call, result)`` observes the
    result and returns what the caller gets (and must not raise either).
    """
    if inspect.iscoroutinefunction(original):

        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            call = begin(args, kwargs)
            if call is None:
                return await original(*args, **kwargs)
            tokens = enter(call)
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            finally:
                leave(tokens)
            return complete(call, result)

        return traced_async

    def traced_sync(*args: Any, **kwargs: Any) -> Any:
        call = begin(args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        tokens = enter(call)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            call.finish(exc)
            raise
        finally:
            leave(tokens)
        return complete(call, result)

    return traced_sync
