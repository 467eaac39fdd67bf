"""Request bodies decompressed with a hard cap, so a gzip bomb costs at most the cap.

``serve`` accepts ``gzip`` (several members allowed) and ``deflate`` (zlib-wrapped as RFC 9110 says,
or raw as some clients send it). Output is produced at most ``cap + 1`` bytes at a time, so memory
stays bounded whatever the compression ratio; a truncated or corrupt stream is a 400, an oversized
one a 413, an unknown encoding a 415.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["BodyError", "inflate"]

_FIRST_PIECE: Final = 256
_MAX_PIECE: Final = 1 << 20


class BodyError(Exception):
    """A request body we refuse: the HTTP status and a message naming what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def inflate(body: bytes, encoding: str, cap: int) -> bytes:
    """Decompress ``gzip``/``deflate`` bodies, never producing more than ``cap`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > cap:
            raise BodyError(413, f"body of {len(body)} bytes exceeds max_decompressed_bytes={cap}")
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110 "deflate" is the zlib format; some clients send raw deflate, so accept both.
        wbits = zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS
    else:
        raise BodyError(415, f"Content-Encoding={encoding!r}: expected gzip, deflate or identity")
    if not body:
        return body
    if wbits != 16 + zlib.MAX_WBITS:
        out, used = _member(memoryview(body), 0, bytearray(), wbits=wbits, cap=cap, enc=encoding)
        if used != len(body):
            raise BodyError(400, f"Content-Encoding={encoding}: trailing bytes after the body")
        return bytes(out)
    out = bytearray()
    view, at = memoryview(body), 0
    while at < len(body):  # gzip allows several members back to back
        out, at = _member(view, at, out, wbits=wbits, cap=cap, enc=encoding)
    return bytes(out)


def _member(
    view: memoryview, at: int, out: bytearray, *, wbits: int, cap: int, enc: str
) -> tuple[bytearray, int]:
    """Inflate the one stream starting at ``view[at]``: the output so far and where it ended.

    zlib copies whatever input it did not use (``unused_data``) when a stream ends; handing it the
    whole rest of the body made many small members quadratic. Input goes in pieces that start
    small and double while the stream lasts, so each copy is at most twice what the member used.
    """
    inflater = zlib.decompressobj(wbits)
    piece = _FIRST_PIECE
    while not inflater.eof:
        if at >= len(view):
            raise BodyError(400, f"Content-Encoding={enc}: truncated body")
        data = view[at : at + piece]
        try:
            out += inflater.decompress(data, cap + 1 - len(out))
        except zlib.error as exc:
            raise BodyError(400, f"Content-Encoding={enc}: corrupt body ({exc})") from None
        if len(out) > cap:
            raise BodyError(413, f"decompressed body exceeds max_decompressed_bytes={cap}")
        at += len(data) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
        piece = min(piece * 2, _MAX_PIECE)
    return out, at
