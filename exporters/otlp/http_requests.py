"""HTTP/1.1 listeners that bound their connections and read every request under a deadline.

The stdlib's ``BaseHTTPRequestHandler`` waits on each read for the socket timeout, with no limit on
the whole request, answers a request line cut short, and invites any upload with ``100 Continue``
before the application has looked at the head. Each of those is a way for a sender to hold a
thread, or to make a drain answer a request it cut (a 400 the sender would not retry). This base
fixes the three for both ``serve`` listeners (OTLP/HTTP in ``http_receiver``, ``/metrics`` in
``service``). A new connection must send its first byte within ``first_byte_timeout`` (a kept-alive
one within ``idle_timeout``); until then it is the first to go when the listener is full
(``connections``). A request past its deadline is answered 503 with ``Retry-After``, which OTLP
senders retry (a 408 they must drop), and refusals linger so that the peer reads them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from otel_downstream.exporters.otlp.connections import Connections
from otel_downstream.exporters.otlp.http_answer import Lingerer, answer_bytes, linger, refusal
from otel_downstream.exporters.otlp.limits import DeadlineReader, RequestTimeout, source_key

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["CappedHTTPServer", "DeadlineRequestHandler"]

_logger = logging.getLogger("otel_downstream.serve")


class CappedHTTPServer(ThreadingHTTPServer):
    """One thread per connection, within ``connections``' caps; refusals are 503s that linger."""

    daemon_threads = True  # a drain waits for every connection thread, up to its grace
    allow_reuse_address = True
    request_queue_size = 1024  # the listen backlog: a burst of clients reconnecting at once

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[DeadlineRequestHandler],
        connections: Connections,
        *,
        idle_timeout: float,
        request_timeout: float,
        first_byte_timeout: float,
    ) -> None:
        self.connections = connections
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.first_byte_timeout = first_byte_timeout
        self.lingerer = Lingerer()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count the connection (evicting the oldest waiting one at the cap) or refuse it: the
        503 is sent and the socket lingers off this thread, so the peer reads it, not a reset."""
        refused = self.connections.open(source_key(str(client_address[0])), request)
        if refused is not None:
            self.lingerer.close_after(request, refusal(refused))
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.close(source_key(str(client_address[0])), request)


class _Reader(DeadlineReader):
    """Tells ``connections`` when the first byte of a request comes (no longer evictable)."""

    def __init__(self, sock: socket.socket, connections: Connections, **timeouts: float) -> None:
        super().__init__(sock, **timeouts)
        self._socket = sock
        self._connections = connections

    def readinto(self, buffer: WriteableBuffer) -> int:
        waiting = self.deadline is None
        got = super().readinto(buffer)
        if waiting and got:
            self._connections.started(self._socket)
        return got


class DeadlineRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, ``TCP_NODELAY``, one deadline per request (head and body)."""

    server: CappedHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "otel-downstream"

    def version_string(self) -> str:
        return self.server_version

    disable_nagle_algorithm = True  # TCP_NODELAY: see the module docstring

    def setup(self) -> None:
        super().setup()
        # Every read waits at most idle_timeout between requests, and the time left within one.
        self.reader = _Reader(
            self.connection,
            self.server.connections,
            idle_timeout=self.server.idle_timeout,
            request_timeout=self.server.request_timeout,
        )
        self._source = source_key(str(self.client_address[0]))
        self._first = True
        self.rfile.close()  # the stdlib's buffered file: ours reads through the deadline
        self.rfile = io.BufferedReader(self.reader, 65536)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` is answered only once auth, type and declared size passed
        (``_export``): the stdlib invites the upload before any check, so an unauthenticated or
        oversized body would be sent anyway."""
        self._expect_continue = True
        return True

    def handle_one_request(self) -> None:
        """One request; unlike the stdlib's, a head cut short (by the peer or a drain's
        ``SHUT_RD``) is closed without an answer, and a request past its deadline gets 503."""
        connections = self.server.connections
        self.reader.idle()
        if self._first:  # a new connection has less time than a kept-alive one to say something
            self._first = False
            self.connection.settimeout(
                min(self.server.first_byte_timeout, self.server.idle_timeout)
            )
        self._expect_continue = False
        self.command = ""  # not the last request's: an answer to HEAD has no body
        if not connections.idle(self.connection, self._source):
            self.close_connection = True
            return
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) <= 65536 and not self.raw_requestline.endswith(b"\n"):
                self.close_connection = True  # closed, or cut mid-line: nothing to answer
                return
            connections.busy(self.connection)
            self.reader.start()
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return
            if self.reader.eof:  # the head ended early: not a request we may answer
                self.close_connection = True
                return
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(
                    HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})"
                )
                return
            method()
        except RequestTimeout as exc:
            self.close_connection = True
            message = f"{exc} ({self.server.request_timeout:g} s); retry\n".encode()
            fields = [("Content-Type", "text/plain"), ("Retry-After", "1"), ("Connection", "close")]
            with contextlib.suppress(OSError):
                self.wfile.write(answer_bytes(self, 503, fields, message))
                linger(self.connection)
        except OSError:  # reset, broken pipe, or an idle keep-alive connection timing out
            self.close_connection = True
        if connections.draining:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        _logger.debug("%s " + format, self.address_string(), *args)
