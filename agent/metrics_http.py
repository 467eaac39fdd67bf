"""Serving ``/metrics``: the registry a scrape reads, and ``configure()``'s own-port server.

Kept apart from ``pipeline.py`` (which wires tracing and accounting) because serving is its own
concern with its own failure modes: a port another worker holds, multiprocess mode summing every
worker's files. ``metrics_wsgi_app()``/``metrics_asgi_app()`` stay in ``pipeline.py`` since they
serve the registry of the current ``configure()`` handle.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from otel_downstream.agent import environment as env

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["exposition_registry", "serve_metrics"]

_logger = logging.getLogger("otel_downstream")


def serve_metrics(
    registry: CollectorRegistry, addr: str, port: int
) -> tuple[tuple[str, int], Callable[[], None]] | None:
    """Serve ``registry`` on ``addr:port``: the bound address and how to stop, or None when the
    port is taken (the app must still start; only this process's ``/metrics`` is missing)."""
    from prometheus_client import start_http_server

    served = exposition_registry(registry)
    try:
        server, thread = start_http_server(port, addr=addr, registry=served)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise  # a wrong address or a privileged port: a setting to fix, said now
        if env.prometheus_multiproc_dir() is not None:
            # Another worker holds the port and serves every worker's totals.
            _logger.info("otel-downstream: /metrics on %s:%s served by another worker", addr, port)
            return None
        # The app must still start (a second copy of it, a worker without multiprocess mode):
        # accounting goes on, only this process's /metrics is missing.
        _logger.warning(
            "otel-downstream: cannot serve /metrics on %s:%s (%s); accounting goes on without it. "
            "Set %s/%s, or pass metrics_port=None and mount metrics_wsgi_app(); for several "
            "workers set PROMETHEUS_MULTIPROC_DIR",
            addr,
            port,
            exc.strerror,
            env.OTEL_DOWNSTREAM_METRICS_ADDR,
            env.OTEL_DOWNSTREAM_METRICS_PORT,
        )
        return None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    host, bound = server.server_address[:2]
    return (str(host), int(bound)), stop


def exposition_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """The registry to serve: under multiprocess mode, one summing every worker's files; either
    way seen through ``safe_registry``, so no label value can make the page unencodable."""
    from prometheus_client import CollectorRegistry as Registry
    from prometheus_client import multiprocess

    from otel_downstream.exporters.metrics.exposition import safe_registry

    if env.prometheus_multiproc_dir() is None:
        return safe_registry(registry)
    summed = Registry()
    multiprocess.MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
    return safe_registry(summed)
