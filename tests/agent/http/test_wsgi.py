"""WSGIMiddleware on plain WSGI apps: attributes, byte counting, span lifetime, faults."""

from __future__ import annotations

import logging
import wsgiref.util
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import fault_counts
from otel_downstream.agent.http.wsgi import WSGIMiddleware
from tests.agent.http.conftest import call_wsgi, environ_for, server_spans


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", b"world", body]


def test_span_carries_request_and_response(exporter, opts) -> None:
    app = WSGIMiddleware(hello, **opts())
    env = environ_for(
        "/items/7",
        method="POST",
        body=b"12345",
        headers={
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
        },
    )
    result = call_wsgi(app, env)
    assert result.status == "200 OK"
    assert result.body == b"hello world12345"
    (span,) = server_spans(exporter)
    assert span.name == "POST"  # no framework route: never the raw path
    assert span.kind is SpanKind.SERVER
    a = span.attributes
    assert a[attr.HTTP_REQUEST_METHOD] == "POST"
    assert a[attr.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[attr.HTTP_REQUEST_BODY_SIZE] == 5
    assert a[attr.HTTP_RESPONSE_BODY_SIZE] == 16
    assert a[attr.URL_SCHEME] == "http"
    assert a[attr.SERVER_ADDRESS] == "shop.example"
    assert a[attr.DOWNSTREAM_DEVICE_CLASS] == "smartphone"
    assert a[attr.GEO_COUNTRY_ISO_CODE] == "ZZ"
    assert attr.HTTP_ROUTE not in a
    assert attr.CLIENT_ADDRESS not in a and attr.USER_AGENT_ORIGINAL not in a
    assert attr.ERROR_TYPE not in a


def test_personal_data_only_when_enabled(exporter, opts) -> None:
    app = WSGIMiddleware(hello, **opts(capture_user_agent=True, capture_client_ip=True))
    call_wsgi(app, environ_for(headers={"User-Agent": "curl/8.5.0"}))
    (span,) = server_spans(exporter)
    assert span.attributes[attr.USER_AGENT_ORIGINAL] == "curl/8.5.0"
    assert span.attributes[attr.CLIENT_ADDRESS] == "203.0.113.9"
    assert span.attributes[attr.USER_AGENT_SYNTHETIC_TYPE] == "bot"


def test_country_header_when_configured(exporter, opts) -> None:
    app = WSGIMiddleware(hello, **opts(country_header="CF-IPCountry"))
    call_wsgi(app, environ_for(headers={"CF-IPCountry": "FR"}))
    assert server_spans(exporter)[0].attributes[attr.GEO_COUNTRY_ISO_CODE] == "FR"


def test_streaming_span_ends_after_close_and_close_is_called_once(exporter, opts) -> None:
    events: list[str] = []

    class Streamed:
        def __init__(self) -> None:
            self.closed = 0

        def __iter__(self) -> Iterator[bytes]:
            for i in range(3):
                events.append(f"chunk{i}")
                yield b"x" * 10

        def close(self) -> None:
            self.closed += 1
            events.append("close")

    body = Streamed()

    def app(environ: dict[str, Any], start_response: Any) -> Streamed:
        start_response("200 OK", [])
        return body

    wrapped = WSGIMiddleware(app, **opts())
    captured: list[str] = []
    iterable = wrapped(environ_for(), lambda s, h, e=None: captured.append(s))
    first = next(iter(iterable))
    assert first == b"x" * 10
    assert events == ["chunk0"]  # not buffered: the first chunk arrives before the rest exists
    assert exporter.get_finished_spans() == ()
    rest = list(iterable)
    assert len(rest) == 2
    assert exporter.get_finished_spans() == ()  # exhausted but not closed yet
    iterable.close()
    assert body.closed == 1
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 30


def test_app_exception_propagates_unchanged_and_marks_span(exporter, opts) -> None:
    boom = RuntimeError("boom")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise boom

    with pytest.raises(RuntimeError) as info:
        call_wsgi(WSGIMiddleware(app, **opts()), environ_for())
    assert info.value is boom
    assert info.traceback[-1].name == "app"  # raised where the app raised it
    (span,) = server_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "RuntimeError"
    assert any(e.name == "exception" for e in span.events)


def test_exception_while_iterating_marks_span_and_still_closes(exporter, opts) -> None:
    closed: list[int] = []

    def gen() -> Iterator[bytes]:
        try:
            yield b"ok"
            raise ValueError("mid-stream")
        finally:
            closed.append(1)

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        return gen()

    with pytest.raises(ValueError, match="mid-stream"):
        call_wsgi(WSGIMiddleware(app, **opts()), environ_for())
    (span,) = server_spans(exporter)
    assert span.attributes[attr.ERROR_TYPE] == "ValueError"
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 2
    assert closed == [1]


def test_legacy_write_is_counted(exporter, opts) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"abc")
        return [b"de"]

    result = call_wsgi(WSGIMiddleware(app, **opts()), environ_for())
    assert result.body == b"abcde"
    assert server_spans(exporter)[0].attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 5


@pytest.mark.parametrize(("method", "status"), [("HEAD", "200 OK"), ("GET", "204 No Content")])
def test_no_body_statuses_count_zero(exporter, opts, method: str, status: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [])
        return [b"ignored by servers"]

    call_wsgi(WSGIMiddleware(app, **opts()), environ_for(method=method))
    assert server_spans(exporter)[0].attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 0


def test_server_error_status_sets_error_type(exporter, opts) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [])
        return [b"down"]

    call_wsgi(WSGIMiddleware(app, **opts()), environ_for())
    (span,) = server_spans(exporter)
    assert span.attributes[attr.ERROR_TYPE] == "503"
    assert span.status.status_code is StatusCode.ERROR


def test_file_wrapper_body_is_counted(exporter, opts, tmp_path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * 20000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](path.open("rb"), 4096)

    env = environ_for()
    env["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
    result = call_wsgi(WSGIMiddleware(app, **opts()), env)
    assert result.body == b"z" * 20000
    assert server_spans(exporter)[0].attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 20000


def test_request_body_counted_as_read_in_lines(exporter, opts) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [])
        return [str(len(lines)).encode()]

    result = call_wsgi(WSGIMiddleware(app, **opts()), environ_for(method="PUT", body=b"a\nbb\nccc"))
    assert result.body == b"3"
    assert server_spans(exporter)[0].attributes[attr.HTTP_REQUEST_BODY_SIZE] == 8


def test_excluded_paths_get_no_span(exporter, opts) -> None:
    app = WSGIMiddleware(hello, **opts(excluded_paths="/metrics,/internal/"))
    for path in ("/metrics", "/internal/health"):
        assert call_wsgi(app, environ_for(path)).body == b"hello world"
    assert exporter.get_finished_spans() == ()
    call_wsgi(app, environ_for("/metrics2"))
    assert len(server_spans(exporter)) == 1


def test_excluded_paths_from_environment(exporter, opts, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_HTTP_EXCLUDED_PATHS", "/healthz")
    app = WSGIMiddleware(hello, **opts())
    call_wsgi(app, environ_for("/healthz"))
    assert exporter.get_finished_spans() == ()


def test_bad_configuration_names_the_variable(opts, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_HTTP_CAPTURE_CLIENT_IP", "maybe")
    with pytest.raises(ValueError, match="OTEL_DOWNSTREAM_HTTP_CAPTURE_CLIENT_IP"):
        WSGIMiddleware(hello, **opts())
    with pytest.raises(ValueError, match="excluded path 'metrics'"):
        WSGIMiddleware(hello, **opts(excluded_paths=["metrics"]))


def test_w3c_parent_is_extracted_when_callers_are_trusted(exporter, opts) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    app = WSGIMiddleware(hello, **opts(trust_trace_context=True))
    call_wsgi(app, environ_for(headers={"traceparent": parent}))
    (span,) = server_spans(exporter)
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


@pytest.mark.parametrize("flags", ["00", "01"])
def test_a_public_clients_context_is_a_link_and_decides_nothing(exporter, opts, flags) -> None:
    """A client's traceparent/tracestate neither hides its request (``-00``) nor weighs it
    (``ot=th``): the span starts its own trace, sampled by our sampler, linked to the client's."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-{flags}",
        "tracestate": "ot=th:fffffffffffff0,vendor=x",
    }
    call_wsgi(WSGIMiddleware(hello, **opts()), environ_for(headers=headers))
    (span,) = server_spans(exporter)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != trace_id
    assert span.context.trace_flags.sampled
    assert "ot" not in span.context.trace_state
    (link,) = span.links
    assert format(link.context.trace_id, "032x") == trace_id
    assert format(link.context.span_id, "016x") == "00f067aa0ba902b7"
    assert not link.context.trace_state  # the client's tracestate is kept nowhere


def test_a_public_clients_context_keeps_a_local_parent(exporter, opts, provider) -> None:
    """Only the client's context becomes a link: a span the app had open stays the parent."""
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with provider.get_tracer("app").start_as_current_span("outer") as outer:
        call_wsgi(WSGIMiddleware(hello, **opts()), environ_for(headers=headers))
    (span,) = server_spans(exporter)
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert format(span.links[0].context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_trust_trace_context_from_the_environment(exporter, opts, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_HTTP_TRUST_TRACE_CONTEXT", "true")
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    call_wsgi(WSGIMiddleware(hello, **opts()), environ_for(headers={"traceparent": parent}))
    (span,) = server_spans(exporter)
    assert span.parent is not None and not span.links


def test_app_spans_are_children_of_ours(exporter, opts, provider: TracerProvider) -> None:
    tracer = provider.get_tracer("app")

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        with tracer.start_as_current_span("handler"):
            start_response("200 OK", [])

        def body() -> Iterator[bytes]:
            with tracer.start_as_current_span("render"):
                yield b"x"

        return body()

    call_wsgi(WSGIMiddleware(app, **opts()), environ_for())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server = spans["GET"]
    assert spans["handler"].parent.span_id == server.context.span_id
    assert spans["render"].parent.span_id == server.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing leaks into the caller


def test_existing_server_span_is_annotated_not_duplicated(exporter, opts, provider) -> None:
    outer = provider.get_tracer("contrib")
    app = WSGIMiddleware(hello, **opts())
    with outer.start_as_current_span("GET /outer", kind=SpanKind.SERVER):
        result = call_wsgi(app, environ_for(body=b"abc", method="POST"))
    assert result.body == b"hello worldabc"
    (span,) = server_spans(exporter)
    assert span.name == "GET /outer"
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 14
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 3


@pytest.mark.parametrize(
    ("owner_set", "we_add"),
    [
        # Pre-stable names (the contrib default): no stable-name duplicates; the host is missing.
        (
            {"http.method": "PUT", "http.scheme": "https", "http.status_code": 201},
            {attr.SERVER_ADDRESS: "shop.example"},
        ),
        # Stable names: kept as the owner wrote them, never overwritten by ours.
        (
            {"http.request.method": "PUT", "server.address": "edge", "http.route": "/o/{x}"},
            {attr.URL_SCHEME: "http", attr.HTTP_RESPONSE_STATUS_CODE: 200},
        ),
        # An owner that set none of them (a custom SERVER span): we add them all.
        (
            {},
            {
                attr.HTTP_REQUEST_METHOD: "POST",
                attr.URL_SCHEME: "http",
                attr.SERVER_ADDRESS: "shop.example",
                attr.HTTP_RESPONSE_STATUS_CODE: 200,
            },
        ),
    ],
)
def test_annotation_adds_only_what_the_owner_has_not_set(
    exporter, opts, provider, owner_set, we_add
) -> None:
    outer = provider.get_tracer("contrib")
    app = WSGIMiddleware(hello, **opts())
    with outer.start_as_current_span("outer", kind=SpanKind.SERVER, attributes=owner_set):
        call_wsgi(app, environ_for(body=b"abc", method="POST"))
    (span,) = server_spans(exporter)
    ours = {
        attr.HTTP_REQUEST_BODY_SIZE: 3,
        attr.HTTP_RESPONSE_BODY_SIZE: 14,
        attr.DOWNSTREAM_DEVICE_CLASS: "unknown",
        attr.GEO_COUNTRY_ISO_CODE: "ZZ",
    }
    assert dict(span.attributes) == {**owner_set, **we_add, **ours}
    assert span.name == "outer"  # no route of ours: the owner's name stands


def test_broken_classifier_is_swallowed_counted_and_logged_once(exporter, opts, caplog) -> None:
    def broken(ua: str | None) -> Any:
        raise KeyError("classifier bug")

    app = WSGIMiddleware(hello, **opts(classifier=broken))
    with caplog.at_level(logging.WARNING, logger="otel_downstream"):
        for _ in range(3):
            assert call_wsgi(app, environ_for()).body == b"hello world"
    assert fault_counts()["wsgi"] == 3
    assert len([r for r in caplog.records if "internal error in wsgi" in r.getMessage()]) == 1
    spans = server_spans(exporter)
    assert len(spans) == 3
    assert spans[0].attributes[attr.DOWNSTREAM_DEVICE_CLASS] == "unknown"


def test_fault_at_request_start_passes_request_through(exporter, opts, monkeypatch) -> None:
    import otel_downstream.agent.http.wsgi as wsgi_module

    def broken(environ: dict[str, Any]) -> dict[str, str]:
        raise RuntimeError("header parsing bug")

    app = WSGIMiddleware(hello, **opts())
    monkeypatch.setattr(wsgi_module, "EnvironHeaders", broken)
    assert call_wsgi(app, environ_for(body=b"!", method="POST")).body == b"hello world!"
    assert fault_counts()["wsgi"] == 1
    assert exporter.get_finished_spans() == ()


def test_len_is_forwarded_for_servers_that_size_lists(opts) -> None:
    app = WSGIMiddleware(hello, **opts())
    body = app(environ_for(), lambda *a: None)
    assert len(body) == 3  # type: ignore[arg-type]
    body.close()  # type: ignore[attr-defined]


def test_contrib_wsgi_span_is_annotated_not_duplicated(exporter, opts, provider) -> None:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    app = OpenTelemetryMiddleware(WSGIMiddleware(hello, **opts()), tracer_provider=provider)
    result = call_wsgi(app, environ_for(body=b"abcd", method="POST"))
    assert result.body == b"hello worldabcd"
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_REQUEST_BODY_SIZE] == 4
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 15
    assert span.attributes[attr.DOWNSTREAM_DEVICE_CLASS] == "unknown"


def test_server_file_wrapper_is_kept_for_sendfile(exporter, opts, tmp_path) -> None:
    path = tmp_path / "sent.bin"
    path.write_bytes(b"s" * 5000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        handle = path.open("rb")
        handle.seek(1000)  # the server sends what is left from the current position
        return environ["wsgi.file_wrapper"](handle, 1024)

    env = environ_for()
    env["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
    body = WSGIMiddleware(app, **opts())(env, lambda *a: None)
    assert (
        type(body) is wsgiref.util.FileWrapper
    )  # still the server's type: sendfile stays possible
    assert exporter.get_finished_spans() == ()
    # A server that uses sendfile never reads through the wrapper; it only closes it.
    body.close()
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 4000


def test_input_untouched_without_a_body_and_counted_when_chunked(exporter, opts) -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"])
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [data]

    wrapped = WSGIMiddleware(app, **opts())
    plain = environ_for()
    original = plain["wsgi.input"]
    call_wsgi(wrapped, plain)
    assert seen[-1] is original
    chunked = environ_for(method="POST", headers={"Transfer-Encoding": "chunked"})
    chunked["wsgi.input"] = __import__("io").BytesIO(b"streamed body")
    chunked["wsgi.input_terminated"] = True
    assert call_wsgi(wrapped, chunked).body == b"streamed body"
    sizes = [s.attributes[attr.HTTP_REQUEST_BODY_SIZE] for s in server_spans(exporter)]
    assert sizes == [0, 13]


def test_option_conflicts_and_bad_values_fail_at_construction(opts) -> None:
    from otel_downstream.agent.client.country import CountryResolver

    with pytest.raises(ValueError, match="trusted_proxies=-1"):
        WSGIMiddleware(hello, **opts(trusted_proxies=-1))
    with pytest.raises(ValueError, match="not both"):
        WSGIMiddleware(
            hello, **opts(country_resolver=CountryResolver(), country_header="CF-IPCountry")
        )


def test_client_disconnect_mid_stream_counts_what_was_pulled(exporter, opts) -> None:
    produced: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])

        def gen() -> Iterator[bytes]:
            for i in range(10):
                produced.append(i)
                yield b"y" * 100

        return gen()

    body = WSGIMiddleware(app, **opts())(environ_for(), lambda *a: None)
    iterator = iter(body)
    next(iterator)
    next(iterator)
    body.close()  # the server saw the socket close and gives up, as servers do
    assert produced == [0, 1]
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == 200


@pytest.mark.parametrize("failure", [False, True])
def test_annotated_span_streaming_counts_pulled_chunks(exporter, opts, provider, failure) -> None:
    """An annotated span's body is counted without activation around chunks: a partial pull then
    close counts what was pulled and closes the app's generator; a failure mid-stream marks it."""
    closed: list[int] = []

    def gen() -> Iterator[bytes]:
        try:
            for _ in range(10):
                yield b"z" * 100
                if failure:
                    raise ValueError("mid-stream")
        finally:
            closed.append(1)

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        return gen()

    outer = provider.get_tracer("contrib")
    with outer.start_as_current_span("outer", kind=SpanKind.SERVER):
        body = WSGIMiddleware(app, **opts())(environ_for(), lambda *a: None)
        iterator = iter(body)
        assert next(iterator) == b"z" * 100
        if failure:
            with pytest.raises(ValueError, match="mid-stream"):
                next(iterator)
        else:
            next(iterator)
        body.close()  # type: ignore[attr-defined]
        assert closed == [1]
    (span,) = server_spans(exporter)
    assert span.attributes[attr.HTTP_RESPONSE_BODY_SIZE] == (100 if failure else 200)
    assert span.attributes.get(attr.ERROR_TYPE) == ("ValueError" if failure else None)
    assert fault_counts() == {}
