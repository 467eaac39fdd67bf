"""ASGI middleware: one SERVER span per HTTP request or websocket, with the bytes actually moved.

A plain class in the starlette shape: it wraps ``receive`` and ``send`` to count body bytes and
websocket messages chunk by chunk (after each successful ``send``), reads the route template the
router left in the scope, and passes ``lifespan`` and unknown scopes through untouched. Works as
``ASGIMiddleware(app)`` around any ASGI app or as ``app.add_middleware(ASGIMiddleware)``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from otel_downstream.agent.client.headers import asgi_headers
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http import engagement
from otel_downstream.agent.http.exchange import Exchange
from otel_downstream.agent.http.prepare import prepare_middleware
from otel_downstream.agent.http.routes import scope_route

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_COMPONENT = "asgi"


class ASGIMiddleware:
    """Wrap an ASGI app; options as for :class:`~otel_downstream.agent.http.wsgi.WSGIMiddleware`."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self._options, self._tracer, self._beacon_path, self._excluded = prepare_middleware(
            app, options
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One coroutine per request: the instrumented path runs inline, not in an awaited helper.
        kind = scope.get("type")
        if kind not in _INSTRUMENTED:
            await self.app(scope, receive, send)
            return
        try:
            path = scope.get("path", "")
            excluded = self._excluded
            beacon_path = self._beacon_path
            if kind == "http" and beacon_path is not None and path == beacon_path:
                beacon = True
                exchange = None
            else:
                beacon = False
                if excluded is not None and excluded(path):
                    exchange = None
                else:
                    client = scope.get("client")
                    exchange = Exchange(
                        _COMPONENT,
                        self._options,
                        self._tracer,
                        scope.get("method", "GET"),
                        asgi_headers(scope.get("headers")),
                        scope.get("scheme"),
                        client[0] if client else None,  # peer address
                    )
        except Exception as exc:
            report_fault(_COMPONENT, exc)
            beacon, exchange = False, None
        if exchange is None:
            if beacon:
                await self._beacon(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return

        entry_root = scope.get("root_path", "")
        owned = exchange.owned

        async def counting_receive() -> Message:
            message = await receive()
            try:
                exchange.request_bytes += _message_bytes(message)
            except Exception as exc:
                report_fault(_COMPONENT, exc)
            return message

        async def counting_send(message: Message) -> None:
            try:
                kind = message["type"]
                if kind == "http.response.body":  # the common cases, without the general helpers
                    count = len(message.get("body", b""))
                    last = not message.get("more_body", False)
                elif kind == "http.response.start":
                    count = 0
                    exchange.status_code = int(message["status"])
                    last = False
                else:
                    count = _message_bytes(message)
                    if kind in _STARTS:
                        exchange.status_code = int(message["status"])
                    last = not owned and _is_last(message)
                if last and not owned:
                    # The span we annotate is ended by its owner right after this send: finish now.
                    exchange.response_bytes += count
                    count = 0
                    exchange.route = scope_route(scope, entry_root)
                    exchange.finish()
            except Exception as exc:
                report_fault(_COMPONENT, exc)
                count = 0
            await send(message)
            exchange.response_bytes += count

        if owned:
            exchange.activate()
        try:
            await self.app(scope, counting_receive, counting_send)
        except BaseException as exc:
            exchange.fail(exc)
            raise
        finally:
            if not exchange.finished:  # an annotated span may be finished at its last send
                exchange.route = scope_route(scope, entry_root)
                exchange.finish()

    async def _beacon(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = asgi_headers(scope.get("headers"))
        answer = engagement.check_head(scope.get("method", ""), headers.get("content-length"))
        if answer is None:
            body = bytearray()
            more = True
            while more and len(body) <= engagement.MAX_BODY_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away: nothing to answer
                body += message.get("body", b"")
                more = message.get("more_body", False)
            client = scope.get("client")
            answer = engagement.accept(
                bytes(body),
                options=self._options,
                tracer=self._tracer,
                headers=headers,
                peer_ip=client[0] if client else None,
                component=_COMPONENT,
            )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


_INSTRUMENTED = frozenset({"http", "websocket"})
_WEBSOCKET_DATA = frozenset({"websocket.send", "websocket.receive"})
_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})
_FILE_SENDS = frozenset({"http.response.pathsend", "http.response.zerocopysend"})
_BODIES = frozenset({"http.request", "http.response.body", "websocket.http.response.body"})


def _message_bytes(message: Message) -> int:
    """Body bytes one ASGI message carries (websocket text counts as its UTF-8 encoding)."""
    kind = message["type"]
    if kind in _BODIES:
        return len(message.get("body", b""))
    if kind in _WEBSOCKET_DATA:
        data = message.get("bytes")
        if data is not None:
            return len(data)
        text = message.get("text")
        return len(text.encode("utf-8")) if text is not None else 0
    if kind == "http.response.pathsend":
        return Path(message["path"]).stat().st_size
    if kind == "http.response.zerocopysend":
        count = message.get("count")
        if count is not None:
            return int(count)
        fd = message["file"]
        fileno = fd if isinstance(fd, int) else fd.fileno()
        return os.fstat(fileno).st_size - os.lseek(fileno, 0, os.SEEK_CUR)
    return 0


def _is_last(message: Message) -> bool:
    kind = message["type"]
    if kind == "http.response.body":
        return not message.get("more_body", False)
    if kind == "http.response.trailers":
        return not message.get("more_trailers", False)
    return kind in _FILE_SENDS
