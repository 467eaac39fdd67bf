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
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.trace import Span, SpanKind

from otel_downstream.agent.model_calls import is_call_in_progress

if TYPE_CHECKING:
    from otel_downstream.agent.genai.call import GenAICall

CURRENT_CALL: ContextVar[GenAICall | None] = ContextVar("otel_downstream_genai_call", default=None)
"""The call whose SDK method is running in this context (lets the HTTP-level hook find it)."""


def trace_context() -> Context | None:
    """The caller's context, in which to trace a new call; None when this call must not be traced:
    inside a call we already trace, or inside ``suppress_instrumentation()`` (as every contrib
    instrumentation honours it). The context is read once here and handed on to the call.
    """
    if CURRENT_CALL.get() is not None:
        return None
    context = otel_context.get_current()
    if context.get(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    return context


def foreign_call_span(context: Context) -> Span | None:
    """The current span when it is another instrumentation's span of this very model call, else None.

    Which spans qualify: :func:`~otel_downstream.agent.model_calls.is_call_in_progress`. When e.g.
    opentelemetry-instrumentation-openai-v2 already wraps this call, a second span of ours would
    count its tokens twice, so we annotate that span with what it lacks instead (its streams often
    carry no usage). Agent or tool spans are parents, not the call itself, and do not count.
    """
    current = trace.get_current_span(context)
    if not current.is_recording():
        return None
    kind = getattr(current, "kind", None)
    if kind is SpanKind.SERVER or not isinstance(kind, SpanKind):  # the usual parent: cheap exit
        return None
    attributes = getattr(current, "attributes", None)
    if not attributes:
        return None
    return current if is_call_in_progress(attributes, kind.name) else None


def enter(call: GenAICall) -> tuple[Token[GenAICall | None], Token[Context] | None]:
    """Make ``call`` current in this context, and its span too when it is ours (so HTTP client
    spans nest under it); a foreign span is current already."""
    return CURRENT_CALL.set(call), (
        otel_context.attach(trace.set_span_in_context(call.span, call.context))
        if call.owns_span
        else None
    )


def leave(tokens: tuple[Token[GenAICall | None], Token[Context] | None]) -> None:
    if tokens[1] is not None:
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
