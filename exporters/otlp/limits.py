"""Limits that keep slow or greedy OTLP/HTTP senders from starving the others.

Bodies are read before an export slot is taken (so a slow upload holds no slot), which moves the
memory bound from the slots to a byte budget shared by every connection, charged as bytes arrive
rather than from what ``Content-Length`` claims. Each request also has an overall deadline (head
and body): the socket timeout is shrunk to the time left before every read, so trickling one byte
per timeout cannot hold a thread for ever.
"""

from __future__ import annotations

import io
import ipaddress
import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

from otel_downstream.exporters.otlp.inflate import BodyError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "BodyBudget",
    "BudgetExceeded",
    "DeadlineReader",
    "RequestTimeout",
    "content_length",
    "source_key",
]

_DIGITS: Final = re.compile(r"[0-9]+")


def source_key(address: str) -> str:
    """The sender a per-source limit counts: an IPv4 address, or an IPv6 sender's /64.

    One IPv6 host is usually given a whole /64 and can pick a new address in it per connection, so
    counting exact addresses would let it be thousands of sources. An IPv4-mapped IPv6 address is
    its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address  # not an IP (a Unix socket path): its own key
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _BodyLimits(Protocol):
    max_body_bytes: int
    max_decompressed_bytes: int


class RequestTimeout(Exception):
    """The request (head and body) was not received within ``request_timeout_s``: answer 503 with ``Retry-After``."""


class BudgetExceeded(Exception):
    """Bodies being read hold the whole shared budget: answer 503 so the sender retries later."""


class BodyBudget:
    """Bytes of request bodies held at once across connections, reserved as they arrive, with a
    share per source address so that one sender's bodies cannot hold the whole budget."""

    def __init__(self, limit: int, per_source: int | None = None) -> None:
        self.limit = limit
        self.per_source = limit if per_source is None else min(per_source, limit)
        self._held = 0
        self._by_source: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, size: int, source: str = "") -> None:
        with self._lock:
            if self._held + size > self.limit:
                raise BudgetExceeded(
                    f"bodies being read hold max_body_bytes_in_flight={self.limit}; retry later"
                )
            mine = self._by_source.get(source, 0) + size
            if mine > self.per_source:
                raise BudgetExceeded(
                    f"this address's bodies being read hold their share ({self.per_source} "
                    "bytes) of max_body_bytes_in_flight; retry later"
                )
            self._held += size
            self._by_source[source] = mine

    def release(self, size: int, source: str = "") -> None:
        with self._lock:
            self._held -= size
            left = self._by_source.get(source, 0) - size
            if left > 0:
                self._by_source[source] = left
            else:
                self._by_source.pop(source, None)

    @classmethod
    def for_core(cls, core: _BodyLimits, limit: int) -> BodyBudget:
        """``serve``'s budget: a source's share is a quarter, but always room for one largest
        request (on the wire and inflated), so a lone big export from one sender still fits."""
        share = max(limit // 4, core.max_body_bytes + core.max_decompressed_bytes)
        return cls(limit, per_source=share)

    @property
    def held(self) -> int:
        """Bytes held now (for tests and the drain: 0 once every request let go)."""
        return self._held


def content_length(values: list[str] | None) -> int | None:
    """The one ``Content-Length`` of a request, or None when absent.

    Only ASCII digits are accepted: ``int()`` would also take ``+0``, ``-0``, ``0_0``, padding and
    non-ASCII digits, which a proxy in front may read differently (request smuggling). Several
    headers must agree, as RFC 9110 section 8.6 allows."""
    if not values:
        return None
    if any(_DIGITS.fullmatch(value) is None for value in values) or len(set(values)) > 1:
        shown = ", ".join(repr(value) for value in values)
        raise BodyError(400, f"Content-Length={shown}: expected one non-negative decimal integer")
    return int(values[0])


class DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose every read waits at most for the time the request has left.

    Between requests a read may wait ``idle_timeout`` (keep-alive); the first byte of a request, or
    ``start()``, sets the deadline ``request_timeout`` ahead, and ``idle()`` clears it once the
    answer is sent. ``eof`` tells whether the peer (or a drain's ``SHUT_RD``) ended the stream."""

    def __init__(self, sock: socket.socket, *, idle_timeout: float, request_timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle_timeout = idle_timeout
        self._request_timeout = request_timeout
        self.deadline: float | None = None
        self.eof = False

    def readable(self) -> bool:
        return True

    def start(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self._request_timeout

    def idle(self) -> None:
        self.deadline = None
        self._sock.settimeout(self._idle_timeout)

    def readinto(self, buffer: WriteableBuffer) -> int:
        deadline = self.deadline
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout("request not received within request_timeout_s")
            self._sock.settimeout(left)
        try:
            got = self._sock.recv_into(buffer)
        except TimeoutError:
            if deadline is None:
                raise  # idle keep-alive connection: closed without an answer
            raise RequestTimeout("request not received within request_timeout_s") from None
        if not got:
            self.eof = True
        elif deadline is None:
            self.start()
        return got
