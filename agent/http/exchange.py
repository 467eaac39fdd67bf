"""The per-request core shared by the WSGI and ASGI middleware.

Both middlewares reduce what they see to one :class:`Exchange` (mutable, per request, never on the
middleware object). When the response is over, :meth:`Exchange.attributes` turns it into span
attributes and :meth:`Exchange.finish` sets them in a single ``set_attributes`` call and ends the
span exactly once. If an OpenTelemetry SERVER span is already active (contrib instrumentation
wraps us), we annotate it instead of starting a second one, adding only what its owner has not set
(:mod:`~otel_downstream.agent.http.owner_attributes`). Construction-time settings live in
:mod:`~otel_downstream.agent.http.prepare`, the client's description in
:mod:`~otel_downstream.agent.http.describe` (shared with the engagement beacon).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import AttributeValue

from otel_downstream.agent.attributes import (
    CLIENT_ADDRESS,
    DOWNSTREAM_DEVICE_CLASS,
    ERROR_TYPE,
    GEO_COUNTRY_ISO_CODE,
    HTTP_REQUEST_BODY_SIZE,
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_BODY_SIZE,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    SERVER_ADDRESS,
    URL_SCHEME,
    USER_AGENT_ORIGINAL,
    USER_AGENT_SYNTHETIC_TYPE,
)
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http.describe import describe_client
from otel_downstream.agent.http.options import HTTPOptions
from otel_downstream.agent.http.owner_attributes import NOTHING_SET, owner_names

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)


_SERVER = SpanKind.SERVER


def normalize_method(method: str) -> str:
    """Semconv method value: a known method, or ``_OTHER`` (unbounded values never reach labels)."""
    return method if method in _KNOWN_METHODS else "_OTHER"


def host_without_port(host: str | None) -> str | None:
    """``server.address`` from a Host header (IPv6 literals keep their brackets stripped)."""
    if not host:
        return None
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else None
    return host.partition(":")[0] or None


_NO_STATE: Final = TraceState()


def _start_server_span(tracer: Tracer, name: str, headers: Mapping[str, str], trust: bool) -> Span:
    """The request's SERVER span, in the caller's trace only when callers are trusted.

    A public client controls its ``traceparent`` and ``tracestate``: as a parent it would decide
    whether the request is sampled (``-00`` hid requests from ``serve``) and, through ``ot=th``,
    how many requests it stands for. Untrusted, its context becomes a link (what OpenTelemetry Go's
    ``otelhttp`` does for public endpoints): the trace stays findable, our sampler decides, and the
    span carries no client ``tracestate``. Baggage and any local parent are kept either way."""
    context = extract(headers)
    if trust:
        return tracer.start_span(name, context=context, kind=SpanKind.SERVER)
    remote = trace.get_current_span(context).get_span_context()
    if not remote.is_remote:  # no usable traceparent: nothing of the client's to keep apart
        return tracer.start_span(name, context=context, kind=SpanKind.SERVER)
    # The parent is whatever was current before the client's context was read (a local span, or
    # none: a new trace); the link keeps the client's ids but none of its tracestate.
    parent = trace.set_span_in_context(trace.get_current_span(), context)
    link = SpanContext(remote.trace_id, remote.span_id, True, remote.trace_flags, _NO_STATE)
    return tracer.start_span(name, context=parent, kind=SpanKind.SERVER, links=(Link(link),))


class Exchange:
    """One request in flight: the span, byte counters and outcome. Created per request.

    Arguments are positional: building a class instance with keyword arguments costs the caller a
    keyword dict per request (about 0.2 µs here).
    """

    __slots__ = (
        "_token",
        "component",
        "error_type",
        "exception",
        "finished",
        "headers",
        "method",
        "options",
        "owned",
        "peer_ip",
        "request_bytes",
        "response_bytes",
        "route",
        "scheme",
        "span",
        "status_code",
    )

    def __init__(  # noqa: PLR0917 - positional on purpose, see the class docstring
        self,
        component: str,
        options: HTTPOptions,
        tracer: Tracer,
        method: str,
        headers: Mapping[str, str],
        scheme: str | None,
        peer_ip: str | None,
    ) -> None:
        self.component = component
        self.options = options
        self.method = method if method in _KNOWN_METHODS else "_OTHER"  # normalize_method
        self.headers = headers
        self.scheme = scheme
        self.peer_ip = peer_ip
        self.route: str | None = None
        self.status_code: int | None = None
        self.error_type: str | None = None
        self.exception: BaseException | None = None
        self.request_bytes = 0
        self.response_bytes = 0
        self.finished = False
        self._token: object | None = None
        current = trace.get_current_span()
        if current.is_recording() and getattr(current, "kind", None) is _SERVER:
            self.span: Span = current
            self.owned = False
        else:
            name = "HTTP" if self.method == "_OTHER" else self.method
            self.span = _start_server_span(tracer, name, headers, options.trust_trace_context)
            self.owned = True

    def activate(self) -> None:
        """Make our span current while host code runs, so its spans become children."""
        if self.owned and self._token is None:
            try:
                self._token = otel_context.attach(trace.set_span_in_context(self.span))
            except Exception as exc:
                report_fault(self.component, exc)

    def deactivate(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception as exc:
                report_fault(self.component, exc)

    def fail(self, exc: BaseException) -> None:
        """The host app raised: remember it for the span (the exception itself propagates)."""
        self.exception = exc
        self.error_type = type(exc).__qualname__

    def attributes(self, owner_set: frozenset[str] = frozenset()) -> dict[str, AttributeValue]:
        """The span attributes of the finished exchange (semconv names first, ``downstream.*``).

        Device class and country are resolved here, once. ``owner_set`` holds what an annotated
        span's owner has set already (``owner_attributes.owner_names``): those attributes are
        neither derived nor set again. Built straight into the dict ``set_attributes`` takes.
        """
        options = self.options
        headers = self.headers
        ua, device_class, synthetic, country, client_ip = describe_client(
            options, headers, self.peer_ip, self.component
        )
        method = self.method
        status = self.status_code
        response_bytes = self.response_bytes
        if method == "HEAD" or (status is not None and (status < 200 or status in (204, 304))):
            response_bytes = 0  # servers must not send a body here, whatever the app produced
        out: dict[str, AttributeValue] = {}
        if HTTP_REQUEST_METHOD not in owner_set:
            out[HTTP_REQUEST_METHOD] = method
        if status is not None and HTTP_RESPONSE_STATUS_CODE not in owner_set:
            out[HTTP_RESPONSE_STATUS_CODE] = status
        if self.route is not None and HTTP_ROUTE not in owner_set:
            out[HTTP_ROUTE] = self.route
        if self.scheme and URL_SCHEME not in owner_set:
            out[URL_SCHEME] = self.scheme
        if SERVER_ADDRESS not in owner_set:
            server_address = host_without_port(headers.get("host"))
            if server_address:
                out[SERVER_ADDRESS] = server_address
        out[HTTP_REQUEST_BODY_SIZE] = self.request_bytes
        out[HTTP_RESPONSE_BODY_SIZE] = response_bytes
        out[DOWNSTREAM_DEVICE_CLASS] = device_class
        out[GEO_COUNTRY_ISO_CODE] = country
        error_type = self.error_type
        if error_type is None and status is not None and status >= 500:
            error_type = str(status)
        if error_type is not None:
            out[ERROR_TYPE] = error_type
        if synthetic is not None:
            out[USER_AGENT_SYNTHETIC_TYPE] = synthetic
        if client_ip is not None and options.capture_client_ip:
            out[CLIENT_ADDRESS] = client_ip
        if ua is not None and options.capture_user_agent:
            out[USER_AGENT_ORIGINAL] = ua
        return out

    def finish(self) -> None:
        """Set every attribute in one call and end the span; idempotent, never raises."""
        if self.finished:
            return
        self.finished = True
        span = self.span
        try:
            if self._token is not None:
                self.deactivate()
            values = self.attributes(NOTHING_SET if self.owned else owner_names(span))
            route = values.get(HTTP_ROUTE)
            if route is not None:
                span.update_name(f"{self.method} {route}")
            span.set_attributes(values)
            error_type = values.get(ERROR_TYPE)
            if isinstance(error_type, str):
                span.set_status(Status(StatusCode.ERROR, error_type))
                if self.exception is not None and self.owned:
                    span.record_exception(self.exception)
        except Exception as exc:
            report_fault(self.component, exc)
        finally:
            if self.owned:
                try:
                    span.end()
                except Exception as exc:
                    report_fault(self.component, exc)
