"""A header sent on several lines reads the same through both middlewares, over real servers.

gunicorn joins repeated lines into one environ value before Flask and ``WSGIMiddleware`` see them;
uvicorn hands every line to FastAPI and ``ASGIMiddleware`` separately, and our header reader joins
them. The same request (two ``X-Forwarded-For`` lines, two ``tracestate`` lines, a repeated
``User-Agent``) must give the same country, client address, attributes and parent context either
way, for the request span and for the engagement beacon.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from otel_downstream.agent import attributes as attr

from .test_servers import Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

GB_IP = "81.2.69.160"
DE_IP = "5.9.0.1"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
CURL = "curl/8.5.0"
BEACON = "/.well-known/downstream/engagement"

COMMON = """
import json, os
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

def context(ctx):
    if ctx is None:
        return None
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
            "remote": ctx.is_remote, "flags": int(ctx.trace_flags),
            "trace_state": ctx.trace_state.to_header()}

class FileExporter(SpanExporter):
    def export(self, spans):
        with open(os.environ["SPANS_FILE"], "a") as out:
            for s in spans:
                out.write(json.dumps({"name": s.name, "kind": s.kind.name,
                                      "attributes": dict(s.attributes),
                                      "parent": context(s.parent),
                                      "trace_state": s.context.trace_state.to_header(),
                                      "links": [context(link.context) for link in s.links]}) + "\\n")
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
OPTIONS = {"tracer_provider": provider, "trusted_proxies": 2, "capture_user_agent": True,
           "capture_client_ip": True, "trust_trace_context": True, "engagement_beacon": True}
"""

FLASK_SITE = (
    COMMON
    + """
import flask
from otel_downstream.agent.http.wsgi import WSGIMiddleware

def make():
    app = flask.Flask("shop")

    @app.get("/hello")
    def hello():
        return flask.Response("hello", mimetype="text/plain")

    return app

bare = make()
wrapped = make()
wrapped.wsgi_app = WSGIMiddleware(wrapped.wsgi_app, **OPTIONS)

def app(environ, start_response):
    target = wrapped if environ.get("HTTP_X_VARIANT") == "mw" else bare
    return target(environ, start_response)
"""
)

FASTAPI_SITE = (
    COMMON
    + """
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from otel_downstream.agent.http.asgi import ASGIMiddleware

def make():
    app = FastAPI()

    @app.get("/hello")
    async def hello():
        return PlainTextResponse("hello")

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

SITES = {
    "gunicorn-flask": (FLASK_SITE, "repeat_flask", "/hello"),
    "uvicorn-fastapi": (FASTAPI_SITE, "repeat_fast", "/hello"),
}

# Each repeated header on its own line, in this order (httpx sends a list of pairs as it is).
REPEATED = [
    ("X-Variant", "mw"),
    ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),
    ("tracestate", "vendor1=a"),
    ("tracestate", "vendor2=b"),
    ("X-Forwarded-For", f"198.51.100.7, {GB_IP}"),  # what the client claimed, then proxy 1
    ("X-Forwarded-For", DE_IP),  # proxy 2, on its own line
    ("User-Agent", PHONE),
    ("User-Agent", CURL),
]


@pytest.fixture(scope="module")
def spans_by_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Per server: the request's SERVER span and the beacon's span, for the same headers."""
    found: dict[str, Any] = {}
    for kind, site in SITES.items():
        server = Server(tmp_path_factory.mktemp(kind), kind, site)
        try:
            with httpx.Client(base_url=server.base, timeout=10) as client:
                assert client.get("/hello", headers=REPEATED).text == "hello"
                beacon = client.post(
                    BEACON, headers=REPEATED, content=json.dumps({"seconds": 12.5}).encode()
                )
                assert beacon.status_code == 204, beacon.text
            spans = server.spans(expected=2)
        finally:
            server.stop()
        by_kind = {span["kind"]: span for span in spans}
        assert len(spans) == 2
        found[kind] = (by_kind["SERVER"], by_kind["INTERNAL"])
    yield found


def test_request_span_is_the_same_through_both_middlewares(
    spans_by_server: dict[str, Any],
) -> None:
    wsgi, _ = spans_by_server["gunicorn-flask"]
    asgi, _ = spans_by_server["uvicorn-fastapi"]
    a = wsgi["attributes"]
    # Two X-Forwarded-For lines are one chain, client first: the second-to-last entry is the client
    # as seen by the first of the two trusted proxies.
    assert a[attr.CLIENT_ADDRESS] == GB_IP
    assert a[attr.GEO_COUNTRY_ISO_CODE] == "GB"
    # A repeated singleton reads as its lines joined by the one rule.
    assert a[attr.USER_AGENT_ORIGINAL] == f"{PHONE},{CURL}"
    assert wsgi["parent"] == {
        "trace_id": TRACE_ID,
        "span_id": PARENT_ID,
        "remote": True,
        "flags": 1,
        "trace_state": "vendor1=a,vendor2=b",
    }
    assert wsgi["trace_state"] == "vendor1=a,vendor2=b"
    assert asgi == wsgi


def test_beacon_span_is_the_same_through_both_middlewares(
    spans_by_server: dict[str, Any],
) -> None:
    _, wsgi = spans_by_server["gunicorn-flask"]
    _, asgi = spans_by_server["uvicorn-fastapi"]
    assert wsgi["attributes"][attr.GEO_COUNTRY_ISO_CODE] == "GB"
    assert wsgi["attributes"][attr.DOWNSTREAM_ENGAGEMENT_SECONDS] == 12.5
    assert asgi == wsgi
