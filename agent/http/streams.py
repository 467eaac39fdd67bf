"""Counting proxies for the byte streams of one WSGI request: ``wsgi.input`` and the response body.

Request bytes are counted as the app reads ``wsgi.input``; response bytes as the server pulls each
chunk from the body iterable, or reads the file inside a server's ``wsgi.file_wrapper`` (which
stays one, so the server can still ``sendfile``). Closing the body ends the exchange exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http.exchange import Exchange
from otel_downstream.agent.http.routes import environ_route

_COMPONENT = "wsgi"


def wrap_body(
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
        if exchange.response_bytes == 0 and self._remaining:
            exchange.response_bytes = self._remaining
        close_and_finish(self._file, exchange, self._environ)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _remaining_bytes(file: Any) -> int:
    try:
        fileno = file.fileno()
        return max(os.fstat(fileno).st_size - os.lseek(fileno, 0, os.SEEK_CUR), 0)
    except Exception:  # not a real file (BytesIO, sockets): only reads are counted
        return 0


class CountingInput:
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

    __slots__ = ("_active", "_chunks", "_environ", "_exchange", "_iterable", "_iterator")

    def __init__(
        self, iterable: Iterable[bytes], exchange: Exchange, environ: dict[str, Any]
    ) -> None:
        self._iterable = iterable
        self._exchange = exchange
        self._environ = environ
        self._iterator: Iterator[bytes] | None = None
        self._chunks: Generator[bytes, None, None] | None = None
        # Re-activate our span around each chunk only when app code may run to produce it (not for
        # lists and tuples) and only for a span we own.
        self._active = exchange.owned and not isinstance(iterable, (list, tuple))

    def __iter__(self) -> Iterator[bytes]:
        if self._active:
            return self
        # Nothing to activate around each chunk: a generator, whose end costs no StopIteration
        # raised through a Python __next__ (annotated spans and list bodies take this path).
        if self._chunks is None:
            self._chunks = self._counted()
        return self._chunks

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
        exchange.response_bytes += _size(chunk)
        return chunk

    def _counted(self) -> Generator[bytes, None, None]:
        exchange = self._exchange
        try:
            for chunk in self._iterable:
                try:  # _size inline: no call per chunk
                    size = len(chunk)
                except TypeError:
                    size = 0  # not bytes: the server will complain, exactly as without us
                exchange.response_bytes += size
                yield chunk
        except GeneratorExit:  # closed by close() or collected: the server stopped pulling
            raise
        except BaseException as exc:
            exchange.fail(exc)
            raise

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        close_and_finish(self._iterable, self._exchange, self._environ)


def _size(chunk: bytes) -> int:
    try:
        return len(chunk)
    except TypeError:
        return 0  # not bytes: the server will complain, exactly as without us


def close_and_finish(closeable: object, exchange: Exchange, environ: dict[str, Any]) -> None:
    """Close what the app handed over (its failure is the app's, and propagates), then end the
    exchange with the route the framework matched: the response is over."""
    try:
        close = getattr(closeable, "close", None)
        if close is not None:
            close()
    except BaseException as exc:
        exchange.fail(exc)
        raise
    finally:
        exchange.route = environ_route(environ)
        exchange.finish()
