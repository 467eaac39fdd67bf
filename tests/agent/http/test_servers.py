"""Real servers on 127.0.0.1: gunicorn (sync worker) + Flask, uvicorn + FastAPI.

One server process per case serves the same app twice: bare, and wrapped in our middleware (picked
by an ``X-Variant`` request header, which neither app reads), so responses are compared byte for
byte over real sockets. The server process writes its finished spans as JSON lines to a file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_downstream.agent import attributes as attr

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

COMMON = """
import json, os, time
from pathlib import Path
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class FileExporter(SpanExporter):
    def export(self, spans):
        with open(os.environ["SPANS_FILE"], "a") as out:
            for s in spans:
                out.write(json.dumps({"name": s.name, "kind": s.kind.name,
                                      "attributes": dict(s.attributes)}) + "\\n")
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
OPTIONS = {"tracer_provider": provider, "country_header": "CF-IPCountry"}
DATA = Path(os.environ["DATA_FILE"])
GATE = Path(os.environ["GATE_FILE"])

def wait_for_gate():
    deadline = time.monotonic() + 5
    while not GATE.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    GATE.unlink()
    return True
"""

FLASK_APP = (
    COMMON
    + """
import flask
from otel_downstream.agent.http.wsgi import WSGIMiddleware

def make():
    app = flask.Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id):
        return {"id": item_id, "name": "ü" * item_id}

    @app.post("/echo")
    def echo():
        return flask.request.get_data()[::-1]

    @app.get("/stream")
    def stream():
        def gen():
            yield b"first\\n"
            yield b"last\\n" if wait_for_gate() else b"buffered!\\n"
        return flask.Response(gen(), mimetype="text/plain")

    @app.get("/file")
    def file():
        return flask.send_file(DATA, mimetype="application/octet-stream")

    return app

bare = make()
wrapped = make()
wrapped.wsgi_app = WSGIMiddleware(wrapped.wsgi_app, **OPTIONS)

def app(environ, start_response):
    target = wrapped if environ.get("HTTP_X_VARIANT") == "mw" else bare
    return target(environ, start_response)
"""
)

FASTAPI_APP = (
    COMMON
    + """
import asyncio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from otel_downstream.agent.http.asgi import ASGIMiddleware

def make():
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id, "name": "é" * item_id}

    @app.post("/echo")
    async def echo(request: Request):
        return Response((await request.body())[::-1], media_type="application/octet-stream")

    @app.get("/stream")
    async def stream():
        async def gen():
            yield b"first\\n"
            ok = await asyncio.to_thread(wait_for_gate)
            yield b"last\\n" if ok else b"buffered!\\n"
        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/file")
    async def file():
        return FileResponse(DATA)

    return app

bare = make()
wrapped = make()
wrapped.add_middleware(ASGIMiddleware, **OPTIONS)

async def app(scope, receive, send):
    headers = dict(scope.get("headers") or [])
    target = wrapped if headers.get(b"x-variant") == b"mw" else bare
    await target(scope, receive, send)
"""
)

DJANGO_SITE = (
    COMMON
    + """
import asyncio
import django
from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

def item(request, item_id):
    return JsonResponse({"id": item_id, "name": "ü" * item_id})

def echo(request):
    return HttpResponse(request.body[::-1], content_type="application/octet-stream")

def stream(request):
    if hasattr(request, "scope"):  # ASGI: Django streams only asynchronous iterators unbuffered
        async def agen():
            yield b"first\\n"
            ok = await asyncio.to_thread(wait_for_gate)
            yield b"last\\n" if ok else b"buffered!\\n"
        return StreamingHttpResponse(agen(), content_type="text/plain")
    def gen():
        yield b"first\\n"
        yield b"last\\n" if wait_for_gate() else b"buffered!\\n"
    return StreamingHttpResponse(gen(), content_type="text/plain")

def file(request):
    return FileResponse(DATA.open("rb"))

urlpatterns = [
    path("items/<int:item_id>", item),
    path("echo", echo),
    path("stream", stream),
    path("file", file),
]
settings.configure(DEBUG=False, SECRET_KEY="test-only", ROOT_URLCONF=__name__,
                   ALLOWED_HOSTS=["*"], MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={})
django.setup()
"""
)

DJANGO_WSGI_APP = (
    DJANGO_SITE
    + """
from django.core.handlers.wsgi import WSGIHandler
from otel_downstream.agent.http.wsgi import WSGIMiddleware

bare = WSGIHandler()
wrapped = WSGIMiddleware(WSGIHandler(), **OPTIONS)

def app(environ, start_response):
    target = wrapped if environ.get("HTTP_X_VARIANT") == "mw" else bare
    return target(environ, start_response)
"""
)

DJANGO_ASGI_APP = (
    DJANGO_SITE
    + """
from django.core.handlers.asgi import ASGIHandler
from otel_downstream.agent.http.asgi import ASGIMiddleware

bare = ASGIHandler()
wrapped = ASGIMiddleware(ASGIHandler(), **OPTIONS)

async def app(scope, receive, send):
    headers = dict(scope.get("headers") or [])
    target = wrapped if headers.get(b"x-variant") == b"mw" else bare
    await target(scope, receive, send)
"""
)

SITES = {
    "gunicorn-flask": (FLASK_APP, "flask_site", "/items/<int:item_id>"),
    "gunicorn-django": (DJANGO_WSGI_APP, "django_site", "/items/<int:item_id>"),
    "uvicorn-django": (DJANGO_ASGI_APP, "django_asgi_site", "/items/<int:item_id>"),
    "uvicorn-fastapi": (FASTAPI_APP, "fast_site", "/items/{item_id}"),
}

DATA_BYTES = os.urandom(300_000)


class Server:
    def __init__(self, tmp: Path, kind: str, site: tuple[str, str, str] | None = None) -> None:
        """``kind`` starts with the server's name; ``site`` is (source, module, route), else the
        one of ``SITES[kind]``."""
        self.tmp = tmp
        self.spans_file = tmp / "spans.jsonl"
        self.gate = tmp / "gate"
        (tmp / "data.bin").write_bytes(DATA_BYTES)
        self.kind = kind
        source, module, self.route = site or SITES[kind]
        (tmp / f"{module}.py").write_text(source)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        os.set_inheritable(fd, True)
        bin_dir = Path(sys.executable).parent
        if kind.startswith("gunicorn"):
            cmd = [str(bin_dir / "gunicorn"), "--bind", f"fd://{fd}", "--workers", "1"]
            cmd += ["--chdir", str(tmp), "--log-level", "warning", f"{module}:app"]
        else:
            cmd = [str(bin_dir / "uvicorn"), "--fd", str(fd), "--app-dir", str(tmp)]
            cmd += ["--log-level", "warning", "--no-access-log", f"{module}:app"]
        env = {
            **os.environ,
            "SPANS_FILE": str(self.spans_file),
            "DATA_FILE": str(tmp / "data.bin"),
            "GATE_FILE": str(self.gate),
        }
        self.proc = subprocess.Popen(cmd, pass_fds=(fd,), env=env, cwd=tmp)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base + "/items/1", timeout=2)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.1)
        self.spans_file.unlink(missing_ok=True)

    def spans(self, expected: int = 1) -> list[dict[str, Any]]:
        """Spans written so far, waiting (bounded) for ``expected``: a span ends after the last
        byte is handed to the server, which can be just after the client has read it."""
        deadline = time.monotonic() + 5
        while True:
            text = self.spans_file.read_text() if self.spans_file.exists() else ""
            complete = text[: text.rfind("\n") + 1]  # a line may be half-written right now
            spans = [json.loads(line) for line in complete.splitlines()]
            if len(spans) >= expected or time.monotonic() > deadline:
                return spans
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


@pytest.fixture(scope="module", params=sorted(SITES))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp(request.param), request.param)
    yield srv
    srv.stop()


def _fetch(client: httpx.Client, variant: str, method: str, path: str, body: Any) -> httpx.Response:
    headers = {"X-Variant": variant, "CF-IPCountry": "JP", "User-Agent": "curl/8.5.0"}
    return client.request(method, path, headers=headers, content=body)


def _chunks() -> Iterator[bytes]:
    yield b"chunked-"
    yield b"\xffbody"


CASES = [
    ("GET", "/items/9", None),
    ("POST", "/echo", b"plain body \x00\x01"),
    ("POST", "/echo", "chunked"),
    ("GET", "/file", None),
    ("HEAD", "/file", None),
    ("GET", "/missing", None),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_responses_identical_over_real_sockets(server: Server, method, path, body) -> None:
    server.spans_file.unlink(missing_ok=True)
    responses = []
    with httpx.Client(base_url=server.base, timeout=10) as client:
        for variant in ("bare", "mw"):
            content = _chunks() if body == "chunked" else body
            responses.append(_fetch(client, variant, method, path, content))
    bare, wrapped = responses
    assert bare.status_code == wrapped.status_code
    strip = {"date"}
    assert [h for h in bare.headers.raw if h[0].lower().decode() not in strip] == [
        h for h in wrapped.headers.raw if h[0].lower().decode() not in strip
    ]
    assert bare.content == wrapped.content
    spans = [s for s in server.spans() if s["kind"] == "SERVER"]
    assert len(spans) == 1
    a = spans[0]["attributes"]
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == len(wrapped.content)
    # /echo answers the body it read, reversed; Django reads no chunked body under WSGI (no length).
    sent = len(wrapped.content) if path == "/echo" else 0
    if path == "/echo" and not (body == "chunked" and server.kind == "gunicorn-django"):
        assert sent == (len(b"".join(_chunks())) if body == "chunked" else len(body))
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == sent
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == wrapped.status_code
    assert a[attr.GEO_COUNTRY_ISO_CODE] == "JP"
    assert a[attr.DOWNSTREAM_DEVICE_CLASS] == "bot"
    if path == "/file" and method == "GET":
        assert wrapped.content == DATA_BYTES


def test_route_template_recorded(server: Server) -> None:
    server.spans_file.unlink(missing_ok=True)
    with httpx.Client(base_url=server.base, timeout=10) as client:
        assert _fetch(client, "mw", "GET", "/items/31", None).status_code == 200
    (span,) = server.spans()
    route = server.route
    assert span["name"] == f"GET {route}"
    assert span["attributes"][attr.HTTP_ROUTE] == route


@pytest.mark.parametrize("variant", ["bare", "mw"])
def test_streaming_is_not_buffered(server: Server, variant: str) -> None:
    server.spans_file.unlink(missing_ok=True)
    with (
        httpx.Client(base_url=server.base, timeout=10) as client,
        client.stream("GET", "/stream", headers={"X-Variant": variant}) as response,
    ):
        chunks = response.iter_bytes()
        first = next(chunks)
        assert first == b"first\n"  # reached us while the app is still waiting to produce more
        server.gate.write_text("go")
        rest = b"".join(chunks)
    assert rest == b"last\n"
    if variant == "mw":
        (span,) = server.spans()
        assert span["attributes"][attr.HTTP_RESPONSE_BODY_SIZE] == 11
