"""Property test: random, hostile request headers never change the response and never raise.

User agents, X-Forwarded-For, Forwarded, the CDN country header and traceparent get arbitrary
bytes (binary, non-ASCII, up to 64 KB) through both middlewares, with proxies trusted and the
country header enabled so every parser on the request path sees them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.http.asgi import ASGIMiddleware
from otel_downstream.agent.http.wsgi import WSGIMiddleware
from tests.agent.http.conftest import (
    call_asgi,
    call_wsgi,
    environ_for,
    http_scope,
    response_of,
)

HEADER_NAMES = ["user-agent", "x-forwarded-for", "forwarded", "cf-ipcountry", "traceparent", "host"]

values = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.sampled_from(
        [
            b"A" * 65536,
            b"1.2.3.4, 10.0.0.1, ::1, [2001:db8::1]:443, unknown, _hidden",
            b'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"',
            b"00-" + b"f" * 32 + b"-" + b"0" * 16 + b"-01",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) 手机 Mobile".encode(),
            b"\x00\r\n\xff",
            b"XX",
            b"",
        ]
    ),
)
header_sets = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), values), max_size=8)


def _middleware_options(provider: TracerProvider) -> dict[str, Any]:
    return {
        "tracer_provider": provider,
        "capture_client_ip": True,
        "trusted_proxies": 2,
        "country_header": "CF-IPCountry",
    }


EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok:", environ["wsgi.input"].read()]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = (await receive()).get("body", b"")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok:" + body})


WSGI = WSGIMiddleware(wsgi_app, **_middleware_options(PROVIDER))
ASGI = ASGIMiddleware(asgi_app, **_middleware_options(PROVIDER))


def _check_span() -> None:
    spans = EXPORTER.get_finished_spans()
    EXPORTER.clear()
    assert len(spans) == 1
    a = spans[0].attributes
    assert a[attr.DOWNSTREAM_DEVICE_CLASS] in attr.DEVICE_CLASSES
    country = a[attr.GEO_COUNTRY_ISO_CODE]
    assert isinstance(country, str) and len(country) == 2 and country.isupper()
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == 4


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(headers=header_sets)
def test_wsgi_hostile_headers(headers: list[tuple[str, bytes]]) -> None:
    EXPORTER.clear()
    env_headers = {name: value.decode("latin-1") for name, value in headers}
    bare = call_wsgi(wsgi_app, environ_for(method="POST", body=b"data", headers=env_headers))
    wrapped = call_wsgi(WSGI, environ_for(method="POST", body=b"data", headers=env_headers))
    assert (bare.status, bare.headers, bare.body) == (wrapped.status, wrapped.headers, wrapped.body)
    _check_span()


@PROPERTY
@given(headers=header_sets)
def test_asgi_hostile_headers(headers: list[tuple[str, bytes]]) -> None:
    EXPORTER.clear()
    pairs = [(name, value.decode("latin-1")) for name, value in headers]

    async def both() -> tuple[Any, Any]:
        bare = await call_asgi(asgi_app, http_scope("/", "POST", pairs), [b"data"])
        wrapped = await call_asgi(ASGI, http_scope("/", "POST", pairs), [b"data"])
        return bare, wrapped

    bare, wrapped = asyncio.run(both())
    assert bare == wrapped
    assert response_of(wrapped) == (200, b"ok:data")
    _check_span()
