"""``otel-downstream serve``: OTLP/HTTP and OTLP/gRPC in, footprint metrics on ``/metrics`` out.

A collector (or any OTLP exporter) sends every span here; each span is decoded straight from the
protobuf classes and handed to the same accounting core the in-process exporter uses, scaled by its
sampling weight. Both transports share one :class:`ExportCore`, so auth, size limits, backpressure
and partial-success answers behave the same whichever way the spans arrive.
"""

from __future__ import annotations

import gzip
import logging
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.metrics.exposition import safe_registry
from otel_downstream.exporters.otlp.connections import Connections
from otel_downstream.exporters.otlp.decode import MAX_SPAN_BYTES, MAX_SPANS_PER_EXPORT
from otel_downstream.exporters.otlp.export import ExportCore, SpanAccounting
from otel_downstream.exporters.otlp.grpc_receiver import GrpcReceiver
from otel_downstream.exporters.otlp.http_answer import answer_bytes
from otel_downstream.exporters.otlp.http_receiver import OtlpHttpServer
from otel_downstream.exporters.otlp.http_requests import CappedHTTPServer, DeadlineRequestHandler
from otel_downstream.exporters.otlp.limits import BodyBudget

__all__ = ["OtlpService", "ServiceConfig"]

_logger = logging.getLogger("otel_downstream.serve")

MIB: Final = 1024 * 1024


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
    max_connections: int = 256
    max_connections_per_source: int = 64
    max_spans_per_export: int = MAX_SPANS_PER_EXPORT
    max_span_bytes: int = MAX_SPAN_BYTES
    max_body_bytes_in_flight: int = 256 * MIB
    idle_timeout_s: float = 30.0
    request_timeout_s: float = 30.0
    first_byte_timeout_s: float = 10.0
    drain_timeout_s: float = 10.0


class _MetricsServer(CappedHTTPServer):
    """One thread per connection, as many as scrapers and probes need and no more (2,000 idle
    connections made 2,000 threads): at most 64, 16 per address (``source_key``), each request
    under one deadline; past 16 from one address 503, at 64 the oldest waiting one is evicted."""

    MAX_CONNECTIONS: Final = 64
    MAX_PER_SOURCE: Final = 16

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        *,
        idle_timeout: float = 30.0,
        request_timeout: float = 30.0,
        first_byte_timeout: float = 10.0,
    ) -> None:
        self.registry = registry
        self.draining = False
        super().__init__(
            address,
            _MetricsHandler,
            Connections(max_connections=self.MAX_CONNECTIONS, max_per_source=self.MAX_PER_SOURCE),
            idle_timeout=idle_timeout,
            request_timeout=request_timeout,
            first_byte_timeout=first_byte_timeout,
        )


class _MetricsHandler(DeadlineRequestHandler):
    """``/metrics`` (Prometheus text or OpenMetrics, gzip when asked), ``/healthz``, ``/readyz``,
    on the deadline-keeping base (``TCP_NODELAY``, one write per answer)."""

    server: _MetricsServer

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        headers: dict[str, str] = {}
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                status, payload = 200, encoder(self.server.registry)
            except Exception as exc:  # a scrape must get an answer that says why, never a reset
                report_fault("serve", exc)
                status, content_type = 500, "text/plain"
                payload = f"exposition failed ({type(exc).__name__}); see the serve log\n".encode()
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                payload, headers["Content-Encoding"] = gzip.compress(payload, 1), "gzip"
        elif path == "/healthz" or (path == "/readyz" and not self.server.draining):
            status, payload, content_type = 200, b"ok\n", "text/plain"
        elif path == "/readyz":
            status, payload, content_type = 503, b"draining\n", "text/plain"
        else:
            status, payload, content_type = 404, b"not found; try /metrics\n", "text/plain"
        self.log_request(status, len(payload))
        fields = [("Content-Type", content_type), *headers.items()]
        self.wfile.write(answer_bytes(self, status, fields, payload))

    do_HEAD = do_GET


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
            from otel_downstream.exporters.accounting.accountant import Accountant

            accountant = Accountant(registry=self.registry)
        self.accountant = accountant
        self.core = ExportCore(
            accountant,
            auth_token=self.config.auth_token,
            max_body_bytes=self.config.max_body_bytes,
            max_decompressed_bytes=self.config.max_decompressed_bytes,
            max_concurrent_exports=self.config.max_concurrent_exports,
            max_spans_per_export=self.config.max_spans_per_export,
            max_span_bytes=self.config.max_span_bytes,
        )
        # Request bodies held at once, OTLP/HTTP and OTLP/gRPC together, with a share per source.
        self.budget = BodyBudget.for_core(self.core, self.config.max_body_bytes_in_flight)
        self._http: OtlpHttpServer | None = None
        self._grpc: GrpcReceiver | None = None
        self._metrics: _MetricsServer | None = None
        self._threads: list[threading.Thread] = []
        self.ports: dict[str, int] = {}

    def start(self) -> dict[str, int]:
        """Bind and serve; returns the bound ports by listener name (0 in the config picks one)."""
        cfg = self.config
        try:
            if cfg.metrics_port >= 0:
                self._metrics = _MetricsServer(
                    (cfg.host, cfg.metrics_port),
                    safe_registry(self.registry),
                    idle_timeout=cfg.idle_timeout_s,
                    request_timeout=cfg.request_timeout_s,
                    first_byte_timeout=cfg.first_byte_timeout_s,
                )
                self._serve(self._metrics, "metrics")
            if cfg.otlp_http_port >= 0:
                self._http = OtlpHttpServer(
                    (cfg.host, cfg.otlp_http_port),
                    self.core,
                    idle_timeout=cfg.idle_timeout_s,
                    request_timeout=cfg.request_timeout_s,
                    first_byte_timeout=cfg.first_byte_timeout_s,
                    max_connections=cfg.max_connections,
                    max_connections_per_source=cfg.max_connections_per_source,
                    budget=self.budget,
                )
                self._serve(self._http, "otlp_http")
            if cfg.otlp_grpc_port >= 0:
                self._grpc = GrpcReceiver(
                    self.core,
                    host=cfg.host,
                    port=cfg.otlp_grpc_port,
                    max_message_bytes=cfg.max_decompressed_bytes,
                    max_concurrent_exports=cfg.max_concurrent_exports,
                    max_connections=cfg.max_connections,
                    receive_timeout_s=cfg.request_timeout_s,
                    idle_timeout_s=cfg.idle_timeout_s,
                    budget=self.budget,
                )
                self.ports["otlp_grpc"] = self._grpc.start()
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
        if self._grpc is not None:
            self._grpc.stop(grace)
        if self._http is not None:
            self._http.shutdown()
            if not self._http.connections.drain(grace):
                _logger.warning(
                    "otel-downstream serve: OTLP/HTTP requests still running after %ss", grace
                )
            self._http.server_close()
        if self._grpc is not None and not self._grpc.join():
            _logger.warning("otel-downstream serve: the OTLP/gRPC drain did not end")
        try:
            self.accountant.flush(release=True)  # the last scrape may follow: nothing held
        except Exception as exc:  # stop must still close the metrics listener and join threads
            report_fault("serve", exc)
        if self._metrics is not None:
            self._metrics.shutdown()
            self._metrics.server_close()
        for thread in self._threads:
            thread.join(grace)
        self._http = self._grpc = self._metrics = None
        self._threads.clear()
