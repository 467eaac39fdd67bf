"""A new series is shown at 0 before its value: what the pending sums hold, and when they let go.

Prometheus' ``increase()``/``rate()`` see a counter grow only between samples they have. A label set
that appears between two scrapes with its value already counted is first sampled at that value,
and its first increment is lost to every query (docs/metrics.md, "Totals over time"). So when the
registry is served through our scrape view, a flush that creates a series (a counter or histogram
child) creates it at 0 and keeps what it would have added in a :class:`Held` placeholder, which
stands in the pending sums' child cache: later flushes add into it without a second lookup. The
amount is released (added to the real child) by a later flush once

1. a scrape read that began after the series was created has completed (so a scrape showed it at
   0; :mod:`otel_downstream.exporters.metrics.scrapes` publishes that), and
2. ``OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS`` have passed since (default 0; set it to the scrape
   interval when several Prometheus servers scrape the target, so each one has scraped it at 0).

Held state is touched only at flush time: a span never sees it. In process only: in multiprocess
mode every amount goes to the worker's files at once (a worker killed with ``SIGKILL`` loses
nothing it counted), and the scrape view summing them shows a new label set at 0 instead
(``exporters/metrics/seen_series.py``).
"""

from __future__ import annotations

import time
from typing import Any

from otel_downstream.exporters.metrics import families as M
from otel_downstream.exporters.metrics.scrapes import marks_for, reading

__all__ = ["Held", "NewSeries"]


class Held:
    """A new series' child while it is shown at 0, and what it will add once released.

    Has the two methods a flush calls on a child (``inc`` for counters; histograms go through
    :meth:`observe`), so it stands in the child cache in the child's place."""

    __slots__ = ("amount", "child", "hist", "since")

    def __init__(self, child: Any, since: int) -> None:
        self.child = child
        self.since = since
        """Monotonic ns by which the series existed at 0 (a scrape starting later sees it)."""
        self.amount = 0.0
        self.hist: list[float] | None = None

    def inc(self, amount: float) -> None:
        self.amount += amount

    def observe(self, pending: list[float]) -> None:
        """Keep a histogram's pending bucket counts and sum (``families.observe_weighted``'s
        layout)."""
        if self.hist is None:
            self.hist = list(pending)
        else:
            self.hist = [a + b for a, b in zip(self.hist, pending, strict=True)]

    def release(self) -> None:
        """Add everything held to the real child."""
        if self.hist is not None:
            M.observe_weighted(self.child, self.hist)
        if self.amount:
            self.child.inc(self.amount)


class NewSeries:
    """Whether a new series is held, since when, and which held series may be released."""

    __slots__ = ("_marks", "hold_ns", "multiprocess")

    def __init__(self, metrics: M.FootprintMetrics, hold_seconds: float = 0.0) -> None:
        self._marks = marks_for(metrics.registry)
        self.multiprocess = metrics.multiprocess
        """Values live in files a scrape in another process sums: nothing is held here (a killed
        worker would lose it); that scrape shows a new series at 0 (``seen_series.py``)."""
        self.hold_ns = round(hold_seconds * 1e9)

    def holding(self) -> bool:
        """Whether a series created now is held: a scrape view serves the registry, in process.
        Called once per new series."""
        return self._marks.served and not self.multiprocess

    def since(self) -> int:
        """The creation time to record for a series created now (after its child exists)."""
        started = reading(self._marks)  # created by a scrape's own flush: that read sees 0
        return time.monotonic_ns() if started is None else started

    def cutoff(self, now: int) -> int:
        """Held series created at or before this time may be released now."""
        if not self._marks.served:  # every view is gone: no scrape will show anything at 0
            return now
        return min(self._marks.completed_ns, now - self.hold_ns)
