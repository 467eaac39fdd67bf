"""``configure()``: one call wires tracing, the footprint accounting and a ``/metrics`` endpoint.

What it does, in order:
1. takes the ``TracerProvider`` passed in, else joins the global SDK provider, else creates one
   (with ``service.name``) and makes it global;
2. wraps the provider's sampler (:mod:`.footprint_sampling`) so request, LLM, engagement and
   host-sample spans the trace sampler drops are recorded instead (``RECORD_ONLY``): the footprint
   processor sees every one, while exporting processors still see only sampled spans;
3. adds a ``FootprintSpanProcessor`` (accounting in ``on_end``, no queue to overflow);
4. serves ``/metrics`` on its own port (:mod:`.metrics_http`), or leaves that to
   ``metrics_wsgi_app()``/``metrics_asgi_app()``; in a pre-fork worker group (gunicorn, uWSGI,
   ``uvicorn --workers``), multiprocess mode is switched on first (:mod:`.workers`), so that
   port serves the sum of every worker;
5. optionally exports the sampled spans over OTLP and starts the host sampler.

Calling it again returns the same handle (nothing counted twice); ``handle.shutdown()`` undoes it.
Exporters are imported here, inside the call, never when the agent package is imported.
Settings go argument -> ``OTEL_DOWNSTREAM_*`` variable -> default (see ``environment.py``).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_downstream.agent import environment as env
from otel_downstream.agent.metrics_http import MetricsServer, exposition_registry
from otel_downstream.agent.sampling import RecordFootprintSpans, unwrap_sampler, wrap_sampler
from otel_downstream.agent.workers import group as workers

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from otel_downstream.exporters.accounting.accountant import Accountant
    from otel_downstream.exporters.engine.engine import EngineConfig
    from otel_downstream.exporters.exporter import FootprintSpanProcessor

__all__ = [
    "Configured",
    "RecordFootprintSpans",
    "configure",
    "metrics_asgi_app",
    "metrics_wsgi_app",
]

_logger = logging.getLogger("otel_downstream")
_DEFAULT_PORT: Final = 9464
_DEFAULT_ADDR: Final = "127.0.0.1"
_UNSET: Final[Any] = object()


@dataclass
class Configured:
    """What ``configure()`` set up; ``shutdown()`` stops the parts it started."""

    service_name: str
    tracer_provider: TracerProvider
    registry: CollectorRegistry
    processor: FootprintSpanProcessor
    metrics_address: tuple[str, int] | None = None
    owns_provider: bool = False
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def accountant(self) -> Any:
        """The accounting core (``otel_downstream.exporters.accounting.accountant.Accountant``)."""
        return self.processor.accountant

    def shutdown(self) -> None:
        """Flush, stop the host sampler, the metrics server and (if ours) the provider."""
        global _current
        with _lock:
            if _current is self:
                _current = None
        self.processor.force_flush()
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:
                _logger.warning("otel-downstream: shutdown step failed: %s", exc)
        self._closers.clear()


_lock = threading.RLock()  # shutdown() runs under it when a failed configure() unwinds
_current: Configured | None = None


def configure(
    service_name: str | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    metrics_port: int | None = _UNSET,
    metrics_addr: str | None = None,
    otlp_endpoint: str | None = None,
    host_sampler: bool | None = None,
    engine_config: EngineConfig | None = None,
    record_unsampled: bool | None = None,
    allowed_models: Iterable[str] | None = None,
    model_limit: int | None = None,
) -> Configured:
    """Wire footprint accounting into OpenTelemetry in one call (idempotent; see module doc).

    ``metrics_port=None`` or ``0`` starts no server (mount ``metrics_wsgi_app()`` instead); under
    ``PROMETHEUS_MULTIPROC_DIR`` (set for you in a detected pre-fork worker group) the served
    registry sums every worker's files.
    """
    global _current
    with _lock:
        if _current is not None:
            _logger.debug("otel-downstream: configure() already done; returning the same handle")
            return _current
        handle = _build(
            service_name,
            tracer_provider=tracer_provider,
            registry=registry,
            metrics_port=metrics_port,
            metrics_addr=metrics_addr,
            otlp_endpoint=otlp_endpoint,
            host_sampler=host_sampler,
            engine_config=engine_config,
            record_unsampled=record_unsampled,
            allowed_models=allowed_models,
            model_limit=model_limit,
        )
        _current = handle
        return handle


def _build(
    service_name: str | None,
    *,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry | None,
    metrics_port: int | None,
    metrics_addr: str | None,
    otlp_endpoint: str | None,
    host_sampler: bool | None,
    engine_config: EngineConfig | None,
    record_unsampled: bool | None,
    allowed_models: Iterable[str] | None,
    model_limit: int | None,
) -> Configured:
    from prometheus_client import REGISTRY

    from otel_downstream.exporters.accounting.accountant import Accountant
    from otel_downstream.exporters.accounting.settings import AccountingSettings
    from otel_downstream.exporters.engine.engine import Engine
    from otel_downstream.exporters.exporter import FootprintSpanProcessor

    # Settings first, so a bad variable fails before anything is installed.
    if metrics_port is _UNSET:
        metrics_port = env.env_int(env.OTEL_DOWNSTREAM_METRICS_PORT, _DEFAULT_PORT)
    addr = metrics_addr or env.env_str(env.OTEL_DOWNSTREAM_METRICS_ADDR, _DEFAULT_ADDR)
    endpoint = otlp_endpoint or env.env_str(env.OTEL_DOWNSTREAM_OTLP_ENDPOINT, "") or None
    if host_sampler is None:
        host_sampler = env.env_bool(env.OTEL_DOWNSTREAM_HOST_SAMPLER, False)
    if record_unsampled is None:
        record_unsampled = env.env_bool(env.OTEL_DOWNSTREAM_RECORD_UNSAMPLED, True)
    # Every accounting setting, read once by the same reader ``serve``'s accountant uses.
    settings = AccountingSettings.resolve(allowed_models=allowed_models, model_limit=model_limit)
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise ValueError(f"metrics_port={metrics_port!r}: expected 0-65535, 0 or None for none")

    engine = Engine(engine_config)  # reads the footprint settings (OTEL_DOWNSTREAM_* too)

    # Before the metrics are built: they pick multiprocess values when the directory is set.
    group = workers.join(addr, metrics_port)
    try:
        provider, owns = _provider(service_name, tracer_provider)
        name = service_name or _service_name_of(provider)
        reg = REGISTRY if registry is None else registry
        accountant = Accountant(engine, registry=reg, settings=settings)
    except BaseException:
        if group is not None:
            group.leave()
        raise
    sees_unsampled = bool(record_unsampled) and wrap_sampler(provider)
    processor = FootprintSpanProcessor(accountant, service_name=name, sees_unsampled=sees_unsampled)
    provider.add_span_processor(processor)
    handle = Configured(name, provider, reg, processor, owns_provider=owns)
    if group is not None:  # closers run last to first: the group is left after everything else
        handle._closers.append(group.leave)
    handle._closers.append(processor.shutdown)
    handle._closers.append(accountant.metrics.unregister)
    if sees_unsampled:
        handle._closers.append(lambda: unwrap_sampler(provider))
    try:
        if endpoint:
            handle._closers.append(_add_otlp_export(provider, endpoint))
        server: MetricsServer | None = None
        if metrics_port:
            metrics = accountant.metrics
            server = MetricsServer(
                reg,
                addr,
                metrics_port,
                group=group,
                on_unserved=lambda reason: metrics.metrics_unserved.labels(reason).inc(),
            ).start()
            handle.metrics_address = server.address
            handle._closers.append(server.stop)
        if group is not None:
            atexit.register(_leave_at_exit, group, server, accountant)
        if owns:
            handle._closers.append(provider.shutdown)
        if host_sampler:  # stopped first: its last partial interval must still be accounted
            handle._closers.append(_start_host_sampler(provider, name))
    except Exception:
        handle.shutdown()
        raise
    return handle


def _leave_at_exit(
    group: workers.WorkerGroup, server: MetricsServer | None, accountant: Accountant
) -> None:
    """At interpreter exit (a worker recycled or stopped): free the port at once, so another
    member takes it over; write everything accounted (held amounts too) into this process's
    files while it is still a member; then leave the group (the last one out removes its
    directory). Registered after the accounting's own exit hook, so run before it."""
    try:
        if server is not None:
            server.close_listener()
        accountant.flush(release=True)  # never raises
        group.leave()
    except Exception as exc:
        _logger.debug("otel-downstream: leaving the worker group failed: %s", exc)


def _provider(
    service_name: str | None, given: TracerProvider | None
) -> tuple[TracerProvider, bool]:
    if given is not None:
        return given, False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current, False
    name = service_name or env.env_str(env.OTEL_SERVICE_NAME, "")
    resource = Resource.create({SERVICE_NAME: name} if name else {})
    provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:  # someone else won the one-time global set
        raise RuntimeError(
            "otel-downstream: the global tracer provider is not an SDK TracerProvider; "
            "pass configure(tracer_provider=...)"
        )
    return provider, True


def _service_name_of(provider: TracerProvider) -> str:
    name = provider.resource.attributes.get(SERVICE_NAME)
    return name if isinstance(name, str) and name else "unknown_service"


def _add_otlp_export(provider: TracerProvider, endpoint: str) -> Callable[[], None]:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ImportError(
            "otlp_endpoint needs opentelemetry-exporter-otlp-proto-http: pip install "
            "opentelemetry-exporter-otlp"
        ) from exc
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    batch = BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint)))
    provider.add_span_processor(batch)
    return batch.shutdown


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for ``endpoint``, read as ``OTEL_EXPORTER_OTLP_ENDPOINT`` is: a
    base URL whose path gets ``/v1/traces`` appended (query kept), unless it already ends with it."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/traces"):
        path += "/v1/traces"
    return urlunsplit(parts._replace(path=path))


def _start_host_sampler(provider: TracerProvider, service_name: str) -> Callable[[], None]:
    from otel_downstream.agent.host.sampler import HostSampler

    # the service name the metrics carry, which the provider's resource may lack
    sampler = HostSampler(tracer_provider=provider, service_name=service_name).start()
    return sampler.stop


def _served_registry() -> CollectorRegistry:
    from prometheus_client import REGISTRY

    handle = _current
    return exposition_registry(handle.registry if handle is not None else REGISTRY)


def metrics_wsgi_app() -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the configured registry (mount it at ``/metrics``)."""
    from prometheus_client import make_wsgi_app

    app: Callable[..., Iterable[bytes]] = make_wsgi_app(_served_registry())
    return app


def metrics_asgi_app() -> Callable[..., Any]:
    """An ASGI app serving the configured registry (``app.mount("/metrics", metrics_asgi_app())``)."""
    from prometheus_client import make_asgi_app

    app: Callable[..., Any] = make_asgi_app(_served_registry())
    return app
