"""The metrics: every name, label and bucket (``families``), the view every scrape reads
(``exposition``) and totals read back from a scrape (``totals``).

Public: the metric names in ``__all__``, for code that reads a registry or a scrape; the full list
with labels is docs/metrics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = [
    "CO2E",
    "ENERGY",
    "FUNCTIONAL_UNITS",
    "GEN_AI_CALLS",
    "GEN_AI_TOKENS",
    "REQUESTS",
    "REQUEST_CO2E",
    "TRANSFER_BYTES",
    "WATER",
]

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "families"))

if TYPE_CHECKING:
    from otel_downstream.exporters.metrics.families import (
        CO2E,
        ENERGY,
        FUNCTIONAL_UNITS,
        GEN_AI_CALLS,
        GEN_AI_TOKENS,
        REQUEST_CO2E,
        REQUESTS,
        TRANSFER_BYTES,
        WATER,
    )
