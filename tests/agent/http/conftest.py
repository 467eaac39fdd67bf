"""Fixtures for the middleware tests: a fresh TracerProvider with an in-memory exporter per test,
and small drivers that call WSGI/ASGI apps the way a server does (iterate, then close once)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent.faults import reset_faults


@pytest.fixture(autouse=True)
def _fresh_faults() -> Iterable[None]:
    reset_faults()
    yield
    reset_faults()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterable[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


@pytest.fixture
def opts(provider: TracerProvider) -> Callable[..., dict[str, Any]]:
    """Build middleware keyword options with this test's provider."""

    def make(**overrides: Any) -> dict[str, Any]:
        return {"tracer_provider": provider, **overrides}

    return make


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    from opentelemetry.trace import SpanKind

    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


# --- WSGI driver ---------------------------------------------------------------------------------


@dataclass
class WSGIResult:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def environ_for(
    path: str = "/",
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    remote_addr: str = "203.0.113.9",
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "shop.example:8080",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return environ


def call_wsgi(app: Any, environ: dict[str, Any]) -> WSGIResult:
    """Call like a server: start_response, iterate the body, then close it exactly once."""
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return written.append

    iterable = app(environ, start_response)
    try:
        chunks = [bytes(chunk) for chunk in iterable]
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return WSGIResult(captured["status"], captured["headers"], b"".join(written + chunks))


# --- ASGI driver ---------------------------------------------------------------------------------


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    client: tuple[str, int] = ("203.0.113.9", 5000),
) -> dict[str, Any]:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    raw = [(b"host", b"shop.example:8080")] + [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "client": client,
        "server": ("127.0.0.1", 8080),
    }


async def call_asgi(
    app: Any, scope: dict[str, Any], chunks: list[bytes] | None = None
) -> list[dict[str, Any]]:
    """Feed the request body in chunks, then report a disconnect; return every message sent."""
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks or [b""]) - 1}
        for i, c in enumerate(chunks or [b""])
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def response_of(messages: list[dict[str, Any]]) -> tuple[int, bytes]:
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body
