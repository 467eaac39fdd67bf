"""Request bodies decompressed with a hard cap, so a gzip bomb costs at most the cap.

``serve`` accepts ``gzip`` (several members allowed) and ``deflate`` (zlib-wrapped as RFC 9110 says,
or raw as some clients send it). Output is produced at most ``cap + 1`` bytes at a time, so memory
stays bounded whatever the compression ratio; a truncated or corrupt stream is a 400, an oversized
one a 413, an unknown encoding a 415.
"""

from __future__ import annotations

import zlib

__all__ = ["BodyError", "inflate"]


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
    out = bytearray()
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, cap + 1 - len(out))
        except zlib.error as exc:
            raise BodyError(400, f"Content-Encoding={encoding}: corrupt body ({exc})") from None
        if len(out) > cap:
            raise BodyError(413, f"decompressed body exceeds max_decompressed_bytes={cap}")
        if not inflater.eof:
            raise BodyError(400, f"Content-Encoding={encoding}: truncated body")
        rest = inflater.unused_data  # gzip allows several members back to back
        if wbits != 16 + zlib.MAX_WBITS:
            if rest:
                raise BodyError(400, f"Content-Encoding={encoding}: trailing bytes after the body")
            break
    return bytes(out)
