"""Bounded label values: what a span may put into a Prometheus label, and what it may not.

Every distinct label value is a time series that lives for the life of the process (and of the
Prometheus TSDB head), so a client sending a million model names must not create a million series.
Free-form values (models, providers, service names) pass through a :class:`BoundedLabel`: an
allow-list that is always admitted, plus the first ``limit`` other distinct values seen, and
``other`` for everything after that (each overflow counted). Memory is bounded by the allow-list
and the limit, never by the input: rejected values are not remembered.

Countries and device classes have closed sets and are normalised rather than limited: an ISO 3166
alpha-2 shape (two letters, upper-cased) or ``ZZ``; one of the fixed device classes or ``unknown``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

from otel_downstream.agent.attributes import DEVICE_CLASSES, UNKNOWN_COUNTRY

OTHER: Final = "other"
"""The label value every value past a label's limit is folded into."""

NOT_APPLICABLE: Final = ""
"""Label value where a label does not apply (no model on a network figure); Prometheus treats an
empty label value as an absent label, so ``{gen_ai_request_model=""}`` selects non-AI series."""

MAX_LABEL_LENGTH: Final = 128
"""Longer values are cut: a label value is a name, not a payload."""

_DEVICE_CLASSES: Final = frozenset(DEVICE_CLASSES)
_ASCII_UPPER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# ISO 3166-1 user-assigned codes (AA, QM-QZ, XA-XZ, ZZ) are not countries; ZZ is our "unknown".
_USER_ASSIGNED: Final = frozenset(
    {"AA", "ZZ"}
    | {f"Q{c}" for c in "MNOPQRSTUVWXYZ"}
    | {f"X{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
)


def normalize_country(value: object) -> tuple[str, bool]:
    """``(label, valid)``: an upper-cased alpha-2 code, or ``ZZ`` and ``False`` for anything else.

    ``None`` (no country known) gives ``("ZZ", True)``: an unknown country is a normal state, not
    bad input. The result is always one of at most 26 × 26 values, so it needs no limit.
    """
    if value is None:
        return UNKNOWN_COUNTRY, True
    if not isinstance(value, str) or len(value) != 2 or not value.isascii():
        return UNKNOWN_COUNTRY, False
    code = value.upper()
    if code[0] not in _ASCII_UPPER or code[1] not in _ASCII_UPPER:
        return UNKNOWN_COUNTRY, False
    if code in _USER_ASSIGNED:
        return UNKNOWN_COUNTRY, code == UNKNOWN_COUNTRY
    return code, True


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
