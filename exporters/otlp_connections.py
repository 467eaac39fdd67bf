"""Which OTLP/HTTP connections are idle or busy, so a graceful stop closes exactly the idle ones.

Keep-alive clients hold connections open between exports; on stop, those idle sockets are shut
down at once while requests in flight run to completion (``drain``).
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Connections"]


class Connections:
    """Which connections are idle between requests, so a drain can close exactly those."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()
        self._busy = 0
        self._drained = threading.Condition(self._lock)
        self.draining = False

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
            self._busy += 1

    def done(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0:
                self._drained.notify_all()

    def gone(self, sock: socket.socket) -> None:
        with self._lock:
            self._idle.discard(sock)

    def drain(self, timeout: float) -> bool:
        """Close idle connections, then wait until requests in flight finish (or time runs out)."""
        with self._lock:
            self.draining = True
            for sock in self._idle:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._idle.clear()
            return self._drained.wait_for(lambda: self._busy == 0, timeout)
