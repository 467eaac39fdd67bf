"""Bounded label values: what a span may put into a Prometheus label, and what it may not.

Every distinct label value is a time series that lives for the life of the process (and of the
Prometheus TSDB head), so a client sending a million model names must not create a million series.
Free-form values (models, providers, service names) pass through a :class:`BoundedLabel`: an
allow-list that is always admitted, plus the first ``limit`` other distinct values seen, and
``other`` for everything after that (each overflow counted). Memory is bounded by the allow-list
and the limit, never by the input: rejected values are not remembered.

Countries and device classes have closed sets and are normalised rather than limited: an assigned
ISO 3166-1 alpha-2 code (upper-cased; the agent's list, so both sides agree) or ``ZZ``; one of the
fixed device classes or ``unknown``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

from otel_downstream.agent.attributes import DEVICE_CLASSES, UNKNOWN_COUNTRY
from otel_downstream.agent.country import ISO_COUNTRIES

OTHER: Final = "other"
"""The label value every value past a label's limit is folded into."""

NOT_APPLICABLE: Final = ""
"""Label value where a label does not apply (no model on a network figure); Prometheus treats an
empty label value as an absent label, so ``{gen_ai_request_model=""}`` selects non-AI series."""

MAX_LABEL_LENGTH: Final = 128
"""Longer values are cut: a label value is a name, not a payload."""

_DEVICE_CLASSES: Final = frozenset(DEVICE_CLASSES)


def normalize_country(value: object) -> tuple[str, bool]:
    """``(label, valid)``: an assigned alpha-2 code, or ``ZZ`` and ``False`` for anything else.

    ``None`` and ``ZZ`` (no country known) give ``("ZZ", True)``: an unknown country is a normal
    state, not bad input. The result is one of ~250 values, so it needs no limit.
    """
    if value is None:
        return UNKNOWN_COUNTRY, True
    if not isinstance(value, str):
        return UNKNOWN_COUNTRY, False
    if value in ISO_COUNTRIES:
        return value, True
    if len(value) != 2 or not value.isascii():
        return UNKNOWN_COUNTRY, False
    code = value.upper()
    if code in ISO_COUNTRIES:
        return code, True
    return UNKNOWN_COUNTRY, code == UNKNOWN_COUNTRY


def normalize_device_class(value: object) -> tuple[str, bool]:
    """``(label, valid)``: one of the fixed device classes, else ``unknown`` and ``False``."""
    if value is None:
        return "unknown", True
    if isinstance(value, str):
        if value in _DEVICE_CLASSES:
            return value, True
        lowered = value.strip().lower()
        if lowered in _DEVICE_CLASSES:
            return lowered, True
    return "unknown", False


class BoundedLabel:
    """An allow-list plus the first ``limit`` other distinct values; the rest become ``other``.

    "Top-N" here means first-N by arrival: true frequency ranking would need memory per distinct
    value, which is what an attacker controls. Allow-listed values (e.g. every model the engine
    knows) never count against the limit. ``admit`` is thread-safe and lock-free on the hot path
    (a set lookup); the lock is only taken to admit a new value.
    """

    __slots__ = ("_admitted", "_allowed", "_lock", "limit", "name", "overflow")

    def __init__(self, name: str, limit: int, allowed: Iterable[str] = ()) -> None:
        if limit < 0:
            raise ValueError(f"{name} label limit={limit!r}: expected a count >= 0")
        self.name = name
        self.limit = limit
        self._allowed = frozenset(allowed)
        self._admitted: set[str] = set()
        self._lock = threading.Lock()
        self.overflow = 0
        """How many values were folded into ``other`` (also published as a metric)."""

    def admit(self, value: str) -> str:
        """The label value to use for ``value``: itself, or ``other`` past the limit."""
        if value in self._admitted or value in self._allowed:
            return value
        if len(value) > MAX_LABEL_LENGTH:
            value = value[:MAX_LABEL_LENGTH]
            if value in self._admitted or value in self._allowed:
                return value
        with self._lock:
            if value in self._admitted:
                return value
            if len(self._admitted) < self.limit:
                self._admitted.add(value)
                return value
            self.overflow += 1
        return OTHER

    @property
    def size(self) -> int:
        """Distinct non-allow-listed values admitted so far (never more than ``limit``)."""
        return len(self._admitted)
