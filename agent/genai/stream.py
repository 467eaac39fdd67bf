"""The one helper that traces a streamed LLM response, sync or async, and ends its span exactly once.

We never hand the caller a different object: the SDK's own stream (OpenAI ``Stream``/``AsyncStream``,
Mistral ``EventStream``/``EventStreamAsync``) is kept, and only two of its instance attributes are
redirected:

* the iterator attribute the stream reads chunks from (``_iterator`` or ``generator``) becomes a
  generator that observes each chunk and ends the span on exhaustion or error;
* ``close``/``aclose`` of its HTTP response end the span when the caller (or a helper such as
  ``ChatCompletionStream``) closes early.

A ``weakref.finalize`` on the stream ends the span if the stream is dropped unclosed. While a chunk is
being pulled (``call.busy``) the SDK may close the response itself (its ``finally`` on ``[DONE]`` or on
an error); those closes are left to the iterator wrapper, which knows whether the stream ended well.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.genai.call import GenAICall

_MARK = "_otel_downstream_call"


def trace_stream(stream: Any, iterator_attr: str, call: GenAICall) -> None:
    """Observe ``stream`` in place; a stream that is already traced (or not iterable) is left alone."""
    try:
        if getattr(stream, _MARK, None) is not None:
            return
        inner = getattr(stream, iterator_attr)
        if hasattr(inner, "__anext__"):
            setattr(stream, iterator_attr, _async_chunks(inner, call))
        else:
            setattr(stream, iterator_attr, _sync_chunks(iter(inner), call))
        setattr(stream, _MARK, call)
        watch_close(getattr(stream, "response", None), call)
        weakref.finalize(stream, call.finish)
    except Exception as exc:
        report_fault(call.component, exc)
        call.finish()


def trace_iterator(iterator: Any, call: GenAICall) -> Any:
    """A generator yielding what ``iterator`` yields, for SDKs that return bare generators
    (mistralai 1.0.x) and so have no stream object to observe in place. Closing or dropping it
    once started ends the span through the generator's own ``GeneratorExit``; a generator that
    never started runs no code when it is dropped, so a finaliser ends the span then."""
    try:
        if hasattr(iterator, "__anext__"):
            chunks: Any = _async_chunks(iterator, call)
        else:
            chunks = _sync_chunks(iter(iterator), call)
        weakref.finalize(chunks, call.finish)
        return chunks
    except Exception as exc:
        report_fault(call.component, exc)
        call.finish()
        return iterator


def watch_close(response: Any, call: GenAICall) -> None:
    """End the call when ``response`` is closed by anyone but the SDK code we are driving."""
    if response is None:
        return
    close = getattr(response, "close", None)
    if callable(close):
        response.close = _closing(close, call)
    aclose = getattr(response, "aclose", None)
    if callable(aclose):
        response.aclose = _async_closing(aclose, call)


def _closing(close: Callable[[], Any], call: GenAICall) -> Callable[[], Any]:
    def closing_close() -> Any:
        try:
            return close()
        finally:
            if not call.busy:
                call.finish()

    return closing_close


def _async_closing(aclose: Callable[[], Awaitable[Any]], call: GenAICall) -> Callable[[], Any]:
    async def closing_aclose() -> Any:
        try:
            return await aclose()
        finally:
            if not call.busy:
                call.finish()

    return closing_aclose


def _sync_chunks(inner: Iterator[Any], call: GenAICall) -> Iterator[Any]:
    observe = call.observe_chunk
    while True:
        call.busy = True
        try:
            item = next(inner)
        except StopIteration:
            call.finish()
            return
        except BaseException as exc:
            call.finish(exc)
            raise
        finally:
            call.busy = False
        observe(item)
        try:
            yield item
        except GeneratorExit:
            call.finish()
            raise


async def _async_chunks(inner: AsyncIterator[Any], call: GenAICall) -> AsyncIterator[Any]:
    observe = call.observe_chunk
    while True:
        call.busy = True
        try:
            item = await inner.__anext__()
        except StopAsyncIteration:
            call.finish()
            return
        except BaseException as exc:
            call.finish(exc)
            raise
        finally:
            call.busy = False
        observe(item)
        try:
            yield item
        except GeneratorExit:
            call.finish()
            raise
