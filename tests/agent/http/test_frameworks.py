"""Real Flask, Django and FastAPI/Starlette apps in-process: identical responses, route templates."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, Response, StreamingResponse
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.http.asgi import ASGIMiddleware
from otel_downstream.agent.http.wsgi import WSGIMiddleware
from tests.agent.http.conftest import call_wsgi, environ_for, server_spans

FILE_BYTES = bytes(range(256)) * 300  # 76.8 kB, binary


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("static") / "blob.bin"
    path.write_bytes(FILE_BYTES)
    return path


def _comparable(headers: Any) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers if k.lower() != "date")


# --- Flask ---------------------------------------------------------------------------------------


def make_flask(data_file: Path) -> Any:
    import flask

    app = flask.Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return {"id": item_id, "name": "ü" * item_id}

    @app.post("/echo")
    def echo() -> Any:
        return flask.request.get_data()[::-1]

    @app.get("/stream")
    def stream() -> Any:
        def gen() -> Iterator[str]:
            for i in range(5):
                yield f"line {i}\n"

        return flask.Response(gen(), mimetype="text/plain")

    @app.get("/file")
    def file() -> Any:
        return flask.send_file(data_file, mimetype="application/octet-stream")

    @app.get("/fail")
    def fail() -> Any:
        raise RuntimeError("flask view failed")

    return app


FLASK_CASES = [
    ("GET", "/items/3", b""),
    ("POST", "/echo", b"payload-\xff\x00"),
    ("GET", "/stream", b""),
    ("GET", "/file", b""),
    ("HEAD", "/items/4", b""),
    ("GET", "/missing", b""),
    ("GET", "/fail", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), FLASK_CASES)
def test_flask_responses_identical(exporter, opts, data_file, method, path, body) -> None:
    bare = make_flask(data_file)
    wrapped = make_flask(data_file)
    wrapped.wsgi_app = WSGIMiddleware(wrapped.wsgi_app, **opts())
    results = []
    for app in (bare, wrapped):
        env = environ_for(path, method=method, body=body)
        env["wsgi.file_wrapper"] = __import__("wsgiref.util").util.FileWrapper
        results.append(call_wsgi(app, env))
    assert results[0].status == results[1].status
    assert _comparable(results[0].headers) == _comparable(results[1].headers)
    assert results[0].body == results[1].body
    (span,) = server_spans(exporter)
    sent = 0 if method == "HEAD" else len(results[1].body)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == sent
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == len(body)


def test_flask_route_template_and_status(exporter, opts, data_file) -> None:
    app = make_flask(data_file)
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, **opts())
    assert call_wsgi(app, environ_for("/items/12")).status == "200 OK"
    assert call_wsgi(app, environ_for("/nowhere")).status.startswith("404")
    assert call_wsgi(app, environ_for("/fail")).status.startswith("500")
    ok, missing, failed = server_spans(exporter)
    assert ok.name == "GET /items/<int:item_id>"
    assert ok.attributes[attr.HTTP_ROUTE] == "/items/<int:item_id>"
    assert missing.name == "GET" and attr.HTTP_ROUTE not in missing.attributes
    assert missing.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 404
    assert failed.attributes[attr.HTTP_ROUTE] == "/fail"
    assert failed.attributes[attr.ERROR_TYPE] == "500"


def test_flask_propagated_exception_is_the_same_object(exporter, opts, data_file) -> None:
    app = make_flask(data_file)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, **opts())
    with pytest.raises(RuntimeError, match="flask view failed") as info:
        call_wsgi(app, environ_for("/fail"))
    assert any(entry.name == "fail" for entry in info.traceback)
    (span,) = server_spans(exporter)
    assert span.attributes[attr.ERROR_TYPE] == "RuntimeError"
    assert span.attributes[attr.HTTP_ROUTE] == "/fail"


# --- Django --------------------------------------------------------------------------------------


def _django_views(data_file: Path) -> types.ModuleType:
    from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path

    def item(request: Any, item_id: int) -> Any:
        return JsonResponse({"id": item_id})

    def echo(request: Any) -> Any:
        return HttpResponse(request.body[::-1], content_type="application/octet-stream")

    def stream(request: Any) -> Any:
        return StreamingHttpResponse(f"row {i}\n".encode() for i in range(4))

    def blob(request: Any) -> Any:
        return FileResponse(data_file.open("rb"))

    def fail(request: Any) -> Any:
        raise RuntimeError("django view failed")

    urls = types.ModuleType("downstream_test_django_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("items/<int:item_id>/", item),
        path("echo/", echo),
        path("stream/", stream),
        path("blob/", blob),
        path("fail/", fail),
    ]
    return urls


@pytest.fixture(scope="module")
def django_ready(data_file: Path) -> None:
    import django
    from django.conf import settings

    urls = _django_views(data_file)
    sys.modules[urls.__name__] = urls
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ROOT_URLCONF=urls.__name__,
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
            LOGGING_CONFIG=None,
        )
        django.setup()
    else:
        settings.ROOT_URLCONF = urls.__name__


DJANGO_CASES = [
    ("GET", "/items/7/", b""),
    ("POST", "/echo/", b"dj\x00\xffango"),
    ("GET", "/stream/", b""),
    ("GET", "/blob/", b""),
    ("GET", "/nope/", b""),
    ("GET", "/fail/", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), DJANGO_CASES)
def test_django_wsgi_responses_identical(
    exporter, opts, django_ready, method, path, body, caplog
) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    results = []
    for app in (WSGIHandler(), WSGIMiddleware(WSGIHandler(), **opts())):
        env = environ_for(path, method=method, body=body)
        env["wsgi.file_wrapper"] = __import__("wsgiref.util").util.FileWrapper
        results.append(call_wsgi(app, env))
    assert results[0].status == results[1].status
    assert _comparable(results[0].headers) == _comparable(results[1].headers)
    assert results[0].body == results[1].body
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == len(results[1].body)
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == len(body)


def test_django_route_template(exporter, opts, django_ready) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    app = WSGIMiddleware(WSGIHandler(), **opts())
    assert call_wsgi(app, environ_for("/items/99/")).status == "200 OK"
    assert call_wsgi(app, environ_for("/nope/")).status.startswith("404")
    found, missing = server_spans(exporter)
    assert found.name == "GET /items/<int:item_id>/"
    assert found.attributes[attr.HTTP_ROUTE] == "/items/<int:item_id>/"
    assert attr.HTTP_ROUTE not in missing.attributes


async def test_django_asgi_route_and_bytes(exporter, opts, django_ready) -> None:
    from django.core.handlers.asgi import ASGIHandler

    app = ASGIMiddleware(ASGIHandler(), **opts())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        response = await client.post("/echo/", content=b"abcdef")
        streamed = await client.get("/items/5/")
    assert response.content == b"fedcba"
    assert streamed.status_code == 200
    echo, item = server_spans(exporter)
    assert echo.attributes[attr.HTTP_ROUTE] == "/echo/"
    assert echo.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 6
    assert echo.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 6
    assert item.name == "GET /items/<int:item_id>/"
    assert item.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == len(streamed.content)


# --- FastAPI / Starlette -------------------------------------------------------------------------


def make_fastapi(data_file: Path) -> Any:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "é" * item_id}

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return Response((await request.body())[::-1], media_type="application/octet-stream")

    @app.get("/stream")
    async def stream() -> Any:
        async def gen() -> Any:
            for i in range(5):
                yield f"chunk {i}\n".encode()

        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/file")
    async def file() -> Any:
        return FileResponse(data_file)

    @app.get("/fail")
    async def fail() -> Any:
        raise RuntimeError("fastapi view failed")

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text * 2)
        await websocket.close()

    return app


FASTAPI_CASES = [
    ("GET", "/items/5", b""),
    ("POST", "/echo", b"fast\xffapi"),
    ("GET", "/stream", b""),
    ("GET", "/file", b""),
    ("HEAD", "/file", b""),
    ("GET", "/missing", b""),
]


@pytest.mark.parametrize("style", ["add_middleware", "wrap"])
@pytest.mark.parametrize(("method", "path", "body"), FASTAPI_CASES)
async def test_fastapi_responses_identical(
    exporter, opts, data_file, method, path, body, style
) -> None:
    bare = make_fastapi(data_file)
    wrapped: Any = make_fastapi(data_file)
    if style == "add_middleware":
        wrapped.add_middleware(ASGIMiddleware, **opts())
    else:
        wrapped = ASGIMiddleware(wrapped, **opts())
    responses = []
    for app in (bare, wrapped):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
            responses.append(await client.request(method, path, content=body))
    a, b = responses
    assert a.status_code == b.status_code
    assert _comparable(a.headers.raw and [(k.decode(), v.decode()) for k, v in a.headers.raw]) == (
        _comparable([(k.decode(), v.decode()) for k, v in b.headers.raw])
    )
    assert a.content == b.content
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == len(b.content)
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == len(body)


async def test_fastapi_route_templates(exporter, opts, data_file) -> None:
    app = make_fastapi(data_file)
    app.add_middleware(ASGIMiddleware, **opts())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        assert (await client.get("/items/42")).status_code == 200
        assert (await client.get("/nothing/here")).status_code == 404
    found, missing = server_spans(exporter)
    assert found.name == "GET /items/{item_id}"
    assert found.attributes[attr.HTTP_ROUTE] == "/items/{item_id}"
    assert missing.name == "GET" and attr.HTTP_ROUTE not in missing.attributes


async def test_fastapi_exception_same_object_through_wrapper(exporter, opts, data_file) -> None:
    app = ASGIMiddleware(make_fastapi(data_file), **opts())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        with pytest.raises(RuntimeError, match="fastapi view failed") as info:
            await client.get("/fail")
    assert any(entry.name == "fail" for entry in info.traceback)
    (span,) = server_spans(exporter)
    assert span.attributes[attr.ERROR_TYPE] == "RuntimeError"
    assert span.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 500
    assert span.attributes[attr.HTTP_ROUTE] == "/fail"


def test_starlette_websocket_route_and_bytes(
    exporter: InMemorySpanExporter, opts, data_file
) -> None:
    from starlette.testclient import TestClient

    app = make_fastapi(data_file)
    app.add_middleware(ASGIMiddleware, **opts())
    with TestClient(app) as client, client.websocket_connect("/ws/lobby") as ws:
        ws.send_text("hey")
        assert ws.receive_text() == "heyhey"
    (span,) = server_spans(exporter)
    assert span.name == "GET /ws/{room}"
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 3
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 6


async def test_mounted_sub_apps_get_full_static_templates(exporter, opts) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi " + "/".join(map(str, request.path_params.values())))

    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def sub_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app = FastAPI()
    app.mount("/v1", sub)
    app.mount(
        "/api",
        Starlette(routes=[Mount("/v2", routes=[Route("/things/{name}", hello)])]),
    )
    app.mount("/t/{tenant}", Starlette(routes=[Route("/home", hello)]))
    wrapped = ASGIMiddleware(app, **opts())
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        assert (await client.get("/v1/items/3")).json() == {"id": 3}
        assert (await client.get("/api/v2/things/box")).text == "hi box"
        assert (await client.get("/t/acme/home")).text == "hi acme"
    routes = [s.attributes.get(attr.HTTP_ROUTE) for s in server_spans(exporter)]
    # A mount with parameters is left out rather than leaking the tenant into the route.
    assert routes == ["/v1/items/{item_id}", "/api/v2/things/{name}", "/home"]
