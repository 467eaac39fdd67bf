"""Websockets through a real uvicorn on 127.0.0.1 with a real client (the ``websockets`` library).

The in-process tests (Starlette's TestClient, hand-fed ASGI messages) never exercise uvicorn's own
websocket protocol: its handshake, frame (de)serialisation, close handshake and what it reports
when a client vanishes. Here uvicorn serves a FastAPI app wrapped by ``ASGIMiddleware`` (alone, and
inside the official ASGI middleware, whose span ours then annotates) on a socket bound to port 0,
in a thread of this process, so the spans land in this test's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import connect

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import fault_counts
from otel_downstream.agent.http.asgi import ASGIMiddleware

from .conftest import server_spans

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


class Tally:
    """What the app itself saw: bytes received and bytes it handed to a ``send`` that returned."""

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0
        self.done = threading.Event()


def make_app(tally: Tally) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws/{room}")
    async def echo(websocket: WebSocket, room: str) -> None:
        # Text comes back upper-cased and suffixed, bytes come back tripled: reply sizes differ
        # from request sizes, so swapping the directions could not pass.
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    text = message["text"]
                    tally.received += len(text.encode())
                    if text == "bye":
                        await websocket.close(code=1000)
                        return
                    reply = text.upper() + "!"
                    await websocket.send_text(reply)
                    tally.sent += len(reply.encode())
                else:
                    data = message["bytes"]
                    tally.received += len(data)
                    await websocket.send_bytes(data * 3)
                    tally.sent += len(data) * 3
        finally:
            tally.done.set()

    @app.websocket("/flood")
    async def flood(websocket: WebSocket) -> None:
        # Sends until the client vanishes; the app's own tally counts only sends that returned.
        await websocket.accept()
        chunk = b"\xab" * 4096
        try:
            for _ in range(10_000):
                await websocket.send_bytes(chunk)
                tally.sent += len(chunk)
                await asyncio.sleep(0)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            tally.done.set()

    return app


class Uvicorn:
    """uvicorn in a thread on a socket this test bound to 127.0.0.1:0; stopped by ``stop()``."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, ws="websockets-sansio", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.owner = ""  # instrumentation scope of the span the test expects
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def tally() -> Tally:
    return Tally()


@pytest.fixture(params=["ours", "official outside ours"])
def server(
    request: pytest.FixtureRequest, tally: Tally, opts: Any, provider: Any
) -> Iterator[Uvicorn]:
    """Ours alone (it owns the span), and inside the official ASGI middleware (it annotates the
    official's span, which must still be one span, ended once)."""
    app = make_app(tally)
    app.add_middleware(ASGIMiddleware, **opts(country_header="CF-IPCountry"))
    outer: Any = app
    if request.param != "ours":
        outer = OpenTelemetryMiddleware(app, tracer_provider=provider)
    srv = Uvicorn(outer)
    srv.owner = (
        "otel_downstream.agent" if request.param == "ours" else "opentelemetry.instrumentation.asgi"
    )
    yield srv
    srv.stop()


def wait_for_spans(exporter: InMemorySpanExporter, tally: Tally) -> list[ReadableSpan]:
    """The server spans once the endpoint has returned and the span had time to end (bounded)."""
    assert tally.done.wait(10), "endpoint never finished"
    deadline = time.monotonic() + 5
    while not server_spans(exporter) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a second end() or a second span would show up by now
    return server_spans(exporter)


def assert_ended_once(spans: list[ReadableSpan], caplog: pytest.LogCaptureFixture) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    # The SDK ignores a second end() but logs it: that log is the only trace a double end leaves.
    assert not [r for r in caplog.records if "ended span" in r.getMessage()]
    return spans[0]


async def test_messages_counted_both_ways_over_real_uvicorn(
    server: Uvicorn, tally: Tally, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    texts = ["hello", "héllo wörld ✓", "x" * 5000]
    blobs = [b"\x00\x01\x02", bytes(range(256)) * 300]  # 76,800 bytes: several frames' worth
    sent = sum(len(t.encode()) for t in texts) + sum(len(b) for b in blobs) + len(b"bye")
    received = 0
    headers = {"CF-IPCountry": "JP", "User-Agent": "curl/8.5.0"}
    async with connect(
        f"ws://127.0.0.1:{server.port}/ws/lobby", additional_headers=headers, max_size=None
    ) as ws:
        for text in texts:
            await ws.send(text)
            reply = await ws.recv()
            assert reply == text.upper() + "!"
            received += len(reply.encode())
        for blob in blobs:
            await ws.send(blob)
            reply_bytes = await ws.recv()
            assert reply_bytes == blob * 3
            received += len(reply_bytes)
        await ws.send("bye")
        await ws.wait_closed()
    assert ws.close_code == 1000

    span = assert_ended_once(wait_for_spans(exporter, tally), caplog)
    attrs = span.attributes or {}
    assert (tally.received, tally.sent) == (sent, received)  # the app saw what the client did
    assert attrs[attr.HTTP_REQUEST_BODY_SIZE] == sent
    assert attrs[attr.HTTP_RESPONSE_BODY_SIZE] == received
    assert attrs[attr.HTTP_ROUTE] == "/ws/{room}"
    assert attrs[attr.GEO_COUNTRY_ISO_CODE] == "JP"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == server.owner  # ours, or the official one annotated
    assert attr.ERROR_TYPE not in attrs
    assert fault_counts() == {}


async def test_client_vanishing_mid_conversation(
    server: Uvicorn, tally: Tally, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """TCP dropped without a close frame: uvicorn reports a disconnect; the span still ends once,
    with the bytes exchanged before the drop."""
    caplog.set_level(logging.WARNING)
    async with connect(f"ws://127.0.0.1:{server.port}/ws/lobby") as ws:
        await ws.send("ping")
        assert await ws.recv() == "PING!"
        await ws.send(b"\xff" * 1000)
        assert len(await ws.recv()) == 3000
        ws.transport.abort()  # no close handshake: the socket just goes away

    span = assert_ended_once(wait_for_spans(exporter, tally), caplog)
    attrs = span.attributes or {}
    assert attrs[attr.HTTP_REQUEST_BODY_SIZE] == 4 + 1000 == tally.received
    assert attrs[attr.HTTP_RESPONSE_BODY_SIZE] == 5 + 3000 == tally.sent
    assert fault_counts() == {}


async def test_client_vanishing_while_server_streams(
    server: Uvicorn, tally: Tally, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """The server is mid-send when the client drops: only sends that returned are counted, which
    is at least what the client read and exactly what the app itself saw go out."""
    caplog.set_level(logging.WARNING)
    read = 0
    async with connect(f"ws://127.0.0.1:{server.port}/flood", max_size=None) as ws:
        for _ in range(5):
            read += len(await ws.recv())
        ws.transport.abort()

    span = assert_ended_once(wait_for_spans(exporter, tally), caplog)
    attrs = span.attributes or {}
    assert read == 5 * 4096
    assert attrs[attr.HTTP_REQUEST_BODY_SIZE] == 0
    assert attrs[attr.HTTP_RESPONSE_BODY_SIZE] == tally.sent
    assert tally.sent >= read
    assert tally.sent < 10_000 * 4096  # the drop stopped the flood
    assert attrs[attr.HTTP_ROUTE] == "/flood"
    assert fault_counts() == {}
