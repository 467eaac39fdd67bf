"""HTTP answers written in one piece, and closes that do not destroy them.

Both ``serve`` listeners set ``TCP_NODELAY`` and send each answer (status line, headers, body) in a
single write: headers and body written apart make the body wait for the peer's delayed ACK, some
40 ms per answer on a keep-alive connection.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Final

__all__ = ["Lingerer", "answer_bytes", "linger", "refusal"]

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


class Lingerer:
    """Refusals lingered off the accepting thread: each socket is half-closed, then its input is
    dropped for ``_LINGER_S`` (or until the peer closes) by one short-lived thread, so a sender still
    writing reads the 503 instead of a reset. Past ``limit`` sockets lingering at once, the newest
    are closed at once (each holds a file descriptor for up to ``_LINGER_S``)."""

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._new: list[socket.socket] = []
        self._count = 0
        self._thread: threading.Thread | None = None

    def close_after(self, sock: socket.socket, answer: bytes) -> None:
        """Send ``answer`` (small: it fits the new socket's send buffer), then linger and close."""
        try:
            sock.setblocking(False)
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        with self._lock:
            if self._count >= self.limit:
                sock.close()
                return
            self._count += 1
            self._new.append(sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="linger", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        deadlines: dict[socket.socket, float] = {}
        try:
            while True:
                with self._lock:
                    new, self._new = self._new, []
                    if not new and not deadlines:
                        self._thread = None
                        return
                for sock in new:
                    deadlines[sock] = time.monotonic() + _LINGER_S
                    selector.register(sock, selectors.EVENT_READ)
                done = [sock for sock, end in deadlines.items() if end <= time.monotonic()]
                for key, _ in selector.select(0.05):
                    sock = key.fileobj  # type: ignore[assignment]
                    try:
                        if sock.recv(65536):
                            continue
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                    done.append(sock)
                for sock in set(done):
                    selector.unregister(sock)
                    del deadlines[sock]
                    sock.close()
                with self._lock:
                    self._count -= len(set(done))
        except BaseException:  # never leave sockets open, nor a dead thread that blocks the next
            with self._lock:
                for sock in [*deadlines, *self._new]:
                    sock.close()
                self._new, self._count, self._thread = [], 0, None
            raise
        finally:
            selector.close()
