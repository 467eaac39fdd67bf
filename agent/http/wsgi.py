"""WSGI middleware: one SERVER span per request with the bytes actually received and sent.

Request bytes are counted as the app reads ``wsgi.input``; response bytes as the server pulls each
chunk from the body iterable (or as the app calls the legacy ``write``). The span ends when the
server closes the iterable, after the last byte, exactly once. Anything failing in our code is
counted via :func:`~otel_downstream.agent.faults.report_fault` and the app carries on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from otel_downstream.agent.client.headers import EnvironHeaders
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http import engagement
from otel_downstream.agent.http.exchange import Exchange
from otel_downstream.agent.http.prepare import prepare_middleware
from otel_downstream.agent.http.routes import environ_route
from otel_downstream.agent.http.streams import CountingInput, wrap_body

__all__ = ["WSGIMiddleware"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_COMPONENT = "wsgi"


class WSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` (Flask), or Django's handler.

    Options (argument → ``OTEL_DOWNSTREAM_*`` → default): ``tracer_provider``, ``excluded_paths``,
    ``trusted_proxies``, ``country_header``, ``capture_user_agent``, ``capture_client_ip``,
    ``trust_trace_context``, ``engagement_beacon``, ``engagement_path``, ``classifier``,
    ``country_resolver``.
    """

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self._options, self._tracer, self._beacon_path, self._excluded = prepare_middleware(
            app, options
        )

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
        path = environ.get("PATH_INFO", "")
        beacon_path = self._beacon_path
        if beacon_path is not None and path == beacon_path:
            return self._beacon(environ)
        excluded = self._excluded
        if excluded is not None and excluded(path):
            return None
        exchange = Exchange(
            _COMPONENT,
            self._options,
            self._tracer,
            environ.get("REQUEST_METHOD", ""),
            EnvironHeaders(environ),
            environ.get("wsgi.url_scheme"),
            environ.get("REMOTE_ADDR"),
        )
        stream = environ.get("wsgi.input")
        # An HTTP/1.1 request has a body only with Content-Length or Transfer-Encoding; without
        # either, the input is left exactly as the server made it.
        if stream is not None and (
            environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            environ["wsgi.input"] = CountingInput(stream, exchange)
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
            exchange.route = environ_route(environ)
            exchange.finish()
            raise
        finally:
            if owned:
                exchange.deactivate()
        return wrap_body(iterable, exchange, environ)

    def _beacon(self, environ: dict[str, Any]) -> engagement.BeaconReply:
        # Answered here whatever happens: a beacon must never reach the app.
        try:
            return self._answer_beacon(environ)
        except Exception as exc:
            report_fault(_COMPONENT, exc)
            return engagement.reply(400, "engagement beacon: unreadable request")

    def _answer_beacon(self, environ: dict[str, Any]) -> engagement.BeaconReply:
        headers = EnvironHeaders(environ)
        length = headers.get("content-length")
        early = engagement.check_head(environ.get("REQUEST_METHOD", ""), length)
        if early is not None:
            return early
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
            headers=headers,
            peer_ip=environ.get("REMOTE_ADDR"),
            component=_COMPONENT,
        )


def _send_reply(answer: engagement.BeaconReply, start_response: StartResponse) -> list[bytes]:
    start_response(f"{answer.status} {answer.reason}", list(answer.headers))
    return [answer.body] if answer.body else []
