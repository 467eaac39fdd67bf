"""Request headers and peer address from WSGI and ASGI in one shape, so both middlewares share code.

This module is the only place that turns an ASGI ``scope["headers"]`` or a WSGI environ into the
lower-case name -> value mapping the request core, the engagement beacon, the country resolver and
the trace-context propagators read. One rule for a header sent on several lines, so a request reads
the same through either middleware:

* ASGI hands us every line: they are joined in order with a bare ``","``. RFC 9110 (section 5.3)
  combines field lines with a comma and *optional* whitespace; we add none because gunicorn,
  Werkzeug and wsgiref join repeated lines in the environ the same way, so both middlewares see the
  same text. ``Cookie`` lines are joined with ``"; "`` instead (RFC 9113 section 8.2.3: an HTTP/2
  client may send each cookie pair on its own line).
* WSGI servers have already joined repeated lines into one environ value: it is read as it is.

What that means for the headers read here: list-valued ones (``X-Forwarded-For``, ``Forwarded``,
``tracestate``, ``baggage``) allow whitespace around their commas, so two lines read as one chain,
in order, and the trusted-proxy count lands on the same entry either way. A singleton sent twice
(``User-Agent``, ``Host``, ``traceparent``, a CDN country header, ``Content-Length``) is malformed
and reads as the same joined text through both middlewares: no valid ``traceparent``, no ISO code
(the IP decides the country), no number.

Bytes are decoded as Latin-1, which maps every byte, so no header can make reading fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "EnvironHeaders",
    "asgi_headers",
    "forwarded_chain",
    "headers_from_asgi",
    "headers_from_environ",
    "peer_from_asgi",
    "peer_from_environ",
    "x_forwarded_for_chain",
]

# CGI puts these two headers in the environ without the HTTP_ prefix.
_CGI_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
_SHADOWED = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})  # CGI names win
_UNDERSCORE = str.maketrans("_", "-")
_DASH = str.maketrans("-", "_")


def _joined(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Every line decoded, repeated names joined by the module's rule."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        else:
            headers[name] = previous + ("; " if name == "cookie" else ",") + value
    return headers


def headers_from_asgi(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI ``scope["headers"]`` (byte pairs) as a dict with lower-case names."""
    return _joined(raw)


def asgi_headers(raw: Iterable[tuple[bytes, bytes]] | None) -> Mapping[str, str]:
    """:func:`headers_from_asgi`'s mapping, built lazily on the request path.

    Servers send lower-case names (uvicorn, hypercorn, daphne) and rarely repeat one: then values
    are decoded only when looked up. An upper-case or repeated name takes the joining path.
    """
    if not raw:
        return {}
    if not isinstance(raw, (list, tuple)):
        raw = list(raw)
    by_name: dict[bytes, bytes] = dict(raw)
    if len(by_name) == len(raw):
        names = b"".join(by_name)
        if names.lower() == names:
            return _RawHeaders(by_name)
    return _joined(raw)


class _RawHeaders(Mapping[str, str]):
    """A header view over the scope's lower-case raw names: a request carries 10-20 headers and
    we read about five, so only those values are ever decoded."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[bytes, bytes]) -> None:
        self._raw = raw

    def get(self, name: str, default: Any = None) -> Any:
        value = self._raw.get(_RAW_NAMES.get(name) or _raw_name(name))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, name: str) -> str:
        value = self._raw.get(_RAW_NAMES.get(name) or _raw_name(name))
        if value is None:
            raise KeyError(name)
        return value.decode("latin-1")

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


_RAW_NAMES: dict[str, bytes] = {}


def _raw_name(name: str) -> bytes:
    raw = name.encode("latin-1")
    if len(_RAW_NAMES) < 256:  # names come from our code and config, but stay bounded anyway
        _RAW_NAMES[name] = raw
    return raw


def _header_name(key: str) -> str | None:
    """The header name of an environ key, or None when the key is no header."""
    if key.startswith("HTTP_"):
        return None if key in _SHADOWED else key[5:].translate(_UNDERSCORE).lower()
    return _CGI_HEADERS.get(key)


def headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """WSGI environ ``HTTP_*`` keys (plus content type/length) as a dict with lower-case names."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if isinstance(value, str):
            name = _header_name(key)
            if name is not None:
                headers[name] = value
    return headers


_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = name.upper().translate(_DASH)
        if key not in _CGI_HEADERS:
            key = "HTTP_" + key
        if len(_KEYS) < 256:  # names come from our code and config, but stay bounded anyway
            _KEYS[name] = key
    return key


class EnvironHeaders(Mapping[str, str]):
    """:func:`headers_from_environ`'s mapping as a view on the request path: lookups only, no
    per-request copy of every header."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        # Callers pass lower-case names (the Mapping's contract); _environ_key maps any case anyway.
        value = self._environ.get(_KEYS.get(name) or _environ_key(name))
        return value if isinstance(value, str) else default

    def __getitem__(self, name: str) -> str:
        value = self._environ.get(_KEYS.get(name) or _environ_key(name))
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        for key, value in self._environ.items():
            if isinstance(value, str):
                name = _header_name(key)
                if name is not None:
                    yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)


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
