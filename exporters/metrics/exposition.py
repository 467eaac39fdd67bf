"""What a scrape reads: every registry we serve goes through :func:`safe_registry`.

A label value is written into the exposition as UTF-8, so a Python string that cannot be encoded
(a lone surrogate, which OTLP/JSON's ``\\ud800`` escape produces) fails the encoding of the whole
page: before this view existed, one such span made every later scrape of ``/metrics`` an empty
reply, for good. Label values are made safe where they are admitted (:func:`safe_label_value`,
used by ``labels.BoundedLabel``); this view is the second wall, so that a value reaching a label by
any other road costs only its own characters, never the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

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
    """Collects from ``inner`` and rewrites any label value UTF-8 could not encode."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterator[Metric]:
        for family in self._inner.collect():
            if all(_clean(sample.labels) for sample in family.samples):
                yield family
                continue
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [
                sample._replace(
                    labels={key: safe_label_value(value) for key, value in sample.labels.items()}
                )
                for sample in family.samples
            ]
            yield copy


def _clean(labels: dict[str, str]) -> bool:
    return all(value.isascii() or not _UNENCODABLE.search(value) for value in labels.values())


def safe_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """A registry whose exposition always encodes: ``registry`` seen through :class:`_SafeLabels`."""
    view = CollectorRegistry(auto_describe=False)
    view.register(_SafeLabels(registry))
    return view
