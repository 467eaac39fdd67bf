"""The body of an OTLP/HTTP error answer: a ``google.rpc.Status``, as protobuf or JSON.

The OTLP spec asks for a Status message on every failed export; encoding its two fields by hand
spares ``serve`` a dependency on the googleapis protos.
"""

from __future__ import annotations

import json
from typing import Final

__all__ = ["status_body", "status_protobuf"]

# google.rpc.Code for each HTTP answer we give with a Status body.
_RPC_CODE: Final = {
    400: 3,
    401: 16,
    404: 5,
    405: 12,
    411: 3,
    413: 8,
    415: 3,
    429: 8,
    500: 13,
    503: 14,
}


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def status_protobuf(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code = field 1, message = field 2), without needing googleapis protos."""
    text = message.encode()
    head = b"\x08" + _varint(code) if code else b""
    return head + b"\x12" + _varint(len(text)) + text


def status_body(status: int, message: str, json_body: bool) -> bytes:
    """The Status body for an HTTP ``status`` (its google.rpc code), JSON or protobuf."""
    code = _RPC_CODE.get(status, 2)
    if json_body:
        return json.dumps({"code": code, "message": message}).encode()
    return status_protobuf(code, message)
