"""The per-request core shared by the WSGI and ASGI middleware.

Both middlewares reduce what they see to one :class:`Exchange` (mutable, per request, never on the
middleware object), which is frozen into one :class:`HTTPRecord` when the response is over. One
function turns a record into span attributes, and :meth:`Exchange.finish` sets them in a single
``set_attributes`` call and ends the span exactly once. If an OpenTelemetry SERVER span is already
active (contrib instrumentation wraps us), we annotate it instead of starting a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from . import attributes as attr
from .faults import report_fault
from .http_options import HTTPOptions

ROUTE_KEY = "otel_downstream.route"
"""Environ/scope key where framework hooks (Django) leave the matched route template."""

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)


class HTTPRecord(NamedTuple):
    """What one request/response exchange amounts to, after it is over.

    Immutable; a NamedTuple rather than a frozen dataclass because it is built on every request
    and a tuple is several times cheaper to construct.
    """

    method: str
    route: str | None
    status_code: int | None
    scheme: str | None
    server_address: str | None
    request_body_size: int
    response_body_size: int
    error_type: str | None
    device_class: str
    synthetic_type: str | None
    country: str
    client_ip: str | None = None  # only when capture is enabled (personal data)
    user_agent: str | None = None  # only when capture is enabled (personal data)


def record_attributes(record: HTTPRecord) -> dict[str, AttributeValue]:
    """The span attributes of a record (semconv names first, ``downstream.*`` for ours)."""
    out: dict[str, AttributeValue] = {
        attr.HTTP_REQUEST_METHOD: record.method,
        attr.HTTP_REQUEST_BODY_SIZE: record.request_body_size,
        attr.HTTP_RESPONSE_BODY_SIZE: record.response_body_size,
        attr.DOWNSTREAM_DEVICE_CLASS: record.device_class,
        attr.GEO_COUNTRY_ISO_CODE: record.country,
    }
    if record.route is not None:
        out[attr.HTTP_ROUTE] = record.route
    if record.status_code is not None:
        out[attr.HTTP_RESPONSE_STATUS_CODE] = record.status_code
    if record.scheme:
        out[attr.URL_SCHEME] = record.scheme
    if record.server_address:
        out[attr.SERVER_ADDRESS] = record.server_address
    if record.error_type is not None:
        out[attr.ERROR_TYPE] = record.error_type
    if record.synthetic_type is not None:
        out[attr.USER_AGENT_SYNTHETIC_TYPE] = record.synthetic_type
    if record.client_ip is not None:
        out[attr.CLIENT_ADDRESS] = record.client_ip
    if record.user_agent is not None:
        out[attr.USER_AGENT_ORIGINAL] = record.user_agent
    return out


def get_tracer(options: HTTPOptions) -> Tracer:
    """Our tracer from the configured provider, else the global one (resolved lazily by the API)."""
    return trace.get_tracer("otel_downstream.agent", tracer_provider=options.tracer_provider)


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


class Exchange:
    """One request in flight: the span, byte counters and outcome. Created per request."""

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
        "server_address",
        "span",
        "status_code",
    )

    def __init__(
        self,
        component: str,
        options: HTTPOptions,
        tracer: Tracer,
        *,
        method: str,
        headers: Mapping[str, str],
        scheme: str | None,
        peer_ip: str | None,
    ) -> None:
        self.component = component
        self.options = options
        self.method = normalize_method(method)
        self.headers = headers
        self.scheme = scheme
        self.server_address = host_without_port(headers.get("host"))
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
        if current.is_recording() and getattr(current, "kind", None) is SpanKind.SERVER:
            self.span: Span = current
            self.owned = False
        else:
            name = "HTTP" if self.method == "_OTHER" else self.method
            self.span = tracer.start_span(name, context=extract(headers), kind=SpanKind.SERVER)
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

    def build_record(self) -> HTTPRecord:
        """Freeze the exchange; device class and country are resolved here, once, guarded."""
        options = self.options
        ua = self.headers.get("user-agent")
        try:
            info = options.classifier(ua)
            device_class, synthetic = info.device_class, info.synthetic_type
        except Exception as exc:
            report_fault(self.component, exc)
            device_class, synthetic = "unknown", None
        try:
            found = options.country_resolver.resolve(self.headers, self.peer_ip)
            country, client_ip = found.country, found.client_ip
        except Exception as exc:
            report_fault(self.component, exc)
            country, client_ip = attr.UNKNOWN_COUNTRY, None
        error_type = self.error_type
        status = self.status_code
        response_bytes = self.response_bytes
        if self.method == "HEAD" or (status is not None and (status < 200 or status in (204, 304))):
            response_bytes = 0  # servers must not send a body here, whatever the app produced
        if error_type is None and status is not None and status >= 500:
            error_type = str(status)
        # Positional, in field order: keyword construction of a tuple costs more on every request.
        return HTTPRecord(
            self.method,
            self.route,
            status,
            self.scheme,
            self.server_address,
            self.request_bytes,
            response_bytes,
            error_type,
            device_class,
            synthetic,
            country,
            client_ip if options.capture_client_ip else None,
            ua if options.capture_user_agent else None,
        )

    def finish(self) -> None:
        """Set every attribute in one call and end the span; idempotent, never raises."""
        if self.finished:
            return
        self.finished = True
        try:
            if self._token is not None:
                self.deactivate()
            record = self.build_record()
            span = self.span
            values = record_attributes(record)
            if not self.owned:
                values = _not_set_by_owner(span, values)
            if record.route is not None and attr.HTTP_ROUTE in values:
                span.update_name(f"{record.method} {record.route}")
            span.set_attributes(values)
            if record.error_type is not None:
                span.set_status(Status(StatusCode.ERROR, record.error_type))
                if self.exception is not None and self.owned:
                    span.record_exception(self.exception)
        except Exception as exc:
            report_fault(self.component, exc)
        finally:
            if self.owned:
                try:
                    self.span.end()
                except Exception as exc:
                    report_fault(self.component, exc)


# Attributes the owner of an annotated span sets itself (under either semconv name); we add the rest.
_OWNER_SETS = (
    (attr.HTTP_REQUEST_METHOD, attr.HTTP_METHOD_OLD),
    (attr.HTTP_RESPONSE_STATUS_CODE, attr.HTTP_STATUS_CODE_OLD),
    (attr.HTTP_ROUTE, attr.HTTP_ROUTE),
    (attr.URL_SCHEME, attr.HTTP_SCHEME_OLD),
    (attr.SERVER_ADDRESS, attr.HTTP_HOST_OLD),
)


def _not_set_by_owner(span: Span, values: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    """Drop what the span already says, so annotating costs only the attributes we add."""
    attributes = getattr(span, "attributes", None)
    if not attributes:
        return values
    # One native snapshot: membership tests on the SDK's Python-level mapping cost a raised
    # KeyError per miss.
    existing = frozenset(attributes)
    for name, old_name in _OWNER_SETS:
        if name in values and (name in existing or old_name in existing):
            del values[name]
    return values


def hook_framework_routes(app: Any) -> None:
    """Teach the wrapped framework app (Flask, Django) to leave its route template where we read it.

    Both keep the matched route on a request object a WSGI/ASGI middleware never sees (Flask even
    clears ``environ["werkzeug.request"]`` when the request ends). Faults here only lose the route.
    """
    try:
        target = getattr(app, "__self__", app)  # Flask: app.wsgi_app is a bound method
        module = type(target).__module__
        if module.startswith("flask"):
            _hook_flask(target)
        elif module.startswith("django."):
            _hook_django(target)
    except Exception as exc:
        report_fault("routes", exc)


def _hook_flask(app: Any) -> None:
    from flask import request, request_started

    def remember_route(sender: Any, **extra: Any) -> None:
        try:
            rule = request.url_rule
            if rule is not None:
                request.environ[ROUTE_KEY] = rule.rule
        except Exception as exc:
            report_fault("flask", exc)

    request_started.connect(remember_route, app, weak=False)


def _hook_django(app: Any) -> None:
    # Wrap ``resolve_request`` on this one handler instance; the match itself is returned untouched.
    original = getattr(app, "resolve_request", None)
    if original is None:
        return

    def resolve_request(request: Any) -> Any:
        match = original(request)
        try:
            route = getattr(match, "route", None)
            if isinstance(route, str) and route:
                if not route.startswith(("/", "^")):
                    route = "/" + route
                carrier = getattr(request, "scope", None)
                if not isinstance(carrier, dict):
                    carrier = request.META
                carrier[ROUTE_KEY] = route
        except Exception as exc:
            report_fault("django", exc)
        return match

    app.resolve_request = resolve_request
