"""WSGI middleware: one SERVER span per request with the bytes actually received and sent.

Request bytes are counted as the app reads ``wsgi.input``; response bytes as the server pulls each
chunk from the body iterable (or as the app calls the legacy ``write``). The span ends when the
server closes the iterable, after the last byte, exactly once. Anything failing in our code is
counted via :func:`~otel_downstream.agent.faults.report_fault` and the app carries on unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from . import engagement
from .faults import report_fault
from .http_options import build_options
from .http_record import ROUTE_KEY, Exchange, get_tracer, hook_framework_routes

__all__ = ["WSGIMiddleware"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_COMPONENT = "wsgi"
_UNDERSCORE = str.maketrans("_", "-")
_DASH = str.maketrans("-", "_")


class WSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` (Flask), or Django's handler.

    Options (argument → ``OTEL_DOWNSTREAM_*`` → default): ``tracer_provider``, ``excluded_paths``,
    ``trusted_proxies``, ``country_header``, ``capture_user_agent``, ``capture_client_ip``,
    ``engagement_beacon``, ``engagement_path``, ``classifier``, ``country_resolver``.
    """

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self._options = build_options(**options)
        self._tracer = get_tracer(self._options)
        hook_framework_routes(app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            exchange = self._begin(environ)
        except Exception as exc:
            report_fault(_COMPONENT, exc)
            exchange = None
        if exchange is None:
            return self.app(environ, start_response)
        if isinstance(exchange, engagement.BeaconReply):
            return _send_reply(exchange, start_response)
        return self._run(exchange, environ, start_response)

    def _begin(self, environ: dict[str, Any]) -> Exchange | engagement.BeaconReply | None:
        options = self._options
        path = environ.get("PATH_INFO", "")
        if options.engagement_beacon and path == options.engagement_path:
            return self._beacon(environ)
        if options.excluded_paths and options.is_excluded(path):
            return None
        exchange = Exchange(
            _COMPONENT,
            options,
            self._tracer,
            method=environ.get("REQUEST_METHOD", ""),
            headers=_headers(environ),
            scheme=environ.get("wsgi.url_scheme"),
            peer_ip=environ.get("REMOTE_ADDR"),
        )
        stream = environ.get("wsgi.input")
        # An HTTP/1.1 request has a body only with Content-Length or Transfer-Encoding; without
        # either, the input is left exactly as the server made it.
        if stream is not None and (
            environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            environ["wsgi.input"] = _CountingInput(stream, exchange)
        return exchange

    def _run(
        self, exchange: Exchange, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        def counting_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            write = start_response(status, headers, exc_info)
            try:
                exchange.status_code = int(status[:3])
            except Exception as exc:
                report_fault(_COMPONENT, exc)

            def counting_write(data: bytes) -> object:
                result = write(data)
                if isinstance(data, (bytes, bytearray, memoryview)):
                    exchange.response_bytes += len(data)
                return result

            return counting_write

        owned = exchange.owned
        if owned:
            exchange.activate()
        try:
            iterable = self.app(environ, counting_start_response)
        except BaseException as exc:
            exchange.fail(exc)
            exchange.route = _route(environ)
            exchange.finish()
            raise
        finally:
            if owned:
                exchange.deactivate()
        return _wrap_body(iterable, exchange, environ)

    def _beacon(self, environ: dict[str, Any]) -> engagement.BeaconReply:
        # Answered here whatever happens: a beacon must never reach the app.
        try:
            return self._answer_beacon(environ)
        except Exception as exc:
            report_fault(_COMPONENT, exc)
            return engagement.reply(400, "engagement beacon: unreadable request")

    def _answer_beacon(self, environ: dict[str, Any]) -> engagement.BeaconReply:
        early = engagement.check_head(
            environ.get("REQUEST_METHOD", ""), environ.get("CONTENT_LENGTH")
        )
        if early is not None:
            return early
        length = environ.get("CONTENT_LENGTH")
        stream = environ.get("wsgi.input")
        if stream is None:
            body = b""
        elif length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(engagement.MAX_BODY_BYTES + 1)
        else:
            return engagement.reply(411, "engagement beacon: Content-Length required")
        return engagement.accept(
            body,
            options=self._options,
            tracer=self._tracer,
            headers=_headers(environ),
            peer_ip=environ.get("REMOTE_ADDR"),
            component=_COMPONENT,
        )


def _send_reply(answer: engagement.BeaconReply, start_response: StartResponse) -> list[bytes]:
    start_response(f"{answer.status} {answer.reason}", list(answer.headers))
    return [answer.body] if answer.body else []


def _headers(environ: dict[str, Any]) -> Mapping[str, str]:
    """Request headers by lower-case, dash-separated name (the shape ``country`` expects)."""
    return _EnvironHeaders(environ)


_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = name.upper().translate(_DASH)
        if key not in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
            key = "HTTP_" + key
        if len(_KEYS) < 256:  # names come from our code and config, but stay bounded anyway
            _KEYS[name] = key
    return key


class _EnvironHeaders(Mapping[str, str]):
    """A read-only header view over the environ: lookups only, no per-request copy of every header."""

    __slots__ = ("_environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
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
                if key.startswith("HTTP_"):
                    yield key[5:].translate(_UNDERSCORE).lower()
                elif key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
                    yield key.translate(_UNDERSCORE).lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _route(environ: dict[str, Any]) -> str | None:
    """The route template a framework matched: a hook's key (Django), else Flask's ``url_rule``."""
    try:
        route = environ.get(ROUTE_KEY)
        if isinstance(route, str):
            return route
        request = environ.get("werkzeug.request")
        rule = getattr(getattr(request, "url_rule", None), "rule", None)
        return rule if isinstance(rule, str) else None
    except Exception as exc:
        report_fault(_COMPONENT, exc)
        return None


def _wrap_body(
    iterable: Iterable[bytes], exchange: Exchange, environ: dict[str, Any]
) -> Iterable[bytes]:
    """Our counting body; a server's own file wrapper stays one, so it can still ``sendfile``."""
    wrapper_type: Any = environ.get("wsgi.file_wrapper")
    if wrapper_type is not None and type(iterable) is wrapper_type:
        filelike = getattr(iterable, "filelike", None)
        blksize = getattr(iterable, "blksize", None)
        if filelike is not None and isinstance(blksize, int):
            try:
                factory: Any = environ["wsgi.file_wrapper"]
                wrapped: Iterable[bytes] = factory(
                    _CountingFile(filelike, exchange, environ), blksize
                )
                return wrapped
            except Exception as exc:
                report_fault(_COMPONENT, exc)
    return _Body(iterable, exchange, environ)


class _CountingFile:
    """The file inside a ``wsgi.file_wrapper``: reads are counted; when the server sends it with
    ``sendfile`` instead (no reads), the bytes left in the file when handed over are what went."""

    __slots__ = ("_environ", "_exchange", "_file", "_remaining")

    def __init__(self, file: Any, exchange: Exchange, environ: dict[str, Any]) -> None:
        self._file = file
        self._exchange = exchange
        self._environ = environ
        self._remaining = _remaining_bytes(file)

    def read(self, *args: Any) -> bytes:
        data: bytes = self._file.read(*args)
        self._exchange.response_bytes += len(data)
        return data

    def fileno(self) -> int:
        fileno: int = self._file.fileno()
        return fileno

    def close(self) -> None:
        exchange = self._exchange
        try:
            close = getattr(self._file, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            exchange.fail(exc)
            raise
        finally:
            if exchange.response_bytes == 0 and self._remaining:
                exchange.response_bytes = self._remaining
            exchange.route = _route(self._environ)
            exchange.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _remaining_bytes(file: Any) -> int:
    try:
        fileno = file.fileno()
        return max(os.fstat(fileno).st_size - os.lseek(fileno, 0, os.SEEK_CUR), 0)
    except Exception:  # not a real file (BytesIO, sockets): only reads are counted
        return 0


class _CountingInput:
    """``wsgi.input`` proxy that counts the request body bytes the app actually reads."""

    __slots__ = ("_exchange", "_stream")

    def __init__(self, stream: Any, exchange: Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int | None:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:  # WSGI only promises read(); keep readinto's contract on top of it
            data = self._stream.read(len(buffer))
            buffer[: len(data)] = data
            self._exchange.request_bytes += len(data)
            return len(data)
        size: int | None = readinto(buffer)
        if size:
            self._exchange.request_bytes += size
        return size

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self._exchange.request_bytes += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._exchange.request_bytes += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Body:
    """The app's body iterable, counted chunk by chunk; ends the span on ``close()``."""

    __slots__ = ("_active", "_environ", "_exchange", "_iterable", "_iterator")

    def __init__(
        self, iterable: Iterable[bytes], exchange: Exchange, environ: dict[str, Any]
    ) -> None:
        self._iterable = iterable
        self._exchange = exchange
        self._environ = environ
        self._iterator: Iterator[bytes] | None = None
        # Re-activate our span around each chunk only when app code may run to produce it (not for
        # lists and tuples) and only for a span we own.
        self._active = exchange.owned and not isinstance(iterable, (list, tuple))

    def __iter__(self) -> _Body:
        return self

    def __len__(self) -> int:
        # Servers (wsgiref) size single-chunk lists from len(); raise TypeError like the app would.
        return len(self._iterable)  # type: ignore[arg-type]

    def __next__(self) -> bytes:
        exchange = self._exchange
        if self._active:
            exchange.activate()
        try:
            if self._iterator is None:
                self._iterator = iter(self._iterable)
            chunk = next(self._iterator)
        except StopIteration:
            raise
        except BaseException as exc:
            exchange.fail(exc)
            raise
        finally:
            if self._active:
                exchange.deactivate()
        try:
            size = len(chunk)
        except TypeError:
            size = 0  # not bytes: the server will complain, exactly as without us
        exchange.response_bytes += size
        return chunk

    def close(self) -> None:
        exchange = self._exchange
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            exchange.fail(exc)
            raise
        finally:
            exchange.route = _route(self._environ)
            exchange.finish()
