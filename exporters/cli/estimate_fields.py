"""Reading one field of an ``estimate`` case: checked by name, a bad value raises
:class:`InputError` naming the field and the value, with the closest known names where a name was
mistyped (a provider, a model, a country, a device class)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final

from otel_downstream.agent.attributes import DEVICE_CLASSES
from otel_downstream.exporters.accounting.span_inputs import MAX_TOKENS
from otel_downstream.exporters.engine import device, grid
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.footprint import InputError

DEFAULT_DEVICE_CLASS: Final = "unknown"
"""What the middleware records for a request whose User-Agent it cannot classify (or lacks)."""


@lru_cache(maxsize=64)
def engine(config: EngineConfig) -> Engine:
    return Engine(config)


def number(
    case: Mapping[str, Any], field: str, *, required: bool = False, upper: float = math.inf
) -> float | None:
    value = case.get(field)
    if value is None:
        if required:
            raise InputError(field, None, "a number (required)")
        return None
    expected = "a finite number" if upper == math.inf else f"a number in [0, {upper:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field, value, expected)
    try:
        result = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise InputError(field, value, expected) from None
    if not math.isfinite(result) or (upper != math.inf and not 0 <= result <= upper):
        raise InputError(field, value, expected)
    return result


def flag(case: Mapping[str, Any], field: str, *, default: bool = False) -> bool:
    value = case.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(field, value, "true or false")
    return value


def text(case: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = case.get(field)
    if value is None:
        if required:
            raise InputError(field, None, "a string (required)")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, value, "a non-empty string")
    return value


def integer(case: Mapping[str, Any], field: str, *, default: int | None = None) -> int:
    value = case.get(field)
    if value is None:  # JSON null is a missing key, as for every other field
        value = default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise InputError(field, value, f"an integer in [0, {MAX_TOKENS:g}] (required)")
    return value


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x' or 'y'?)"`` for the closest known names, else ``""``."""
    names = {n.lower(): n for n in known}
    close = difflib.get_close_matches(name.strip().lower(), list(names), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(names[c]) for c in close) + "?)"


def country(case: Mapping[str, Any]) -> str | None:
    """The customer's country as given, checked strictly: a typo is the user's to fix, not a
    silent world average (no country at all is the world average, as at run time)."""
    value = text(case, "country")
    if value is not None:
        try:
            grid.normalize_country(value, strict=True)
        except InputError as exc:
            raise InputError(exc.field, exc.value, exc.expected + _country_hint(value)) from None
    return value


def _country_hint(value: str) -> str:
    """The closest countries to a mistyped code or name: ``" (did you mean 'FR' (France)?)"``."""
    spellings: dict[str, str] = {}
    for alpha2, (alpha3, name) in grid.country_names().items():
        for spelling in (name, alpha3, alpha2):
            spellings[spelling.lower()] = alpha2
    close = difflib.get_close_matches(value.strip().lower(), list(spellings), n=6, cutoff=0.6)
    codes = list(dict.fromkeys(spellings[c] for c in close))[:3]
    if not codes:
        return ""
    names = grid.country_names()
    return " (did you mean " + " or ".join(f"{c!r} ({names[c][1]})" for c in codes) + "?)"


def device_class(case: Mapping[str, Any], *, required: bool = False) -> str:
    """One of the fixed device classes (``unknown`` when not given and not required)."""
    value = text(case, "device_class", required=required) or DEFAULT_DEVICE_CLASS
    try:
        return device.check_device_class(value)
    except InputError as exc:
        hint = did_you_mean(value, DEVICE_CLASSES)
        raise InputError(exc.field, exc.value, exc.expected + hint) from None
