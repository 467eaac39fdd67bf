"""OTLP/HTTP for ``serve``: ``POST /v1/traces`` answers as the OTLP spec says, plus health probes.

A stdlib ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive) keeps the service
free of web-framework dependencies; the work per request is protobuf decoding and accounting, which
dwarfs the HTTP parsing. Every body is bounded twice: on the wire (``max_body_bytes``, checked before
reading) and after decompression (``max_decompressed_bytes``, enforced while inflating, so a gzip
bomb costs at most the cap). The body is read whole before an export slot is taken, so a slow
upload holds a thread but never a slot; what bounds slow senders instead is the overall deadline
per request (``http_requests``), the byte budget of bodies being read with a share per source
address (``limits``), and the connection limits overall and per source (``connections``), which
also let a graceful stop answer every request it reads. Framing is strict (``body``). Each answer
leaves in one write on a ``TCP_NODELAY`` socket: headers and body sent apart would wait for the
peer's delayed ACK (about 40 ms) on every keep-alive export.
"""

from __future__ import annotations

import json
import logging
from typing import Final

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.otlp.body import BodyCut, BodyReader, FramingError, TooLarge
from otel_downstream.exporters.otlp.connections import Connections
from otel_downstream.exporters.otlp.decoded import DecodeFailure
from otel_downstream.exporters.otlp.export import ExportCore, Overloaded
from otel_downstream.exporters.otlp.http_answer import answer_bytes, linger
from otel_downstream.exporters.otlp.http_requests import CappedHTTPServer, DeadlineRequestHandler
from otel_downstream.exporters.otlp.inflate import BodyError, inflate
from otel_downstream.exporters.otlp.limits import (
    BodyBudget,
    BudgetExceeded,
    source_key,
)
from otel_downstream.exporters.otlp.status import status_body

__all__ = ["OtlpHttpServer"]

_logger = logging.getLogger("otel_downstream.serve")

TRACES_PATH: Final = "/v1/traces"
HEALTH_PATHS: Final = ("/healthz", "/readyz")
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"

_DISCARD_MAX: Final = 64 * 1024 * 1024
"""Bodies we refuse but still read and drop (up to this size) so the client sees our answer
instead of a connection reset; anything larger closes the connection."""


class OtlpHttpServer(CappedHTTPServer):
    """The OTLP/HTTP listener; ``core`` does auth, decoding and accounting."""

    def __init__(
        self,
        address: tuple[str, int],
        core: ExportCore,
        *,
        idle_timeout: float,
        request_timeout: float = 30.0,
        first_byte_timeout: float = 10.0,
        max_connections: int = 256,
        max_connections_per_source: int = 64,
        max_body_bytes_in_flight: int = 256 * 1024 * 1024,
        budget: BodyBudget | None = None,
    ) -> None:
        self.core = core
        connections = Connections(
            max_connections=max_connections, max_per_source=max_connections_per_source
        )
        # Shared with OTLP/gRPC when given (OtlpService): one budget of bodies held at once.
        self.budget = budget or BodyBudget.for_core(core, max_body_bytes_in_flight)
        super().__init__(
            address,
            _OtlpHandler,
            connections,
            idle_timeout=idle_timeout,
            request_timeout=request_timeout,
            first_byte_timeout=first_byte_timeout,
        )


class _OtlpHandler(DeadlineRequestHandler):
    """``POST /v1/traces`` and the health probes, on the deadline-keeping base."""

    server: OtlpHttpServer

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
        if self._expect_continue:  # not invited, so not sent: nothing to drop, but close
            self.close_connection = True
            return
        body = BodyReader(self.rfile, self.headers, self.server.budget)
        try:
            left = -1 if body.chunked() else (body.length() or 0)
        except FramingError:
            left = -1
        if not 0 <= left <= _DISCARD_MAX:
            self.close_connection = True
            return
        while left > 0:
            chunk = self.rfile.read1(min(left, 65536))
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
        body = BodyReader(
            self.rfile, self.headers, self.server.budget, source_key(str(self.client_address[0]))
        )
        try:
            body.check(core.max_body_bytes)
            if self._expect_continue:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            data = body.read(core.max_body_bytes)
            # Inflated bytes are charged to the shared budget as they are produced: a thousand
            # small gzip bombs cannot each hold max_decompressed_bytes before anything is counted.
            spans = inflate(
                data,
                self.headers.get("Content-Encoding", ""),
                core.max_decompressed_bytes,
                body.charge,
            )
            self.reader.idle()  # all of it is here; answers are written within idle_timeout
            self._account(spans, json_body)
        except BodyCut as exc:
            self.close_connection = True
            if not self.server.connections.draining:  # a drain's SHUT_RD cut it: no answer
                self._reply_status(400, str(exc), json_body)
        except TooLarge as exc:  # answered now, not after reading what we will not use
            self.close_connection = True
            self._reply_status(exc.status, str(exc), json_body)
            linger(self.connection)
        except BodyError as exc:
            self.close_connection = self.close_connection or isinstance(exc, FramingError)
            self._reply_status(exc.status, str(exc), json_body)
        except BudgetExceeded as exc:
            self.close_connection = True
            self._reply_status(503, str(exc), json_body, {"Retry-After": "1"})
            linger(self.connection)
        finally:
            body.release()

    def _account(self, body: bytes, json_body: bool) -> None:
        """Decode and account a body that was read whole; only this holds an export slot."""
        core, connections = self.server.core, self.server.connections
        if not connections.begin_export():  # the drain gave up: this could not be answered
            self.close_connection = True
            return
        try:
            with core.slot():
                outcome = core.export(body, json_body=json_body)
        except DecodeFailure as exc:  # 400, or 413 for a well-formed body over a span limit
            self._reply_status(exc.status, str(exc), json_body)
        except Overloaded as exc:
            self._reply_status(503, str(exc), json_body, {"Retry-After": "1"})
        except Exception as exc:  # a bug of ours: answer 500, keep serving
            report_fault("serve", exc)
            self.close_connection = True
            self._reply_status(500, f"internal error ({type(exc).__name__})", json_body)
        else:
            payload = json.dumps(outcome.to_json()).encode() if json_body else outcome.to_protobuf()
            self._reply(200, JSON if json_body else PROTOBUF, payload)
        finally:
            connections.end_export()

    # --- answers -------------------------------------------------------------------------------

    def _reply_status(
        self, status: int, message: str, json_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        payload = status_body(status, message, json_body)
        self._reply(status, JSON if json_body else PROTOBUF, payload, headers)

    def _reply(
        self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        fields = [("Content-Type", content_type), *(headers or {}).items()]
        if self.close_connection or self.server.connections.draining:
            fields.append(("Connection", "close"))
            self.close_connection = True
        self.log_request(status, len(payload))
        self.wfile.write(answer_bytes(self, status, fields, payload))
