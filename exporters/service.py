"""``otel-downstream serve``: OTLP/HTTP and OTLP/gRPC in, footprint metrics on ``/metrics`` out.

A collector (or any OTLP exporter) sends every span here; each span is decoded straight from the
protobuf classes and handed to the same accounting core the in-process exporter uses, scaled by its
sampling weight. Both transports share one :class:`ExportCore`, so auth, size limits, backpressure
and partial-success answers behave the same whichever way the spans arrive.
"""

from __future__ import annotations

import contextlib
import gzip
import hmac
import logging
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, NamedTuple, Protocol

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp_decode import DecodedSpan, DecodeFailure, decode_request
from otel_downstream.exporters.otlp_http import OtlpHttpServer
from otel_downstream.exporters.span_inputs import classify

__all__ = ["ExportCore", "ExportOutcome", "OtlpService", "ServiceConfig", "SpanAccounting"]

_logger = logging.getLogger("otel_downstream.serve")

MIB: Final = 1024 * 1024
_GRPC_SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"


class SpanAccounting(Protocol):
    """What ``serve`` needs from the accounting core (``accounting.Accountant`` provides it)."""

    def account(
        self,
        attributes: Mapping[str, Any],
        *,
        service_name: str,
        weight: float = 1.0,
        name: str = "",
        kind: str = "",
        duration_s: float | None = None,
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Listeners and limits; a negative port disables that listener, 0 picks a free port."""

    host: str = "127.0.0.1"
    otlp_http_port: int = 4318
    otlp_grpc_port: int = 4317
    metrics_port: int = 9464
    auth_token: str | None = None
    max_body_bytes: int = 16 * MIB
    max_decompressed_bytes: int = 64 * MIB
    max_concurrent_exports: int = 16
    grpc_workers: int = 16
    idle_timeout_s: float = 30.0
    drain_timeout_s: float = 10.0


class ExportOutcome(NamedTuple):
    """How many spans of one export were rejected, and why (OTLP partial success)."""

    rejected: int
    message: str

    def to_protobuf(self) -> bytes:
        return self.response().SerializeToString()

    def response(self) -> ExportTraceServiceResponse:
        if not self.rejected and not self.message:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(
                rejected_spans=self.rejected, error_message=self.message
            )
        )

    def to_json(self) -> dict[str, Any]:
        if not self.rejected and not self.message:
            return {}
        # OTLP/JSON writes int64 as a decimal string.
        return {
            "partialSuccess": {"rejectedSpans": str(self.rejected), "errorMessage": self.message}
        }


class _Overloaded(Exception):
    """Too many exports in flight: the sender should retry later (HTTP 503 / gRPC UNAVAILABLE)."""


class ExportCore:
    """Auth, limits, backpressure and accounting shared by OTLP/HTTP and OTLP/gRPC."""

    Overloaded = _Overloaded

    def __init__(self, accountant: SpanAccounting, config: ServiceConfig) -> None:
        self._accountant = accountant
        self._token = f"Bearer {config.auth_token}".encode() if config.auth_token else None
        self.max_body_bytes = config.max_body_bytes
        self.max_decompressed_bytes = config.max_decompressed_bytes
        self._slots = threading.BoundedSemaphore(config.max_concurrent_exports)
        self._tally_lock = threading.Lock()
        self.tally = {"spans_received": 0, "spans_accounted": 0, "spans_rejected": 0}
        """Spans seen since start, for the ``stopped`` line and tests (metrics carry the rest)."""

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        return header is not None and hmac.compare_digest(header.strip().encode(), self._token)

    @contextlib.contextmanager
    def slot(self, wait_s: float = 1.0) -> Iterator[None]:
        if not self._slots.acquire(timeout=wait_s):
            raise _Overloaded("too many exports in flight; retry later")
        try:
            yield
        finally:
            self._slots.release()

    def export(self, body: bytes, *, json_body: bool) -> ExportOutcome:
        """Decode a whole body (raising ``DecodeFailure``), then account every span in it."""
        return self.account(decode_request(body, json_body=json_body))

    def account(self, spans: list[DecodedSpan]) -> ExportOutcome:
        """Account each span; only footprint spans the core refused count as rejected.

        Spans the footprint does not cover (database calls, internal work) are accepted and
        ignored: OTLP's ``rejected_spans`` means data the receiver could not take.
        """
        rejected = accounted = 0
        account = self._accountant.account
        for span in spans:
            try:
                if classify(span.attributes, span.name, span.kind) is None:
                    continue
                ok = account(
                    span.attributes,
                    service_name=span.service_name,
                    weight=span.weight,
                    name=span.name,
                    kind=span.kind,
                    duration_s=span.duration_s,
                )
            except Exception as exc:  # the service keeps serving whatever one span does
                report_fault("serve", exc)
                ok = False
            if ok:
                accounted += 1
            else:
                rejected += 1
        with self._tally_lock:
            self.tally["spans_received"] += len(spans)
            self.tally["spans_accounted"] += accounted
            self.tally["spans_rejected"] += rejected
        if not rejected:
            return ExportOutcome(0, "")
        return ExportOutcome(
            rejected,
            f"{rejected} of {len(spans)} spans had invalid footprint attributes; "
            "see downstream_spans_rejected_total on /metrics",
        )


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
        except _Overloaded as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        raise AssertionError("unreachable: context.abort raises")


def _grpc_server(core: ExportCore, config: ServiceConfig) -> tuple[grpc.Server, int]:
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
        ThreadPoolExecutor(max_workers=config.grpc_workers, thread_name_prefix="otlp-grpc"),
        handlers=(handler,),
        options=[
            ("grpc.max_receive_message_length", config.max_decompressed_bytes),
            ("grpc.so_reuseport", 0),  # a second service on the same port must fail, not share it
        ],
        maximum_concurrent_rpcs=config.max_concurrent_exports * 4,
    )
    port = server.add_insecure_port(f"{config.host}:{config.otlp_grpc_port}")
    if not port:
        raise OSError(f"cannot bind OTLP/gRPC to {config.host}:{config.otlp_grpc_port}")
    return server, port


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry) -> None:
        self.registry = registry
        self.draining = False
        super().__init__(address, _MetricsHandler)


class _MetricsHandler(BaseHTTPRequestHandler):
    """``/metrics`` (Prometheus text or OpenMetrics, gzip when asked), ``/healthz``, ``/readyz``."""

    server: _MetricsServer
    protocol_version = "HTTP/1.1"
    timeout = 30

    def version_string(self) -> str:
        return "otel-downstream"

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        headers: dict[str, str] = {}
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            status, payload = 200, encoder(self.server.registry)
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                payload, headers["Content-Encoding"] = gzip.compress(payload, 1), "gzip"
        elif path == "/healthz" or (path == "/readyz" and not self.server.draining):
            status, payload, content_type = 200, b"ok\n", "text/plain"
        elif path == "/readyz":
            status, payload, content_type = 503, b"draining\n", "text/plain"
        else:
            status, payload, content_type = 404, b"not found; try /metrics\n", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        _logger.debug("%s " + format, self.address_string(), *args)


class OtlpService:
    """The running service: start() binds every listener, stop() drains and flushes."""

    def __init__(
        self,
        config: ServiceConfig | None = None,
        *,
        accountant: SpanAccounting | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self.registry = registry if registry is not None else REGISTRY
        if accountant is None:
            from otel_downstream.exporters.accounting import Accountant

            accountant = Accountant(registry=self.registry)
        self.accountant = accountant
        self.core = ExportCore(accountant, self.config)
        self._http: OtlpHttpServer | None = None
        self._grpc: grpc.Server | None = None
        self._metrics: _MetricsServer | None = None
        self._threads: list[threading.Thread] = []
        self.ports: dict[str, int] = {}

    def start(self) -> dict[str, int]:
        """Bind and serve; returns the bound ports by listener name (0 in the config picks one)."""
        cfg = self.config
        try:
            if cfg.metrics_port >= 0:
                self._metrics = _MetricsServer((cfg.host, cfg.metrics_port), self.registry)
                self._serve(self._metrics, "metrics")
            if cfg.otlp_http_port >= 0:
                self._http = OtlpHttpServer(
                    (cfg.host, cfg.otlp_http_port), self.core, idle_timeout=cfg.idle_timeout_s
                )
                self._serve(self._http, "otlp_http")
            if cfg.otlp_grpc_port >= 0:
                self._grpc, self.ports["otlp_grpc"] = _grpc_server(self.core, cfg)
                self._grpc.start()
        except BaseException:
            self.stop()
            raise
        return dict(self.ports)

    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        self.ports[name] = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name=f"serve-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish, then flush the accounting core."""
        grace = self.config.drain_timeout_s
        if self._metrics is not None:
            self._metrics.draining = True
        stopped = self._grpc.stop(grace) if self._grpc is not None else None
        if self._http is not None:
            self._http.shutdown()
            if not self._http.connections.drain(grace):
                _logger.warning(
                    "otel-downstream serve: OTLP/HTTP requests still running after %ss", grace
                )
            self._http.server_close()
        if stopped is not None:
            stopped.wait(grace)
        flush = getattr(self.accountant, "flush", None)
        if callable(flush):
            try:
                flush()
            except Exception as exc:
                report_fault("serve", exc)
        if self._metrics is not None:
            self._metrics.shutdown()
            self._metrics.server_close()
        for thread in self._threads:
            thread.join(grace)
        self._http = self._grpc = self._metrics = None
        self._threads.clear()
