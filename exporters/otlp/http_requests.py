"""A request handler that reads every request under a deadline and never answers a cut one.

The stdlib's ``BaseHTTPRequestHandler`` waits on each read for the socket timeout, with no limit on
the whole request, answers a request line cut short, and invites any upload with ``100 Continue``
before the application has looked at the head. Each of those is a way for a sender to hold a
thread, or to make a drain answer a request it cut (a 400 the sender would not retry). This base
fixes the three for the OTLP/HTTP receiver; the OTLP routes live in ``http_receiver``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Protocol

from otel_downstream.exporters.otlp.connections import Connections
from otel_downstream.exporters.otlp.http_answer import answer_bytes, linger
from otel_downstream.exporters.otlp.limits import DeadlineReader, RequestTimeout

__all__ = ["DeadlineRequestHandler"]

_logger = logging.getLogger("otel_downstream.serve")


class _Limits(Protocol):
    connections: Connections
    idle_timeout: float
    request_timeout: float


class DeadlineRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, ``TCP_NODELAY``, one deadline per request (head and body)."""

    server: _Limits  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    server_version = "otel-downstream"

    def version_string(self) -> str:
        return self.server_version

    disable_nagle_algorithm = True  # TCP_NODELAY: see the module docstring

    def setup(self) -> None:
        super().setup()
        # Every read waits at most idle_timeout between requests, and the time left within one.
        self.reader = DeadlineReader(
            self.connection,
            idle_timeout=self.server.idle_timeout,
            request_timeout=self.server.request_timeout,
        )
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
        ``SHUT_RD``) is closed without an answer, and a request past its deadline gets 408."""
        connections = self.server.connections
        self.reader.idle()
        self._expect_continue = False
        if not connections.idle(self.connection):
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
            message = f"{exc} ({self.server.request_timeout:g} s)\n".encode()
            with contextlib.suppress(OSError):
                self.wfile.write(
                    answer_bytes(
                        self,
                        408,
                        [("Content-Type", "text/plain"), ("Connection", "close")],
                        message,
                    )
                )
                linger(self.connection)
        except OSError:  # reset, broken pipe, or an idle keep-alive connection timing out
            self.close_connection = True
        if connections.draining:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        _logger.debug("%s " + format, self.address_string(), *args)
