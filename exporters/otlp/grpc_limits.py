"""What bounds OTLP/gRPC streams before they export: streams waiting for their message, per
connection and per source address, and the retryable refusal.

HTTP/2 carries up to ``grpc.max_concurrent_streams`` streams on one connection, and a stream that
opens and never sends its message holds only a coroutine here (until the receive deadline); but a
stalled stream must not hold anything others need. So streams waiting for their message are
counted apart from exports, per connection (grpc's peer string names one: address and port) and
per source (an IPv4 address or an IPv6 /64, as OTLP/HTTP counts connections), and a stream past
either count is refused at once with ``RESOURCE_EXHAUSTED`` and a ``RetryInfo``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from typing import Final

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otel_downstream.exporters.otlp.limits import source_key

__all__ = [
    "BUSY",
    "STOPPING",
    "WAITING_PER_CONNECTION",
    "WAITING_PER_SOURCE",
    "AccountPace",
    "TooLate",
    "Waiting",
    "peer_host",
    "retryable",
]

BUSY: Final = "too many exports in flight; retry later"
STOPPING: Final = "the receiver is shutting down; retry later"

WAITING_PER_CONNECTION: Final = 96
"""Streams of one connection waiting for their message (below grpc's 128 streams per connection,
so a connection keeps room for messages that do arrive)."""
WAITING_PER_SOURCE: Final = 256
"""Streams of one source address waiting for their message, over all its connections."""

_ANSWER_S: Final = 0.1
"""Of the sender's deadline, what the answer's way back (event loop and network) may take."""


class AccountPace:
    """Accounting one batch at a time, each only if it can be answered within its deadline.

    The accountant (and the interpreter) serialize accounting anyway, so batches taking turns
    lose no throughput, and a batch alone takes a predictable time: its spans at the recent
    cost per span. A batch whose sender's deadline would pass first is refused, not counted."""

    def __init__(self, per_span_s: float = 20e-6) -> None:
        self.per_span_s = per_span_s
        self._turn = threading.Lock()

    @contextlib.contextmanager
    def turn(self, spans: int, deadline: float | None) -> Iterator[None]:
        """Hold the accounting turn for ``spans`` spans; :class:`TooLate` if the deadline (a
        ``time.monotonic()``) would pass before the answer leaves."""
        if deadline is None:
            self._turn.acquire()
        elif not self._turn.acquire(timeout=max(deadline - self._needed(spans), 0.0)):
            raise TooLate("the sender's deadline passed while the export waited to account")
        try:
            started = time.monotonic()
            if deadline is not None and started + self._needed(spans) > deadline:
                raise TooLate("too little of the sender's deadline left to account the batch")
            yield
            if spans:
                took = (time.monotonic() - started) / spans
                self.per_span_s += (took - self.per_span_s) / 4
        finally:
            self._turn.release()

    def _needed(self, spans: int) -> float:
        return _ANSWER_S + spans * self.per_span_s


class TooLate(Exception):
    """The sender's deadline is past, or too close for the answer to reach it."""


@functools.lru_cache(maxsize=64)
def _retry_details(message: str) -> tuple[tuple[str, bytes], ...]:
    detail = AnyProto()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=1)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


def retryable(message: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """``context.abort`` arguments: ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` of one second."""
    return grpc.StatusCode.RESOURCE_EXHAUSTED, message, _retry_details(message)


def peer_host(peer: str) -> str:
    """The address in grpc's peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, ``unix:/p``)."""
    scheme, _, rest = peer.partition(":")
    if scheme == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0].replace("%25", "%")
    if scheme == "ipv4":
        return rest.rpartition(":")[0]
    return peer


class Waiting:
    """Streams waiting for their message, per connection and per source; event loop thread only."""

    def __init__(
        self, per_connection: int = WAITING_PER_CONNECTION, per_source: int = WAITING_PER_SOURCE
    ) -> None:
        self.per_connection = per_connection
        self.per_source = per_source
        self._by_connection: dict[str, int] = {}
        self._by_source: dict[str, int] = {}

    @staticmethod
    def source(peer: str) -> str:
        return source_key(peer_host(peer))

    def enter(self, peer: str) -> str | None:
        """Count a stream of ``peer`` as waiting; or, past a cap, the refusal's message (and the
        stream is not counted)."""
        source = self.source(peer)
        if self._by_connection.get(peer, 0) >= self.per_connection:
            return (
                f"{self.per_connection} streams of this connection are waiting for their "
                "message; retry later"
            )
        if self._by_source.get(source, 0) >= self.per_source:
            return (
                f"{self.per_source} streams from this address are waiting for their message; "
                "retry later"
            )
        self._by_connection[peer] = self._by_connection.get(peer, 0) + 1
        self._by_source[source] = self._by_source.get(source, 0) + 1
        return None

    def leave(self, peer: str) -> None:
        for counts, key in ((self._by_connection, peer), (self._by_source, self.source(peer))):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    def held(self) -> int:
        """Streams waiting now (0 once every stream has its message or an answer)."""
        return sum(self._by_connection.values())
