"""HTTP answers written in one piece, and closes that do not destroy them.

Both ``serve`` listeners set ``TCP_NODELAY`` and send each answer (status line, headers, body) in a
single write: headers and body written apart make the body wait for the peer's delayed ACK, some
40 ms per answer on a keep-alive connection.
"""

from __future__ import annotations

import contextlib
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Final

__all__ = ["answer_bytes", "linger", "refusal"]

_LINGER_S: Final = 1.0
"""After an answer that leaves input unread, how long to drop what still comes before closing: a
close with unread input sends a reset, which can destroy the answer before the peer reads it."""


def answer_bytes(
    handler: BaseHTTPRequestHandler,
    status: int,
    headers: list[tuple[str, str]],
    payload: bytes,
) -> bytes:
    """A whole answer (status line, headers, body) to send in one write."""
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Server: {handler.version_string()}",
        f"Date: {handler.date_time_string()}",
        *(f"{name}: {value}" for name, value in headers),
        f"Content-Length: {len(payload)}",
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if handler.command == "HEAD" else head + payload


def refusal(reason: str) -> bytes:
    text = f"{reason}\n".encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode()
        + text
    )


def linger(sock: socket.socket) -> None:
    """Half-close, then drop input for a moment so the peer reads our answer, not a reset."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        end = time.monotonic() + _LINGER_S
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                break
