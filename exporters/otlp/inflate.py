"""Request bodies decompressed with a hard cap, so a gzip bomb costs at most the cap.

``serve`` accepts ``gzip`` (several members allowed) and ``deflate`` (zlib-wrapped as RFC 9110 says,
or raw as some clients send it). Output is produced at most ``cap + 1`` bytes at a time, so memory
stays bounded whatever the compression ratio; a truncated or corrupt stream is a 400, an oversized
one a 413, an unknown encoding a 415.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Final

__all__ = ["BodyError", "inflate"]

_FIRST_PIECE: Final = 256
_MAX_PIECE: Final = 1 << 20
_OUT_STEP: Final = 1 << 20
"""Output produced per ``decompress`` call, so ``charge`` hears of memory before much is used."""

Charge = Callable[[int], None]
"""Told the size of each piece of output as it is produced; raising stops the inflation. ``serve``
charges its shared byte budget, so concurrent inflations cannot each hold the cap at once."""


def _no_charge(size: int) -> None:
    pass


class BodyError(Exception):
    """A request body we refuse: the HTTP status and a message naming what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def inflate(body: bytes, encoding: str, cap: int, charge: Charge = _no_charge) -> bytes:
    """Decompress ``gzip``/``deflate`` bodies, never producing more than ``cap`` bytes, and
    ``charge`` each piece of output (at most 1 MiB) as it is produced."""
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
        out, used = _member(
            memoryview(body), 0, bytearray(), wbits=wbits, cap=cap, enc=encoding, charge=charge
        )
        if used != len(body):
            raise BodyError(400, f"Content-Encoding={encoding}: trailing bytes after the body")
        return bytes(out)
    out = bytearray()
    view, at = memoryview(body), 0
    while at < len(body):  # gzip allows several members back to back
        out, at = _member(view, at, out, wbits=wbits, cap=cap, enc=encoding, charge=charge)
    return bytes(out)


def _member(
    view: memoryview, at: int, out: bytearray, *, wbits: int, cap: int, enc: str, charge: Charge
) -> tuple[bytearray, int]:
    """Inflate the one stream starting at ``view[at]``: the output so far and where it ended.

    zlib copies whatever input it did not use (``unused_data``) when a stream ends; handing it the
    whole rest of the body made many small members quadratic. Input goes in pieces that start
    small and double while the stream lasts, so each copy is at most twice what the member used.
    """
    inflater = zlib.decompressobj(wbits)
    piece = _FIRST_PIECE
    while not inflater.eof:
        # Past the input, zlib may still hold output that the step held back: ask with no input.
        data = view[at : at + piece]
        try:
            produced = inflater.decompress(data, min(cap + 1 - len(out), _OUT_STEP))
        except zlib.error as exc:
            raise BodyError(400, f"Content-Encoding={enc}: corrupt body ({exc})") from None
        if produced:
            charge(len(produced))
            out += produced
        elif not data:  # no input left and nothing more to give: the stream stops short
            raise BodyError(400, f"Content-Encoding={enc}: truncated body")
        if len(out) > cap:
            raise BodyError(413, f"decompressed body exceeds max_decompressed_bytes={cap}")
        # At the end of a stream what follows it is in unused_data (and may also still show in
        # unconsumed_tail when the step was reached there); before it, only the tail is unread.
        left = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        at += len(data) - len(left)
        piece = min(piece * 2, _MAX_PIECE)
    return out, at
