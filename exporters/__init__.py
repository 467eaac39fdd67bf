"""Footprint models, factor data, aggregation into Prometheus metrics, the OTLP service and CLI."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Footprint", "FootprintExporter", "Impact"]

_WHERE = {"Footprint": "footprint", "Impact": "footprint", "FootprintExporter": "exporter"}

if TYPE_CHECKING:
    from otel_downstream.exporters.exporter import FootprintExporter
    from otel_downstream.exporters.footprint import Footprint, Impact


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
