"""OTLP/HTTP for ``serve``: ``POST /v1/traces`` answers as the OTLP spec says, plus health probes.

A stdlib ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive) keeps the service
free of web-framework dependencies; the work per request is protobuf decoding and accounting, which
dwarfs the HTTP parsing. Every body is bounded twice: on the wire (``max_body_bytes``, checked before
reading) and after decompression (``max_decompressed_bytes``, enforced while inflating, so a gzip
bomb costs at most the cap). Connections are tracked so a graceful stop can close idle keep-alive
connections while requests in flight finish.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.inflate import BodyError, inflate
from otel_downstream.exporters.otlp_connections import Connections
from otel_downstream.exporters.otlp_decode import DecodeFailure
from otel_downstream.exporters.otlp_export import ExportCore, Overloaded
from otel_downstream.exporters.otlp_status import status_body

__all__ = ["OtlpHttpServer"]

_logger = logging.getLogger("otel_downstream.serve")

TRACES_PATH: Final = "/v1/traces"
HEALTH_PATHS: Final = ("/healthz", "/readyz")
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"

_DISCARD_MAX: Final = 64 * 1024 * 1024
"""Bodies we refuse but still read and drop (up to this size) so the client sees our answer
instead of a connection reset; anything larger closes the connection."""

_TOO_MANY_CONNECTIONS: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
)


class OtlpHttpServer(ThreadingHTTPServer):
    """The OTLP/HTTP listener; ``core`` does auth, decoding and accounting."""

    daemon_threads = True  # drain() waits for requests in flight; idle sockets are closed by then
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        core: ExportCore,
        *,
        idle_timeout: float,
        max_connections: int = 256,
    ) -> None:
        self.core = core
        self.connections = Connections()
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._open = 0
        self._open_lock = threading.Lock()
        super().__init__(address, _OtlpHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, up to ``max_connections``; beyond that, 503 and close."""
        with self._open_lock:
            full = self._open >= self.max_connections
            if not full:
                self._open += 1
        if full:
            with contextlib.suppress(OSError):
                request.sendall(_TOO_MANY_CONNECTIONS)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open -= 1


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "otel-downstream"

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Slow or idle clients cannot pin a thread for longer than this.
        self.connection.settimeout(self.server.idle_timeout)

    def handle(self) -> None:
        try:
            super().handle()
        finally:
            self.server.connections.gone(self.connection)

    def handle_one_request(self) -> None:
        connections = self.server.connections
        if not connections.idle(self.connection):
            self.close_connection = True
            return
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            if self._counted:
                connections.done()
        if connections.draining:
            self.close_connection = True

    def parse_request(self) -> bool:
        self.server.connections.busy(self.connection)
        self._counted = True
        return super().parse_request()

    def log_message(self, format: str, *args: object) -> None:
        _logger.debug("%s " + format, self.address_string(), *args)

    # --- routing -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        if path == TRACES_PATH:
            self._export()
        else:
            self._other(path)

    def do_GET(self) -> None:
        self._other(self.path.partition("?")[0])

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _discard_body(self) -> None:
        """Read and drop a body we will not use, keeping the connection usable when cheap."""
        raw = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            left = int(raw) if raw is not None and not chunked else (0 if not chunked else -1)
        except ValueError:
            left = -1
        if not 0 <= left <= _DISCARD_MAX:
            self.close_connection = True
            return
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                self.close_connection = True
                return
            left -= len(chunk)

    def _other(self, path: str) -> None:
        self._discard_body()
        if path == TRACES_PATH:
            self._reply_status(
                405, f"method {self.command} not allowed; use POST", True, {"Allow": "POST"}
            )
        elif path in HEALTH_PATHS and self.command in ("GET", "HEAD"):
            ready = path == "/healthz" or not self.server.connections.draining
            self._reply(200 if ready else 503, "text/plain", b"ok\n" if ready else b"draining\n")
        else:
            self._reply_status(404, f"no such path {path!r}; OTLP traces go to {TRACES_PATH}", True)

    # --- POST /v1/traces -----------------------------------------------------------------------

    def _export(self) -> None:
        core = self.server.core
        media = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        json_body = media == JSON
        if not core.authorized(self.headers.get("Authorization")):
            self._discard_body()
            self._reply_status(
                401, "missing or wrong bearer token", json_body, {"WWW-Authenticate": "Bearer"}
            )
            return
        if media not in (PROTOBUF, JSON):
            self._discard_body()
            self._reply_status(415, f"Content-Type={media!r}: expected {PROTOBUF} or {JSON}", True)
            return
        try:
            # The slot is taken before the body is read: it bounds memory (bodies in flight) too.
            with core.slot():
                body = inflate(
                    self._read_body(core.max_body_bytes),
                    self.headers.get("Content-Encoding", ""),
                    core.max_decompressed_bytes,
                )
                outcome = core.export(body, json_body=json_body)
        except BodyError as exc:
            self._reply_status(exc.status, str(exc), json_body)
        except DecodeFailure as exc:
            self._reply_status(400, str(exc), json_body)
        except Overloaded as exc:
            self._discard_body()
            self._reply_status(503, str(exc), json_body, {"Retry-After": "1"})
        except Exception as exc:  # a bug of ours: answer 500, keep serving
            report_fault("serve", exc)
            self.close_connection = True
            self._reply_status(500, f"internal error ({type(exc).__name__})", json_body)
        else:
            payload = json.dumps(outcome.to_json()).encode() if json_body else outcome.to_protobuf()
            self._reply(200, JSON if json_body else PROTOBUF, payload)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True
            raise BodyError(411, "Content-Length or chunked Transfer-Encoding required")
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise BodyError(400, f"Content-Length={raw!r}: expected a non-negative integer")
        if length > limit:
            self._discard_body()
            raise BodyError(413, f"Content-Length={length} exceeds max_body_bytes={limit}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise BodyError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                size = -1
            if size < 0:
                self.close_connection = True
                raise BodyError(400, f"bad chunk size line {line[:40]!r}")
            if size == 0:
                while self.rfile.readline(8194) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return bytes(body)
            if len(body) + size > limit:
                self.close_connection = True
                raise BodyError(413, f"chunked body exceeds max_body_bytes={limit}")
            chunk = self.rfile.read(size)
            self.rfile.readline(3)
            if len(chunk) < size:
                self.close_connection = True
                raise BodyError(400, "chunked body ended early")
            body += chunk

    # --- answers -------------------------------------------------------------------------------

    def _reply_status(
        self, status: int, message: str, json_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        payload = status_body(status, message, json_body)
        self._reply(status, JSON if json_body else PROTOBUF, payload, headers)

    def _reply(
        self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection or self.server.connections.draining:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
