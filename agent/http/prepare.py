"""What both middlewares settle once, when they are built: options, tracer, beacon path, exclusions.

Apart from the request core because none of it runs per request: a bad option raises here, at
construction, and each request then pays one comparison per check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.trace import Tracer

from otel_downstream.agent.http.options import HTTPOptions, build_options
from otel_downstream.agent.http.routes import hook_framework_routes

__all__ = ["Prepared", "prepare_middleware"]


class Prepared(NamedTuple):
    """What both middlewares settle once at construction: options never change after it, so each
    per-request check is one comparison."""

    options: HTTPOptions
    tracer: Tracer
    beacon_path: str | None  # the engagement path, only when the beacon is on
    excluded: Callable[[str], bool] | None  # only when some paths are excluded


def prepare_middleware(app: Any, options: Mapping[str, Any]) -> Prepared:
    """Resolve options (raising ``ValueError`` for a bad one), take our tracer from the configured
    provider (else the global one, resolved lazily by the API) and hook the framework's routes."""
    resolved = build_options(**options)
    tracer = trace.get_tracer("otel_downstream.agent", tracer_provider=resolved.tracer_provider)
    hook_framework_routes(app)
    return Prepared(
        resolved,
        tracer,
        resolved.engagement_path if resolved.engagement_beacon else None,
        resolved.is_excluded if resolved.excluded_paths else None,
    )
