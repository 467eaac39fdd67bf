"""Which OTLP/HTTP connections are open, idle or answering, so a graceful stop loses no answer.

Keep-alive clients hold connections open between exports. On stop, idle readers are woken with
``SHUT_RD`` only: a request line already read can still be answered (the write side stays open),
while one the shutdown cut is closed unanswered and never accounted. The drain then waits for
every connection thread, not only for requests already parsed, because a thread that has just read
a request line is not yet "busy". If threads are still reading when the grace runs out, no new
export is accounted (it could not be answered before exit) and exports already accounting get the
same grace to send their answer.

Connections are also counted per source address, so one sender cannot take every thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Connections"]


class Connections:
    """Open connections (overall and per source), the idle ones, and exports being answered."""

    def __init__(self, *, max_connections: int = 256, max_per_source: int = 64) -> None:
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()
        self._open = 0
        self._by_source: dict[str, int] = {}
        self._exporting = 0
        self._changed = threading.Condition(self._lock)
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self.draining = False
        self._closed = False

    def open(self, source: str) -> str | None:
        """Count a new connection from ``source``; the reason to refuse it, if any."""
        with self._lock:
            if self._open >= self.max_connections:
                return "too many connections"
            if self._by_source.get(source, 0) >= self.max_per_source:
                return "too many connections from this address"
            self._open += 1
            self._by_source[source] = self._by_source.get(source, 0) + 1
            return None

    def close(self, source: str, sock: socket.socket) -> None:
        with self._lock:
            self._idle.discard(sock)
            self._open -= 1
            left = self._by_source[source] - 1
            if left:
                self._by_source[source] = left
            else:
                del self._by_source[source]
            self._changed.notify_all()

    def idle(self, sock: socket.socket) -> bool:
        """Mark a connection idle; False when draining (the handler must close it instead)."""
        with self._lock:
            if self.draining:
                return False
            self._idle.add(sock)
            return True

    def busy(self, sock: socket.socket) -> None:
        with self._lock:
            self._idle.discard(sock)

    def begin_export(self) -> bool:
        """Whether a body that was read may be accounted: not once a drain has given up waiting."""
        with self._lock:
            if self._closed:
                return False
            self._exporting += 1
            return True

    def end_export(self) -> None:
        """The export's answer is sent (or failed): the drain need not wait for it any more."""
        with self._lock:
            self._exporting -= 1
            self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wake idle readers, wait for every connection thread; False if some were still open."""
        with self._lock:
            self.draining = True
            for sock in self._idle:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            self._idle.clear()
            if self._changed.wait_for(lambda: self._open == 0, timeout):
                return True
            self._closed = True
            self._changed.wait_for(lambda: self._exporting == 0, timeout)
            return False
