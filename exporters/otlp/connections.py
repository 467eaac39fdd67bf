"""Which connections are open, waiting, idle or answering, so the cap evicts only connections that
have nothing in flight and a graceful stop loses no answer.

Both ``serve`` HTTP listeners count connections overall and per source address (``source_key``).
Past the per-source cap the newcomer is refused (503): that source already holds its share. At the
overall cap the oldest connection that is *waiting* (accepted or kept alive, but no byte of a
request sent yet) is evicted instead, as nginx reuses idle keep-alive connections: otherwise a few
addresses holding idle sockets would lock every sender out until their timeouts. Eviction is
``SHUT_RD``: the reader sees the end of the stream and closes without an answer, as it would when
the peer closed. An evicted connection gives its place back at once; its thread, which ends as soon
as it wakes, is still waited for by the drain.

On stop, idle readers are woken with ``SHUT_RD`` only: a request line already read can still be
answered (the write side stays open), while one the shutdown cut is closed unanswered and never
accounted. The drain then waits for every connection thread, not only for requests already parsed,
because a thread that has just read a request line is not yet "busy". If threads are still reading
when the grace runs out, no new export is accounted (it could not be answered before exit) and
exports already accounting get the same grace to send their answer.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

__all__ = ["Connections"]


class Connections:
    """Open connections (overall and per source), the idle ones, and exports being answered."""

    def __init__(self, *, max_connections: int = 256, max_per_source: int = 64) -> None:
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()  # reading a request line: the drain wakes these
        self._waiting: dict[socket.socket, str] = {}  # no byte of a request yet, oldest first
        self._evicted: set[socket.socket] = set()
        self._threads = 0  # connection threads alive (evicted ones included): what drain awaits
        self._open = 0  # places taken (evicted connections gave theirs back)
        self._by_source: dict[str, int] = {}
        self._exporting = 0
        self._changed = threading.Condition(self._lock)
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self.evictions = 0
        self.draining = False
        self._closed = False

    def open(self, source: str, sock: socket.socket) -> str | None:
        """Count a new connection from ``source``; the reason to refuse it, if any.

        At the overall cap, the oldest waiting connection is evicted to make room."""
        with self._lock:
            if self._by_source.get(source, 0) >= self.max_per_source:
                return "too many connections from this address"
            if self._open >= self.max_connections and not self._evict_oldest():
                return "too many connections"
            self._threads += 1
            self._take(source)
            self._waiting[sock] = source
            return None

    def _take(self, source: str) -> None:
        self._open += 1
        self._by_source[source] = self._by_source.get(source, 0) + 1

    def _give_back(self, source: str) -> None:
        self._open -= 1
        left = self._by_source[source] - 1
        if left:
            self._by_source[source] = left
        else:
            del self._by_source[source]

    def _evict_oldest(self) -> bool:
        """Shut the oldest waiting connection that has nothing to read (bytes that came before its
        thread saw them are a request begun; an end of stream, a connection about to close)."""
        for sock in self._waiting:
            if not _readable(sock):
                break
        else:
            return False
        source = self._waiting.pop(sock)
        self._idle.discard(sock)
        self._evicted.add(sock)
        self._give_back(source)
        self.evictions += 1
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        return True

    def close(self, source: str, sock: socket.socket) -> None:
        """The connection's thread is done with it."""
        with self._lock:
            self._idle.discard(sock)
            self._waiting.pop(sock, None)
            if sock in self._evicted:
                self._evicted.discard(sock)
            else:
                self._give_back(source)
            self._threads -= 1
            self._changed.notify_all()

    def idle(self, sock: socket.socket, source: str) -> bool:
        """About to wait for a request: the connection may be woken by a drain or evicted until
        its first byte comes. False when draining or evicted (the handler must close it)."""
        with self._lock:
            if self.draining or sock in self._evicted:
                return False
            self._idle.add(sock)
            self._waiting.setdefault(sock, source)  # a new waiter is the newest: evicted last
            return True

    def started(self, sock: socket.socket) -> None:
        """The first byte of a request came: no longer evictable (a drain still cuts its line)."""
        with self._lock:
            self._waiting.pop(sock, None)

    def busy(self, sock: socket.socket) -> None:
        """A whole request line was read: it will be answered."""
        with self._lock:
            self._idle.discard(sock)
            self._waiting.pop(sock, None)

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
            self._waiting.clear()
            if self._changed.wait_for(lambda: self._threads == 0, timeout):
                return True
            self._closed = True
            self._changed.wait_for(lambda: self._exporting == 0, timeout)
            return False


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed meanwhile: not a candidate
        return True
