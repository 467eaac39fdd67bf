"""Footprint models, factor data, aggregation into Prometheus metrics, the OTLP service and CLI.

Public: the names in ``__all__`` (imported lazily) and the ``__all__`` of the subpackages
``engine`` (footprint methods), ``metrics`` (metric names) and ``demo`` (the fake LLM API and shop,
for tests and examples). Every other module is internal: import from a package, not from a module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = [
    "AccountingSettings",
    "Engine",
    "EngineConfig",
    "Footprint",
    "FootprintExporter",
    "FootprintSpanProcessor",
    "Impact",
]

_WHERE = {
    "AccountingSettings": "accounting.settings",
    "Engine": "engine.engine",
    "EngineConfig": "engine.config",
    "Footprint": "footprint",
    "Impact": "footprint",
    "FootprintExporter": "exporter",
    "FootprintSpanProcessor": "exporter",
}

if TYPE_CHECKING:
    from otel_downstream.exporters.accounting.settings import AccountingSettings
    from otel_downstream.exporters.engine.config import EngineConfig
    from otel_downstream.exporters.engine.engine import Engine
    from otel_downstream.exporters.exporter import FootprintExporter, FootprintSpanProcessor
    from otel_downstream.exporters.footprint import Footprint, Impact

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
