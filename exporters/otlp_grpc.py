"""OTLP/gRPC for ``serve``: ``TraceService/Export`` over grpcio, with the OTLP status codes.

The servicer is opentelemetry-proto's ``TraceServiceServicer``, registered with a raw-bytes request
deserializer: grpcio would answer a body it cannot parse with ``INTERNAL``, while OTLP asks for
``INVALID_ARGUMENT``, so the body is decoded by the same code as OTLP/HTTP. grpcio itself enforces
the message size (after decompression) with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Final

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp_decode import DecodeFailure
from otel_downstream.exporters.otlp_export import ExportCore, Overloaded

__all__ = ["grpc_server"]

_GRPC_SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"


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
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        handlers=(handler,),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second service on the same port must fail, not share it
        ],
        maximum_concurrent_rpcs=max_rpcs,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind OTLP/gRPC to {host}:{port}")
    return server, bound
