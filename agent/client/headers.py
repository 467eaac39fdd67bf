"""Request headers and peer address from WSGI and ASGI in one shape, so both middlewares share code.

Headers become a ``dict`` with lower-case names; repeated headers are joined with ``", "`` as RFC 9110
(section 5.3) allows for list-valued fields, so ``X-Forwarded-For`` and ``Forwarded`` sent twice read as
one chain in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "forwarded_chain",
    "headers_from_asgi",
    "headers_from_environ",
    "peer_from_asgi",
    "peer_from_environ",
    "x_forwarded_for_chain",
]

# CGI puts these two headers in the environ without the HTTP_ prefix.
_CGI_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def _add(headers: dict[str, str], name: str, value: str) -> None:
    previous = headers.get(name)
    if previous is None:
        headers[name] = value
    else:
        headers[name] = previous + ("; " if name == "cookie" else ", ") + value


def headers_from_asgi(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI ``scope["headers"]`` (byte pairs) as a dict with lower-case names.

    Bytes are decoded as Latin-1, which maps every byte, so no header can make this fail.
    """
    headers: dict[str, str] = {}
    for name, value in raw:
        _add(headers, bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
    return headers


def headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """WSGI environ ``HTTP_*`` keys (plus content type/length) as a dict with lower-case names."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in _CGI_HEADERS:
            headers[_CGI_HEADERS[key]] = value
    return headers


def peer_from_asgi(scope: Mapping[str, Any]) -> str | None:
    """The TCP peer host from ``scope["client"]``, or None (unix sockets, test clients)."""
    client = scope.get("client")
    if isinstance(client, (list, tuple)) and client and isinstance(client[0], str):
        return client[0]
    return None


def peer_from_environ(environ: Mapping[str, Any]) -> str | None:
    """The TCP peer host from ``REMOTE_ADDR``, or None."""
    remote = environ.get("REMOTE_ADDR")
    return remote if isinstance(remote, str) and remote else None


# --- Proxy chains: which address did each trusted proxy see? --------------------------------------
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = rf'(?:{_TOKEN}|"(?:[^"\\]|\\.)*")'
_PAIR = rf"{_TOKEN}={_VALUE}"
# forwarded-element = [ pair ] *( ";" [ pair ] ), elements separated by ","; whitespace is placed
# so that no two patterns compete for the same blanks (no backtracking blow-up on long runs).
_ELEMENT = rf"[ \t]*(?:{_PAIR}[ \t]*)?(?:;[ \t]*(?:{_PAIR}[ \t]*)?)*"
_FORWARDED = re.compile(rf"{_ELEMENT}(?:,{_ELEMENT})*")
_ITEM = re.compile(rf"(,)|({_TOKEN})=({_VALUE})")
_UNESCAPE = re.compile(r"\\(.)")
_MAX_CHAIN = 64  # a longer chain is garbage or an attack; only its tail matters anyway
_MAX_FORWARDED = 8192


def forwarded_chain(value: str) -> list[str | None] | None:
    """The ``for=`` node of each element of an RFC 7239 ``Forwarded`` header, client first.

    An element without ``for=`` gives None. Returns None when the header is not valid RFC 7239
    syntax (or absurdly long), so a garbled header is ignored rather than half-trusted.
    """
    if len(value) > _MAX_FORWARDED or _FORWARDED.fullmatch(value) is None:
        return None
    nodes: list[str | None] = []
    current: str | None = None
    for item in _ITEM.finditer(value):
        if item.group(1) is not None:
            nodes.append(current)
            current = None
        elif item.group(2).lower() == "for":
            raw = item.group(3)
            current = _UNESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
    nodes.append(current)
    return nodes[-_MAX_CHAIN:]


def x_forwarded_for_chain(value: str) -> list[str | None]:
    """The entries of an ``X-Forwarded-For`` header, client first (blank entries give None)."""
    entries = value.split(",")[-_MAX_CHAIN:]
    return [entry.strip() or None for entry in entries]
