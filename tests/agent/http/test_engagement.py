"""Engagement beacon through both middlewares: off by default, validated, 204/4xx, one span each."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.http.asgi import ASGIMiddleware
from otel_downstream.agent.http.engagement import MAX_BODY_BYTES, BeaconError, parse_beacon
from otel_downstream.agent.http.wsgi import WSGIMiddleware
from tests.agent.http.conftest import call_asgi, call_wsgi, environ_for, http_scope, response_of

PATH = "/.well-known/downstream/engagement"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app saw " + environ["PATH_INFO"].encode()]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app saw " + scope["path"].encode()})


async def post(
    style: str, options: dict[str, Any], body: bytes, method: str = "POST", path: str = PATH
) -> tuple[int, bytes]:
    headers = {"User-Agent": IPHONE, "CF-IPCountry": "DE", "Content-Type": "text/plain"}
    if style == "wsgi":
        result = call_wsgi(
            WSGIMiddleware(wsgi_app, **options),
            environ_for(path, method=method, body=body, headers=headers),
        )
        return int(result.status[:3]), result.body
    scope = http_scope(path, method, {**headers, "content-length": str(len(body))})
    return response_of(await call_asgi(ASGIMiddleware(asgi_app, **options), scope, [body]))


def engagement_spans(exporter: Any) -> list[Any]:
    return [
        s for s in exporter.get_finished_spans() if s.name == attr.DOWNSTREAM_ENGAGEMENT_SPAN_NAME
    ]


STYLES = ["wsgi", "asgi"]


@pytest.mark.parametrize("style", STYLES)
async def test_off_by_default_the_app_gets_the_request(style, exporter, opts) -> None:
    status, body = await post(style, opts(), b'{"seconds": 3}')
    assert (status, body) == (200, b"app saw " + PATH.encode())
    assert engagement_spans(exporter) == []


@pytest.mark.parametrize("style", STYLES)
async def test_valid_beacon_is_recorded_with_device_and_country(style, exporter, opts) -> None:
    options = opts(engagement_beacon=True, country_header="CF-IPCountry")
    status, body = await post(style, options, b'{"seconds": 12.5, "page": "/products/{id}"}')
    assert (status, body) == (204, b"")
    (span,) = engagement_spans(exporter)
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes[attr.DOWNSTREAM_ENGAGEMENT_SECONDS] == 12.5
    assert span.attributes[attr.DOWNSTREAM_DEVICE_CLASS] == "smartphone"
    assert span.attributes[attr.GEO_COUNTRY_ISO_CODE] == "DE"
    assert span.attributes[attr.HTTP_ROUTE] == "/products/{id}"
    assert [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER] == []


BAD = [
    (b"not json", 400, "not UTF-8 JSON"),
    (b"\xff\xfe", 400, "not UTF-8 JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b"{}", 400, "seconds=None"),
    (b'{"seconds": "12"}', 400, "seconds='12'"),
    (b'{"seconds": true}', 400, "seconds=True"),
    (b'{"seconds": 0}', 400, "seconds=0.0"),
    (b'{"seconds": -4}', 400, "seconds=-4.0"),
    (b'{"seconds": NaN}', 400, "seconds=nan"),
    (b'{"seconds": Infinity}', 400, "seconds=inf"),
    (b'{"seconds": 86401}', 400, "seconds=86401.0"),
    (b'{"seconds": 5, "page": 7}', 400, "page=7"),
    (b'{"seconds": 5, "page": "' + b"p" * 300 + b'"}', 400, "page="),
    (b'{"seconds": 5, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}', 413, "exceeds"),
    (b"[" * 2000 + b"]" * 2000, 400, "not UTF-8 JSON"),  # nesting past the recursion limit
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("body", "status", "message"), BAD)
async def test_bad_beacons_get_4xx_naming_the_field(
    style, exporter, opts, body, status, message
) -> None:
    got_status, got_body = await post(style, opts(engagement_beacon=True), body)
    assert got_status == status
    assert message in got_body.decode()
    assert engagement_spans(exporter) == []


@pytest.mark.parametrize("style", STYLES)
async def test_wrong_method_is_405(style, exporter, opts) -> None:
    status, body = await post(style, opts(engagement_beacon=True), b"", method="GET")
    assert status == 405 and b"POST" in body


@pytest.mark.parametrize("style", STYLES)
async def test_path_from_environment_and_other_paths_unaffected(
    style, exporter, opts, monkeypatch
) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_ENGAGEMENT_BEACON", "true")
    monkeypatch.setenv("OTEL_DOWNSTREAM_ENGAGEMENT_PATH", "/beacon")
    assert await post(style, opts(), b'{"seconds": 1}', path="/beacon") == (204, b"")
    status, body = await post(style, opts(), b'{"seconds": 1}', path=PATH)
    assert (status, body) == (200, b"app saw " + PATH.encode())
    assert len(engagement_spans(exporter)) == 1


def test_parse_beacon_boundaries() -> None:
    assert parse_beacon(json.dumps({"seconds": 86400}).encode()).seconds == 86400.0
    assert parse_beacon(b'{"seconds": 0.001}').page is None
    with pytest.raises(BeaconError) as info:
        parse_beacon(b'{"seconds": 1e309}')
    assert info.value.status == 400


def test_bad_engagement_path_is_a_configuration_error(opts) -> None:
    with pytest.raises(ValueError, match="engagement_path='beacon'"):
        WSGIMiddleware(wsgi_app, **opts(engagement_path="beacon"))


def test_negative_content_length_is_refused_before_reading(exporter, opts) -> None:
    env = environ_for(PATH, method="POST", body=b'{"seconds": 1}')
    env["CONTENT_LENGTH"] = "-1"
    result = call_wsgi(WSGIMiddleware(wsgi_app, **opts(engagement_beacon=True)), env)
    assert result.status.startswith("400") and b"negative" in result.body
    assert engagement_spans(exporter) == []


def test_unreadable_beacon_body_is_answered_not_passed_to_the_app(exporter, opts) -> None:
    class Broken:
        def read(self, *args: Any) -> bytes:
            raise OSError("client went away")

    env = environ_for(PATH, method="POST", body=b'{"seconds": 1}')
    env["wsgi.input"] = Broken()
    result = call_wsgi(WSGIMiddleware(wsgi_app, **opts(engagement_beacon=True)), env)
    assert result.status.startswith("400")
    assert b"app saw" not in result.body
