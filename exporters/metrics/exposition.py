"""What a scrape reads: every registry we serve goes through :func:`safe_registry`.

A label value is written into the exposition as UTF-8, so a Python string that cannot be encoded
(a lone surrogate, which OTLP/JSON's ``\\ud800`` escape produces) fails the encoding of the whole
page: before this view existed, one such span made every later scrape of ``/metrics`` an empty
reply, for good. Label values are made safe where they are admitted (:func:`safe_label_value`,
used by ``labels.BoundedLabel``); this view is the second wall, so that a value reaching a label by
any other road costs only its own characters, never the page.

The view is also where a new series is first shown at 0 (docs/metrics.md, "Totals over time"): in
process it notes when it starts reading the registry and, once the read has gone to the end,
publishes that time (:mod:`.scrapes`), so a series the accounting created at 0 is given its value
only after a scrape has shown it at 0; in multiprocess mode, where the registry it reads sums every
worker's files, it shows each label set it has never exposed at 0 itself (:mod:`.seen_series`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from otel_downstream.agent.environment import prometheus_multiproc_dir
from otel_downstream.exporters.metrics import scrapes
from otel_downstream.exporters.metrics.seen_series import SeenSeries

__all__ = ["safe_label_value", "safe_registry"]

_UNENCODABLE: Final = re.compile("[\ud800-\udfff]")
"""Code points UTF-8 cannot carry: surrogates, which only a broken or hostile sender produces."""

REPLACEMENT: Final = "\ufffd"


def safe_label_value(value: str) -> str:
    """``value`` with every character UTF-8 cannot encode replaced by U+FFFD.

    ASCII (nearly every label) returns at once; otherwise one regex pass."""
    if value.isascii():
        return value
    return _UNENCODABLE.sub(REPLACEMENT, value)


class _SafeLabels(Collector):
    """Collects from ``inner`` and rewrites any label value UTF-8 could not encode. In process,
    publishes the start of every read that went to the end; in multiprocess mode (``inner`` sums
    the directory's files), shows the label sets it never exposed at 0."""

    def __init__(self, inner: CollectorRegistry, multiproc_dir: str | None) -> None:
        self._inner = inner
        self._seen = None if multiproc_dir is None else SeenSeries(multiproc_dir)
        self._marks = scrapes.marks_for(inner)
        if self._seen is None:
            self._marks.add_view(self)

    def collect(self) -> Iterator[Metric]:
        if self._seen is not None:
            for shown in self._seen.expose(self._inner.collect()):
                yield _safe(shown)
            return
        started = time.monotonic_ns()
        families = iter(self._inner.collect())
        while True:
            with scrapes.reading_step(self._marks, started):
                family = next(families, None)
            if family is None:
                break
            yield _safe(family)
        self._marks.complete(started)


def _safe(family: Metric) -> Metric:
    """``family``, or a copy with every label value UTF-8 could not encode replaced."""
    if all(_clean(sample.labels) for sample in family.samples):
        return family
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = [
        sample._replace(
            labels={key: safe_label_value(value) for key, value in sample.labels.items()}
        )
        for sample in family.samples
    ]
    return copy


def _clean(labels: dict[str, str]) -> bool:
    return all(value.isascii() or not _UNENCODABLE.search(value) for value in labels.values())


def safe_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """A registry whose exposition always encodes: ``registry`` seen through :class:`_SafeLabels`.

    Serve every registry through it: it is what shows a new series at 0 first (a registry served
    some other way gets no such hold, and loses first increments).
    """
    view = CollectorRegistry(auto_describe=False)
    view.register(_SafeLabels(registry, prometheus_multiproc_dir()))
    return view
