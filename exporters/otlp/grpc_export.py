"""OTLP/gRPC ``TraceService/Export`` as an asyncio handler, with the OTLP status codes.

Waiting is what slow or hostile senders make a server do, so every wait here is a coroutine on the
receiver's event loop and holds no thread: the arrival of the request message (under a deadline,
since clients may set none and HTTP/2 multiplexes any number of stalled streams on one connection),
and the export slot. Only decoding and accounting, which need the CPU, run on a pool thread.

The method is registered as client-streaming although OTLP calls it unary (the wire is the same):
grpcio reads a unary request before calling the handler and with no deadline, while a streaming
handler reads the message itself. The message arrives as raw bytes: grpcio would answer a body it
cannot parse with ``INTERNAL``, while OTLP asks for ``INVALID_ARGUMENT``, so the body is decoded by
the same code as OTLP/HTTP.

RPCs admitted at once are bounded by our own gate, not grpcio's ``maximum_concurrent_rpcs``: that
answers ``RESOURCE_EXHAUSTED`` without ``RetryInfo``, which the OTLP spec makes non-retryable, so
senders would drop the batch. The gate gives the same code with a ``google.rpc.RetryInfo`` in
``grpc-status-details-bin``, the one form of it OTLP senders retry.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp.decoded import DecodeFailure, TooManySpans
from otel_downstream.exporters.otlp.export import ExportCore, ExportOutcome, Overloaded

__all__ = ["TraceExport", "outcome_seen"]

_BUSY: Final = "too many exports in flight; retry later"
_STOPPING: Final = "the receiver is shutting down; retry later"


def _retry_status() -> bytes:
    detail = AnyProto()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=_BUSY, details=[detail])
    serialized: bytes = status.SerializeToString()
    return serialized


_RETRY_DETAILS: Final = (("grpc-status-details-bin", _retry_status()),)


def outcome_seen(done: asyncio.Future[Any]) -> None:
    """Marks a future's exception as retrieved, for futures whose outcome is handled elsewhere or
    no longer matters: asyncio would log it from a finalizer, and on Python 3.11 the traceback that
    log formats can break an ``ast.parse`` running in the same thread at the time."""
    if not done.cancelled():
        done.exception()


class TraceExport:
    """The ``Export`` handler and what a drain needs to know of the RPCs in flight.

    Everything but :meth:`_run` runs on the event loop thread, so the counters need no lock.
    """

    def __init__(
        self, core: ExportCore, pool: ThreadPoolExecutor, *, max_rpcs: int, receive_s: float
    ) -> None:
        self._core = core
        self._pool = pool
        self._max_rpcs = max_rpcs
        self._receive_s = receive_s
        self._admitted = 0
        self._reads: set[asyncio.Future[Any]] = set()
        self.exports: set[Future[ExportOutcome]] = set()
        """Exports handed to the pool and not finished: each will be accounted and answered."""
        self._draining = False
        self._late = threading.Event()

    async def export(self, requests: object, context: Any) -> ExportTraceServiceResponse:
        """``requests`` is grpcio's message iterator, unused: the message is read under a deadline."""
        if self._draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, _STOPPING)
        if self._admitted >= self._max_rpcs:  # answered now, with nothing read
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _BUSY, _RETRY_DETAILS)
        self._admitted += 1
        try:
            return await self._export(context)
        finally:
            self._admitted -= 1

    async def _export(self, context: Any) -> ExportTraceServiceResponse:
        metadata = dict(context.invocation_metadata() or ())
        auth = metadata.get("authorization")
        if not self._core.authorized(auth if isinstance(auth, str) else None):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        body = await self._receive(context)
        if self._draining:  # a message that came after the stop began: the sender retries it
            await context.abort(grpc.StatusCode.UNAVAILABLE, _STOPPING)
        job = self._pool.submit(self._run, body)
        self.exports.add(job)
        job.add_done_callback(self.exports.discard)
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
        except Exception as exc:  # a bug of ours: answer INTERNAL, keep serving
            report_fault("serve", exc)
            code, message = grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
        if code is not grpc.StatusCode.OK:
            await context.abort(code, message)
        return outcome.response()

    async def _receive(self, context: Any) -> bytes:
        """The request message, or an answer: a stream that sends none in time costs nothing."""
        read: asyncio.Future[Any] = asyncio.ensure_future(context.read())
        read.add_done_callback(outcome_seen)  # read.result() below re-raises it when it matters
        self._reads.add(read)
        try:
            done, _ = await asyncio.wait((read,), timeout=self._receive_s)
        finally:
            self._reads.discard(read)
            if not read.done():
                read.cancel()
        if not done:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no request message within {self._receive_s:g}s",
            )
        if read.cancelled():  # by the drain
            await context.abort(grpc.StatusCode.UNAVAILABLE, _STOPPING)
        message = read.result()
        if isinstance(message, bytes):
            return message
        # EOF: the sender closed its side without a message
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        raise AssertionError("unreachable: context.abort raises")

    def _run(self, body: bytes) -> ExportOutcome:
        if self._late.is_set():  # queued past the drain grace: refused, so never counted
            raise Overloaded(_STOPPING)
        with self._core.slot():
            return self._core.export(body, json_body=False)

    def begin_drain(self) -> None:
        """Refuse what is not yet exporting: new RPCs, and streams still waiting for a message."""
        self._draining = True
        for read in tuple(self._reads):
            read.cancel()

    def past_grace(self) -> None:
        """Exports still queued for a pool thread are refused; those already running finish."""
        self._late.set()
