"""What every span kind's accounting shares with the accountant that built it.

Requests, model calls and host samples are priced by one class each (``http``, ``gen_ai``,
``host``); all three write into the same pending sums and admit service names into the same
bounded label, so the accountant hands each the same :class:`Shared` instead of five arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from otel_downstream.exporters.accounting.labels import BoundedLabel
from otel_downstream.exporters.accounting.pending_sums import PendingSums
from otel_downstream.exporters.engine.engine import Engine
from otel_downstream.exporters.metrics import families as M

__all__ = ["Shared"]


class Shared(NamedTuple):
    """The engine, the metrics, the pending sums, how a value is admitted into a bounded label
    (counting an overflow), and the accountant's own service label."""

    engine: Engine
    metrics: M.FootprintMetrics
    sums: PendingSums
    label: Callable[[BoundedLabel, str], str]
    services: BoundedLabel
