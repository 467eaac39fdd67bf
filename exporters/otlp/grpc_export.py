"""OTLP/gRPC ``TraceService/Export`` as an asyncio handler, with the OTLP status codes.

Waiting is what slow or hostile senders make a server do, so every wait here is a coroutine on the
receiver's event loop and holds no thread: the arrival of the request message (under a deadline,
since clients may set none and HTTP/2 multiplexes any number of stalled streams on one connection).
Only decoding and accounting, which need the CPU, run on a pool thread.

The method is registered as client-streaming although OTLP calls it unary (the wire is the same):
grpcio reads a unary request before calling the handler and with no deadline, while a streaming
handler reads the message itself. The message arrives as raw bytes: grpcio would answer a body it
cannot parse with ``INTERNAL``, while OTLP asks for ``INVALID_ARGUMENT``, so the body is decoded by
the same code as OTLP/HTTP.

What a stream may hold is bounded in the order it holds it (see :mod:`grpc_limits`): streams still
waiting for their message, per connection and per source address (a stalled stream holds nothing
else, so stalled streams cannot starve exports); then, once the message is here, the gate of
exports handed to the pool and the shared byte budget of bodies (with OTLP/HTTP, a share per
source). Past any of them the answer is ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo``, the
one form of it OTLP senders retry (grpcio's own ``maximum_concurrent_rpcs`` gives none, which makes
senders drop the batch). A queued export waits at most a second for a thread and slot (then
``UNAVAILABLE``), and one whose sender's deadline is past, or too close to answer, is refused
before it is accounted: a batch counted is a batch whose answer can still arrive.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp.decoded import DecodeFailure, TooManySpans
from otel_downstream.exporters.otlp.export import ExportCore, ExportOutcome, Overloaded
from otel_downstream.exporters.otlp.grpc_limits import (
    BUSY,
    STOPPING,
    AccountPace,
    TooLate,
    Waiting,
    retryable,
)
from otel_downstream.exporters.otlp.limits import BodyBudget, BudgetExceeded

__all__ = ["TraceExport", "outcome_seen"]

QUEUE_WAIT_S: Final = 1.0
"""Longest wait of a received export for a pool thread and an export slot, as OTLP/HTTP's."""


def outcome_seen(done: asyncio.Future[Any]) -> None:
    """Marks a future's exception as retrieved, for futures whose outcome is handled elsewhere or
    no longer matters: asyncio would log it from a finalizer, and on Python 3.11 the traceback that
    log formats can break an ``ast.parse`` running in the same thread at the time."""
    if not done.cancelled():
        done.exception()


class TraceExport:
    """The ``Export`` handler and what a drain needs to know of the RPCs in flight.

    Everything but :meth:`_run` and the jobs' done callbacks runs on the event loop thread.
    """

    def __init__(
        self,
        core: ExportCore,
        pool: ThreadPoolExecutor,
        budget: BodyBudget,
        *,
        max_rpcs: int,
        receive_s: float,
        waiting: Waiting,
    ) -> None:
        self._core = core
        self._pool = pool
        self._budget = budget
        self._max_rpcs = max_rpcs
        self._receive_s = receive_s
        self._waiting = waiting
        self._pace = AccountPace()
        self._stopping: asyncio.Future[None] | None = None
        self.exports: set[Future[ExportOutcome]] = set()
        """Exports handed to the pool and not finished: each will be accounted and answered."""
        self._draining = False
        self._late = threading.Event()

    async def export(self, requests: object, context: Any) -> ExportTraceServiceResponse:
        """``requests`` is grpcio's message iterator, unused: the message is read under a deadline."""
        if self._draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING)
        metadata = dict(context.invocation_metadata() or ())
        auth = metadata.get("authorization")
        if not self._core.authorized(auth if isinstance(auth, str) else None):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if len(self.exports) >= self._max_rpcs:  # answered now, with nothing read
            await context.abort(*retryable(BUSY))
        peer = str(context.peer())
        refused = self._waiting.enter(peer)
        if refused is not None:
            await context.abort(*retryable(refused))
        try:
            body = await self._receive(context)
        finally:
            self._waiting.leave(peer)
        return await self._export(body, self._waiting.source(peer), context)

    async def _export(self, body: bytes, source: str, context: Any) -> ExportTraceServiceResponse:
        if self._draining:  # a message that came after the stop began: the sender retries it
            await context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING)
        if len(self.exports) >= self._max_rpcs:
            await context.abort(*retryable(BUSY))
        size = len(body)
        try:
            self._budget.reserve(size, source)
        except BudgetExceeded as exc:
            await context.abort(*retryable(str(exc)))
        try:
            remaining = context.time_remaining()
            deadline = None if remaining is None else time.monotonic() + remaining
            job = self._pool.submit(self._run, body, time.monotonic(), deadline)
        except BaseException:
            self._budget.release(size, source)
            raise
        self.exports.add(job)
        job.add_done_callback(lambda done: self._finished(done, size, source))
        code, message = grpc.StatusCode.OK, ""
        try:
            # Cancelled (the sender went away) before a pool thread took it: never accounted.
            outcome = await asyncio.wrap_future(job)
        except TooManySpans as exc:  # no RetryInfo: the same batch would be refused again
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
        except DecodeFailure as exc:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except Overloaded as exc:
            code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
        except TooLate as exc:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
        except Exception as exc:  # a bug of ours: answer INTERNAL, keep serving
            report_fault("serve", exc)
            code, message = grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
        if code is not grpc.StatusCode.OK:
            await context.abort(code, message)
        return outcome.response()

    def _finished(self, job: Future[ExportOutcome], size: int, source: str) -> None:
        """A job is over (any thread): its bytes go back to the budget, its place to the gate."""
        self._budget.release(size, source)
        self.exports.discard(job)

    async def _receive(self, context: Any) -> bytes:
        """The request message, or an answer: a stream that sends none in time costs nothing."""
        read: asyncio.Future[Any] = asyncio.ensure_future(context.read())
        read.add_done_callback(outcome_seen)  # read.result() below re-raises it when it matters
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait(
                (read, self._stopping), timeout=self._receive_s, return_when="FIRST_COMPLETED"
            )
            if self._draining:  # answered before the read is cancelled (that would be CANCELLED)
                await context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING)
            if not read.done():
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no request message within {self._receive_s:g}s",
                )
        finally:
            if not read.done():
                read.cancel()
        message = read.result()
        if isinstance(message, bytes):
            return message
        # EOF: the sender closed its side without a message
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        raise AssertionError("unreachable: context.abort raises")

    def _run(self, body: bytes, queued: float, deadline: float | None) -> ExportOutcome:
        if self._late.is_set():  # queued past the drain grace: refused, so never counted
            raise Overloaded(STOPPING)
        wait_s = QUEUE_WAIT_S - (time.monotonic() - queued)
        if wait_s <= 0:
            raise Overloaded(BUSY)
        core = self._core
        with core.slot(wait_s):
            if deadline is not None and deadline - time.monotonic() <= 0:
                raise TooLate("the sender's deadline passed while the export was queued")
            spans = core.decode(body, json_body=False)
            with self._pace.turn(len(spans), deadline):
                return core.account(spans)

    def begin_drain(self) -> None:
        """Refuse what is not yet exporting: new RPCs, and streams still waiting for a message."""
        self._draining = True
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        if not self._stopping.done():
            self._stopping.set_result(None)

    def past_grace(self) -> None:
        """Exports still queued for a pool thread are refused; those already running finish."""
        self._late.set()
