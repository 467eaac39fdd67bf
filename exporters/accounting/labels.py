"""Bounded label values: what a span may put into a Prometheus label, and what it may not.

Every distinct label value is a time series that lives for the life of the process (and of the
Prometheus TSDB head), so a client sending a million model names must not create a million series.
Free-form values (models, providers, service names) pass through a :class:`BoundedLabel`: an
allow-list that is always admitted, plus the first ``limit`` other distinct values seen, and
``other`` for everything after that (each overflow counted). Memory is bounded by the allow-list
and the limit, never by the input: rejected values are not remembered.

Countries, device classes and host energy methods have closed sets and are normalised rather than
limited: an assigned ISO 3166-1 alpha-2 code (upper-cased, alpha-3 mapped to alpha-2; the agent's
list, so both sides agree) or ``ZZ``; one of the fixed device classes or ``unknown``; one of
:data:`HOST_METHODS`.

Per-label limits alone still allow their product (100 services x 250 countries x 8 devices) as
series, so :class:`LabelSets` also caps the distinct label *combinations* of a metric group; the
accountant folds the excess into a coarser set (the figures stay exact, only the breakdown is lost).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

from otel_downstream.agent.attributes import DEVICE_CLASSES, UNKNOWN_COUNTRY
from otel_downstream.agent.countries import ISO_COUNTRIES
from otel_downstream.exporters.engine.grid import alpha3_to_alpha2
from otel_downstream.exporters.metrics.exposition import safe_label_value

OTHER: Final = "other"
"""The label value every value past a label's limit is folded into."""

NOT_APPLICABLE: Final = ""
"""Label value where a label does not apply (no model on a network figure); Prometheus treats an
empty label value as an absent label, so ``{gen_ai_request_model=""}`` selects non-AI series."""

MAX_LABEL_LENGTH: Final = 128
"""Longer values are cut: a label value is a name, not a payload."""

_DEVICE_CLASSES: Final = frozenset(DEVICE_CLASSES)

FOLDED_DEVICE_CLASS: Final = OTHER
"""Device-class label of requests whose (service, country, device class) set was over the cap.

Not ``unknown``: the device class was known, only its label was folded to bound the series."""

HOST_METHODS: Final = ("measured", "modelled", "mixed", "unknown")
"""The host sampler's ``downstream.host.energy.method`` values: RAPL/NVML counters, the power
model, measured CPU with modelled GPU/storage, and none given."""

_HOST_METHODS: Final = frozenset(HOST_METHODS)


def normalize_country(value: object) -> tuple[str, bool]:
    """``(label, valid)``: an assigned alpha-2 code, or ``ZZ`` and ``False`` for anything else.

    An assigned alpha-3 code (``FRA``) maps to its alpha-2 code: the same country, spelt as
    ``geo.country.iso_code`` allows in some SDKs, must be priced at its grid, not the world's.

    ``None`` and ``ZZ`` (no country known) give ``("ZZ", True)``: an unknown country is a normal
    state, not bad input. The result is one of ~250 values, so it needs no limit.
    """
    if value is None:
        return UNKNOWN_COUNTRY, True
    if not isinstance(value, str):
        return UNKNOWN_COUNTRY, False
    if value in ISO_COUNTRIES:
        return value, True
    if len(value) == 3 and value.isascii():  # alpha-3 (FRA), as some non-Python agents send
        alpha2 = alpha3_to_alpha2(value.upper())
        if alpha2 is not None and alpha2 in ISO_COUNTRIES:
            return alpha2, True
        return UNKNOWN_COUNTRY, False
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


def normalize_host_method(value: str) -> tuple[str, bool]:
    """``(label, valid)``: one of :data:`HOST_METHODS`; empty is ``unknown`` (valid), anything
    else ``unknown`` and ``False`` (a free-form string must not become a series)."""
    if not value:
        return "unknown", True
    if value in _HOST_METHODS:
        return value, True
    lowered = value.strip().lower()
    if lowered in _HOST_METHODS:
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
        # Admitted values are stored safe, so a raw value the exposition cannot encode (a lone
        # surrogate from OTLP/JSON) never matches above and is made safe here, once.
        safe = safe_label_value(value[:MAX_LABEL_LENGTH])
        if safe is not value:
            value = safe
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


class LabelSets:
    """The first ``limit`` distinct label sets (tuples) of one metric group, by arrival.

    ``admit`` answers whether a set may have series of its own; the caller folds a refused set
    into a coarser one it always allows (bounded by the per-label limits of what is left). Memory
    is at most ``limit`` tuples. Lock-free for a set already admitted.
    """

    __slots__ = ("_admitted", "_lock", "limit", "name")

    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"{name} label-set limit={limit!r}: expected a count >= 1")
        self.name = name
        self.limit = limit
        self._admitted: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def admit(self, key: tuple[str, ...]) -> bool:
        """``True`` if ``key`` was admitted before or fits under the limit now."""
        if key in self._admitted:
            return True
        with self._lock:
            if key in self._admitted:
                return True
            if len(self._admitted) < self.limit:
                self._admitted.add(key)
                return True
        return False

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._admitted

    @property
    def size(self) -> int:
        """Label sets admitted so far (never more than ``limit``)."""
        return len(self._admitted)
