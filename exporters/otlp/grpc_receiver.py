"""OTLP/gRPC for ``serve``: grpcio's asyncio server on an event loop of its own, and its drain.

grpcio's thread-pool server waits for a request message inside a pool thread, with no timeout, and
HTTP/2 carries any number of streams on one connection: as many streams that open and never send
a message as there are threads starve every other export, for ever. On the asyncio server a stream
waiting for its message is a coroutine, which :class:`TraceExport` bounds by a receive deadline;
the loop runs in a thread of its own so the rest of ``serve`` stays as it is.

The drain keeps the promise the OTLP/HTTP one keeps: a batch counted is a batch answered. grpcio's
own graceful stop cancels every RPC still running when the grace ends, an export half-accounted
included, and cancels at once the calls not yet handed to a handler, so the stop here is in steps:
answer UNAVAILABLE to what has no message yet (and to every new RPC), let every export handed to
the pool finish (refusing, past the grace, those no thread has started), and only then stop
grpcio's server, with nothing left that was counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp.export import ExportCore
from otel_downstream.exporters.otlp.grpc_export import TraceExport, outcome_seen
from otel_downstream.exporters.otlp.grpc_limits import Waiting
from otel_downstream.exporters.otlp.limits import BodyBudget

__all__ = ["GrpcReceiver"]

_logger = logging.getLogger("otel_downstream.serve")

_GRPC_SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"
_EXPORTS_FINISH_S: Final = 60.0
"""How long a drain waits past its grace for exports already accounting (one batch each)."""
_ANSWERS_SENT_S: Final = 2.0
_SETTLE_S: Final = 0.1
_HANDSHAKE_S: Final = 5.0
_STREAMS_PER_CONNECTION: Final = 128


def _options(
    *,
    max_message_bytes: int,
    max_rpcs: int,
    max_connections: int,
    idle_s: float,
) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),  # a second service on the same port must fail, not share it
        # RFC 9113 advises at least 100; above the streams one connection may have waiting for
        # their message (so it keeps room for messages that arrive), and above the gate, so one
        # sender's connection meets a retryable refusal rather than queueing streams out of sight.
        ("grpc.max_concurrent_streams", max(_STREAMS_PER_CONNECTION, max_rpcs + 1)),
        ("grpc.max_allowed_incoming_connections", max_connections),
        # A connection that does not finish its HTTP/2 preface within a few seconds, or that
        # carries no RPC for the idle timeout, is closed; busy connections are recycled (GOAWAY,
        # with no grace limit: every RPC is bounded by the receive deadline and one export).
        ("grpc.server_handshake_timeout_ms", int(_HANDSHAKE_S * 1000)),
        ("grpc.max_connection_idle_ms", int(idle_s * 1000)),
        ("grpc.max_connection_age_ms", 10 * 60 * 1000),
        # Dead peers are found within 80 s; senders may ping every 10 s to keep a NAT entry open.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ]


def _watched(job: Future[Any]) -> asyncio.Future[Any]:
    """``job`` to wait for; its outcome is its RPC's to answer, not this copy's to log."""
    watched = asyncio.wrap_future(job)
    watched.add_done_callback(outcome_seen)
    return watched


class GrpcReceiver:
    """The OTLP/gRPC listener: :meth:`start` binds and serves, :meth:`stop` begins the drain,
    :meth:`join` waits for it."""

    def __init__(
        self,
        core: ExportCore,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        max_concurrent_exports: int,
        max_connections: int,
        receive_timeout_s: float,
        idle_timeout_s: float,
        budget: BodyBudget,
    ) -> None:
        self._address = f"{host}:{port}"
        max_rpcs = max_concurrent_exports * 4
        self._options = _options(
            max_message_bytes=max_message_bytes,
            max_rpcs=max_rpcs,
            max_connections=max_connections,
            idle_s=idle_timeout_s,
        )
        # As many threads as export slots: a thread more would only wait for a slot.
        self._pool = ThreadPoolExecutor(max_concurrent_exports, thread_name_prefix="otlp-grpc")
        self._export = TraceExport(
            core,
            self._pool,
            budget,
            max_rpcs=max_rpcs,
            receive_s=receive_timeout_s,
            waiting=Waiting(),
        )
        self._started: Future[int] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_asked: asyncio.Future[float] | None = None
        self._grace = 0.0
        self._thread = threading.Thread(target=self._run, name="otlp-grpc-loop", daemon=True)

    def start(self) -> int:
        """Bind and serve; the port bound, or the ``OSError`` that prevented it."""
        self._thread.start()
        return self._started.result()

    def stop(self, grace: float) -> None:
        """Stop taking RPCs now; exports in flight get ``grace`` seconds (see the module doc)."""
        loop, asked = self._loop, self._stop_asked
        if loop is None or asked is None or not self._thread.is_alive():
            return
        self._grace = grace

        def ask() -> None:
            if not asked.done():
                asked.set_result(grace)

        with contextlib.suppress(RuntimeError):  # the loop has just closed: nothing left to stop
            loop.call_soon_threadsafe(ask)

    def join(self) -> bool:
        """Wait for the drain to end, as long as it may take; whether it did."""
        if self._thread.ident is not None:
            self._thread.join(self._grace + _EXPORTS_FINISH_S + _SETTLE_S + _ANSWERS_SENT_S + 1)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            else:  # the listener is gone; serve reports it and keeps its other listeners
                report_fault("serve", exc)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_asked = self._loop.create_future()
        handler = grpc.method_handlers_generic_handler(
            _GRPC_SERVICE,
            {
                "Export": grpc.stream_unary_rpc_method_handler(
                    self._export.export,
                    request_deserializer=None,  # raw bytes: we decode, and answer INVALID_ARGUMENT
                    response_serializer=ExportTraceServiceResponse.SerializeToString,
                )
            },
        )
        server = grpc.aio.server(handlers=(handler,), options=self._options)
        try:
            port = server.add_insecure_port(self._address)
        except RuntimeError as exc:  # grpcio raises this, not OSError, when the port is taken
            raise OSError(f"cannot bind OTLP/gRPC to {self._address}: {exc}") from exc
        if not port:
            raise OSError(f"cannot bind OTLP/gRPC to {self._address}")
        await server.start()
        self._started.set_result(port)
        await self._drain(server, await self._stop_asked)

    async def _drain(self, server: Any, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # From now on the handler answers every new RPC, and every stream still waiting for its
        # message, UNAVAILABLE; grpc's own stop is left for the end, as it would cancel the calls
        # it has not yet handed to the handler (CANCELLED, which senders may not retry).
        self._export.begin_drain()
        exports = [_watched(job) for job in tuple(self._export.exports)]
        if exports:
            _, late = await asyncio.wait(exports, timeout=grace)
            if late:
                self._export.past_grace()
                _logger.warning(
                    "otel-downstream serve: %d OTLP/gRPC exports queued or running after %ss",
                    len(late),
                    grace,
                )
                await asyncio.wait(late, timeout=_EXPORTS_FINISH_S)
        # Every export is over and its answer on its way: what is still open was never counted.
        await asyncio.sleep(_SETTLE_S)  # calls grpc has queued for the handler get their answer
        await server.stop(max(deadline - loop.time(), _ANSWERS_SENT_S))
