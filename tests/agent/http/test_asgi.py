"""ASGIMiddleware on plain ASGI apps: scopes, byte counting, websockets, span lifetime, faults."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.trace import SpanKind, StatusCode

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import fault_counts
from otel_downstream.agent.http.asgi import ASGIMiddleware
from tests.agent.http.conftest import call_asgi, http_scope, response_of, server_spans


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"got:", "more_body": True})
    await send({"type": "http.response.body", "body": body})


async def test_http_span_counts_chunks_both_ways(exporter, opts) -> None:
    app = ASGIMiddleware(echo, **opts())
    scope = http_scope("/upload", "POST", {"user-agent": "Mozilla/5.0 (iPhone) Mobile"})
    messages = await call_asgi(app, scope, [b"ab", b"cde", b""])
    assert response_of(messages) == (200, b"got:abcde")
    (span,) = server_spans(exporter)
    assert span.name == "POST"
    a = span.attributes
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == 5
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == 9
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[attr.URL_SCHEME] == "http"
    assert a[attr.SERVER_ADDRESS] == "shop.example"
    assert a[attr.DOWNSTREAM_DEVICE_CLASS] == "smartphone"
    assert a[attr.GEO_COUNTRY_ISO_CODE] == "ZZ"


async def test_lifespan_and_unknown_scopes_pass_through_untouched(exporter, opts) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        return None

    wrapped = ASGIMiddleware(app, **opts())
    for kind in ("lifespan", "custom.thing"):
        scope = {"type": kind, "asgi": {"version": "3.0"}}
        await wrapped(scope, receive, send)
        assert seen[-1][0] is scope and seen[-1][1] is receive and seen[-1][2] is send
        assert scope == {"type": kind, "asgi": {"version": "3.0"}}
    assert exporter.get_finished_spans() == ()


async def test_websocket_messages_counted_both_ways(exporter, opts) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"].upper()})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"] * 2})

    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "héllo"},  # 6 bytes in UTF-8
        {"type": "websocket.receive", "bytes": b"\x00\x01\x02"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope("/ws")
    scope["type"] = "websocket"
    del scope["method"]
    await ASGIMiddleware(app, **opts())(scope, receive, send)
    assert [m.get("text") or m.get("bytes") for m in sent[1:]] == ["HÉLLO", b"\x00\x01\x02" * 2]
    (span,) = server_spans(exporter)
    assert span.name == "GET"
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 9
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 12


async def test_exception_propagates_same_object_and_marks_span(exporter, opts) -> None:
    boom = LookupError("nope")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise boom

    with pytest.raises(LookupError) as info:
        await call_asgi(ASGIMiddleware(app, **opts()), http_scope())
    assert info.value is boom
    assert info.traceback[-1].name == "app"
    (span,) = server_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "LookupError"


async def test_client_disconnect_counts_only_what_was_sent(exporter, opts) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(5):
            await send({"type": "http.response.body", "body": b"x" * 100, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    calls = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # the third body chunk fails: the client went away
            raise OSError("connection reset")

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with pytest.raises(OSError, match="connection reset"):
        await ASGIMiddleware(app, **opts())(http_scope(), receive, send)
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 200
    assert span.attributes[attr.ERROR_TYPE] == "OSError"


async def test_streaming_first_chunk_sent_before_last_is_produced(exporter, opts) -> None:
    produced: list[int] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        produced.append(0)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        produced.append(1)
        await send({"type": "http.response.body", "body": b"last"})

    delivered: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            delivered.append(message["body"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    task = asyncio.create_task(ASGIMiddleware(app, **opts())(http_scope(), receive, send))
    while not delivered:
        await asyncio.sleep(0)
    assert delivered == [b"first"] and produced == [0]
    assert exporter.get_finished_spans() == ()  # not over until the last byte
    release.set()
    await task
    assert delivered == [b"first", b"last"]
    assert server_spans(exporter)[0].attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 9


async def test_pathsend_extension_counts_file_size(exporter, opts, tmp_path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"q" * 1234)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    await call_asgi(ASGIMiddleware(app, **opts()), http_scope())
    assert server_spans(exporter)[0].attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 1234


async def test_head_and_304_count_no_body(exporter, opts) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = 304 if scope["path"] == "/cached" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"discarded by the server"})

    wrapped = ASGIMiddleware(app, **opts())
    await call_asgi(wrapped, http_scope("/", "HEAD"))
    await call_asgi(wrapped, http_scope("/cached"))
    assert [s.attributes[attr.HTTP_RESPONSE_BODY_SIZE] for s in server_spans(exporter)] == [0, 0]


async def test_traceparent_is_extracted(exporter, opts) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    scope = http_scope(headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    await call_asgi(ASGIMiddleware(echo, **opts(trust_trace_context=True)), scope)
    assert format(server_spans(exporter)[0].context.trace_id, "032x") == trace_id
    await call_asgi(ASGIMiddleware(echo, **opts()), scope)  # a public endpoint: a link instead
    span = server_spans(exporter)[1]
    assert format(span.context.trace_id, "032x") != trace_id
    assert format(span.links[0].context.trace_id, "032x") == trace_id


async def test_contrib_asgi_span_is_annotated_not_duplicated(exporter, opts, provider) -> None:
    app = OpenTelemetryMiddleware(ASGIMiddleware(echo, **opts()), tracer_provider=provider)
    messages = await call_asgi(app, http_scope("/x", "POST"), [b"1234"])
    assert response_of(messages) == (200, b"got:1234")
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 4
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 8
    assert span.attributes[attr.DOWNSTREAM_DEVICE_CLASS] == "unknown"
    assert span.kind is SpanKind.SERVER


async def test_broken_country_resolver_is_swallowed(exporter, opts, caplog) -> None:
    class Broken:
        def resolve(self, headers: Any, peer_ip: Any) -> Any:
            raise ZeroDivisionError("resolver bug")

    wrapped = ASGIMiddleware(echo, **opts(country_resolver=Broken()))
    with caplog.at_level(logging.WARNING, logger="otel_downstream"):
        for _ in range(2):
            assert response_of(await call_asgi(wrapped, http_scope())) == (200, b"got:")
    assert fault_counts()["asgi"] == 2
    assert len([r for r in caplog.records if "internal error in asgi" in r.getMessage()]) == 1
    assert server_spans(exporter)[0].attributes[attr.GEO_COUNTRY_ISO_CODE] == "ZZ"


async def test_malformed_messages_from_the_app_reach_the_server_unchanged(exporter, opts) -> None:
    weird = {"type": "http.response.start", "status": "not-a-number", "headers": []}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(weird)

    messages = await call_asgi(ASGIMiddleware(app, **opts()), http_scope())
    assert messages == [weird]
    assert fault_counts()["asgi"] == 1


async def test_fault_at_request_start_passes_request_through(exporter, opts, monkeypatch) -> None:
    import otel_downstream.agent.http.asgi as asgi_module

    def broken(raw: Any) -> Any:
        raise RuntimeError("scope parsing bug")

    monkeypatch.setattr(asgi_module, "asgi_headers", broken)
    messages = await call_asgi(ASGIMiddleware(echo, **opts()), http_scope(), [b"zz"])
    assert response_of(messages) == (200, b"got:zz")
    assert fault_counts()["asgi"] == 1
    assert exporter.get_finished_spans() == ()


async def test_excluded_paths_pass_through(exporter, opts) -> None:
    wrapped = ASGIMiddleware(echo, **opts(excluded_paths=["/healthz"]))
    assert response_of(await call_asgi(wrapped, http_scope("/healthz"))) == (200, b"got:")
    assert exporter.get_finished_spans() == ()


async def test_header_name_case_and_repeats_read_the_same(exporter, opts) -> None:
    """Lower-case names (what servers send) are read through a lazy view; upper-case names and a
    header repeated over several lines take the decoding path: the span must not tell them apart."""
    bot = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    shapes = {
        "lower": [
            (b"host", b"shop.example:8080"),
            (b"user-agent", bot),
            (b"cf-ipcountry", b"JP"),
            (b"x-forwarded-for", b"81.2.69.142, 203.0.113.7"),
        ],
        "mixed case": [
            (b"Host", b"shop.example:8080"),
            (b"User-Agent", bot),
            (b"CF-IPCountry", b"JP"),
            (b"X-Forwarded-For", b"81.2.69.142, 203.0.113.7"),
        ],
        "repeated": [
            (b"host", b"shop.example:8080"),
            (b"user-agent", bot),
            (b"cf-ipcountry", b"JP"),
            (b"x-forwarded-for", b"81.2.69.142"),
            (b"x-forwarded-for", b" 203.0.113.7"),
        ],
    }
    app = ASGIMiddleware(
        echo, **opts(country_header="CF-IPCountry", trusted_proxies=1, capture_client_ip=True)
    )
    for raw in shapes.values():
        scope = http_scope("/x")
        scope["headers"] = raw
        assert response_of(await call_asgi(app, scope)) == (200, b"got:")
    spans = server_spans(exporter)
    assert len(spans) == 3
    first = dict(spans[0].attributes)
    assert first[attr.GEO_COUNTRY_ISO_CODE] == "JP"
    assert first[attr.DOWNSTREAM_DEVICE_CLASS] == "bot"
    assert first[attr.SERVER_ADDRESS] == "shop.example"
    assert first[attr.CLIENT_ADDRESS] == "203.0.113.7"
    assert [dict(s.attributes) for s in spans[1:]] == [first, first]
