"""Reading one OTLP/HTTP request body: strict framing, ``max_body_bytes``, the shared byte budget.

The body is read in small pieces, each charged to the :class:`BodyBudget` before it is read, so
the memory held by bodies being uploaded is bounded by what actually arrived, whatever a
``Content-Length`` claims. A body cut short is told apart (:class:`BodyCut`) because during a drain
it means our own ``SHUT_RD`` ended it: that request is closed unanswered, never refused with a 400
the sender would not retry.
"""

from __future__ import annotations

import re
from email.message import Message
from io import BufferedIOBase
from typing import Final

from otel_downstream.exporters.otlp.inflate import BodyError
from otel_downstream.exporters.otlp.limits import BodyBudget, content_length

__all__ = ["BodyCut", "BodyReader", "FramingError", "TooLarge"]

_PIECE: Final = 65536
_CHUNK_SIZE: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
"""RFC 9112 chunk-size: hex digits only. ``int(x, 16)`` would also take ``0x0``, ``+0``, ``-0``,
``0_0`` and padding, which a proxy in front may read differently (request smuggling)."""


class FramingError(BodyError):
    """Where the body ends is unknown or lost: answer, then close the connection."""


class BodyCut(FramingError):
    """The stream ended inside the body (the peer closed, or a drain's ``SHUT_RD``)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class TooLarge(BodyError):
    """The declared length is over ``max_body_bytes``: refused before reading any of it."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyReader:
    """One request's body; ``release()`` gives its bytes back to the budget once it is used."""

    def __init__(
        self, rfile: BufferedIOBase, headers: Message, budget: BodyBudget, source: str = ""
    ) -> None:
        self._rfile = rfile
        self._headers = headers
        self._budget = budget
        self._source = source
        self.reserved = 0

    def chunked(self) -> bool:
        """Whether the body is chunked; any other transfer coding, or chunked beside a
        ``Content-Length``, is a FramingError: two readings of where a body ends are how requests
        are smuggled past a proxy (RFC 9112 section 6.1 lets a server refuse them, then close)."""
        codings = self._headers.get_all("Transfer-Encoding")
        if not codings:
            return False
        if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
            raise FramingError(400, f"Transfer-Encoding={', '.join(codings)!r}: only chunked")
        if self._headers.get_all("Content-Length"):
            raise FramingError(400, "both Transfer-Encoding and Content-Length: send one")
        return True

    def length(self) -> int | None:
        """The declared length (None when chunked or absent); a malformed one is a FramingError."""
        if self.chunked():
            return None
        try:
            return content_length(self._headers.get_all("Content-Length"))
        except BodyError as exc:
            raise FramingError(exc.status, str(exc)) from None

    def check(self, limit: int) -> None:
        """Framing and the declared size, before any of the body is read (or invited with
        ``100 Continue``): a refusal costs the sender no upload and us no reading."""
        length = self.length()
        if length is None and not self.chunked():
            raise FramingError(411, "Content-Length or chunked Transfer-Encoding required")
        if length is not None and length > limit:
            raise TooLarge(f"Content-Length={length} exceeds max_body_bytes={limit}")

    def charge(self, size: int) -> None:
        """Count ``size`` more bytes held for this request (e.g. the inflated copy)."""
        self._budget.reserve(size, self._source)
        self.reserved += size

    def release(self) -> None:
        self._budget.release(self.reserved, self._source)
        self.reserved = 0

    def read(self, limit: int) -> bytes:
        if self.chunked():
            return self._read_chunked(limit)
        length = self.length()
        if length is None:
            raise FramingError(411, "Content-Length or chunked Transfer-Encoding required")
        if length > limit:
            raise TooLarge(f"Content-Length={length} exceeds max_body_bytes={limit}")
        pieces = self._read_exactly(length)
        if sum(map(len, pieces)) < length:
            raise BodyCut(f"body ended after {sum(map(len, pieces))} of {length} bytes")
        return b"".join(pieces)

    def _read_exactly(self, size: int) -> list[bytes]:
        pieces: list[bytes] = []
        while size > 0:
            want = min(size, _PIECE)
            self.charge(want)
            piece = self._rfile.read1(want)
            self._budget.release(want - len(piece), self._source)
            self.reserved -= want - len(piece)
            if not piece:
                break
            pieces.append(piece)
            size -= len(piece)
        return pieces

    def _read_chunked(self, limit: int) -> bytes:
        pieces: list[bytes] = []
        total = 0
        while True:
            line = self._rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise BodyCut("chunked body ended early")
            digits = line.split(b";", 1)[0].rstrip(b"\r\n").rstrip(b" \t")  # BWS before an ext
            if _CHUNK_SIZE.fullmatch(digits) is None:
                raise FramingError(400, f"bad chunk size line {line[:40]!r}")
            size = int(digits, 16)
            if size == 0:
                while self._rfile.readline(8194) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(pieces)
            if total + size > limit:
                raise FramingError(413, f"chunked body exceeds max_body_bytes={limit}")
            chunk = self._read_exactly(size)
            got = sum(map(len, chunk))
            if got < size or not self._rfile.readline(3).endswith(b"\n"):
                raise BodyCut("chunked body ended early")
            pieces += chunk
            total += got
