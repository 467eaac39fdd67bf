"""OTLP/gRPC for ``serve``: ``TraceService/Export`` over grpcio, with the OTLP status codes.

The servicer is opentelemetry-proto's ``TraceServiceServicer``, registered with a raw-bytes request
deserializer: grpcio would answer a body it cannot parse with ``INTERNAL``, while OTLP asks for
``INVALID_ARGUMENT``, so the body is decoded by the same code as OTLP/HTTP. grpcio itself enforces
the message size (after decompression) with ``RESOURCE_EXHAUSTED``.

RPCs admitted at once are bounded by our own gate, not grpcio's ``maximum_concurrent_rpcs``: that
answers ``RESOURCE_EXHAUSTED`` without ``RetryInfo``, which the OTLP spec makes non-retryable, so
senders would drop the batch. The gate gives the same code with a ``google.rpc.RetryInfo`` in
``grpc-status-details-bin``, the one form of it OTLP senders retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp.decode import DecodeFailure, TooManySpans
from otel_downstream.exporters.otlp.export import ExportCore, Overloaded

__all__ = ["grpc_server"]

_GRPC_SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"
_BUSY: Final = "too many exports in flight; retry later"


def _retry_status() -> bytes:
    detail = AnyProto()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=_BUSY, details=[detail])
    serialized: bytes = status.SerializeToString()
    return serialized


_RETRY_DETAILS: Final = (("grpc-status-details-bin", _retry_status()),)


class _CountingPool(ThreadPoolExecutor):
    """The RPC pool, counting RPCs submitted and not finished (queued ones too), as grpcio's own
    limit does: an RPC is submitted when it arrives and finishes even if it is cancelled."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="otlp-grpc")
        self._lock = threading.Lock()
        self.active = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self.active += 1
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: Future[Any]) -> None:
        with self._lock:
            self.active -= 1


def _refuse(request: bytes, context: grpc.ServicerContext) -> None:
    context.set_trailing_metadata(_RETRY_DETAILS)
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _BUSY)


class _Gate(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Admits an RPC while fewer than ``limit`` are in the pool; else a retryable refusal, run on
    a pool of its own so it is answered at once even when the RPC pool is full."""

    def __init__(self, inner: grpc.GenericRpcHandler, pool: _CountingPool, limit: int) -> None:
        self._inner = inner
        self._pool = pool
        self._limit = limit
        refuse: Any = _refuse
        refuse.experimental_thread_pool = ThreadPoolExecutor(2, "otlp-grpc-refuse")
        self._refusal = grpc.unary_unary_rpc_method_handler(refuse)

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is not None and self._pool.active >= self._limit:
            return self._refusal
        return handler


class _TraceService(TraceServiceServicer):
    """OTLP/gRPC ``Export``; receives raw bytes so malformed bodies get INVALID_ARGUMENT."""

    def __init__(self, core: ExportCore) -> None:
        self._core = core

    def Export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        metadata = dict(context.invocation_metadata() or ())
        auth = metadata.get("authorization")
        if not self._core.authorized(auth if isinstance(auth, str) else None):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            with self._core.slot():
                return self._core.export(request, json_body=False).response()
        except TooManySpans as exc:  # no RetryInfo: the same batch would be refused again
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except DecodeFailure as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:  # a bug of ours: answer INTERNAL, keep serving
            report_fault("serve", exc)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})")
        raise AssertionError("unreachable: context.abort raises")


def grpc_server(
    core: ExportCore, *, host: str, port: int, workers: int, max_message_bytes: int, max_rpcs: int
) -> tuple[grpc.Server, int]:
    """A grpc server bound to ``host:port`` (not started) and the port it bound."""
    servicer = _TraceService(core)
    handler = grpc.method_handlers_generic_handler(
        _GRPC_SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                servicer.Export,
                request_deserializer=None,  # raw bytes: we decode, and answer INVALID_ARGUMENT
                response_serializer=ExportTraceServiceResponse.SerializeToString,
            )
        },
    )
    pool = _CountingPool(workers)
    server = grpc.server(
        pool,
        handlers=(_Gate(handler, pool, max_rpcs),),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second service on the same port must fail, not share it
        ],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind OTLP/gRPC to {host}:{port}")
    return server, bound
