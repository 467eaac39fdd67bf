"""Checks and resolves the inputs of the network models, with errors that name field and value.

Kept apart from the maths so ``network.transfer`` and ``network.per_byte_factors`` reject bad input
identically. Grid intensities can be numbers (g CO₂e/kWh) or places: co2.js keys (alpha-3 codes and
its region names such as ``EU``) resolve exactly as co2.js resolves them, ISO alpha-2 codes through
their alpha-3 code; a well-formed code co2.js has no figure for falls back to the model's global
intensity (what co2.js does) and raises the ``country_unknown`` flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from otel_downstream.exporters.engine import grid
from otel_downstream.exporters.footprint import InputError

__all__ = [
    "METHODS",
    "SEGMENT_KEYS",
    "check_bytes",
    "check_method",
    "check_ratio",
    "resolve_intensity",
    "visit_ratios",
]

METHODS: Final = ("swd-v4", "swd-v3", "onebyte")

SEGMENT_KEYS: Final = {
    "dataCenter": "data_center",
    "data_center": "data_center",
    "network": "network",
    "device": "device",
}
"""co2.js ``gridIntensity`` keys and our snake_case names, to our names."""

_INF: Final = math.inf
_CODE_CACHE: dict[str, float | None] = {}
"""Resolved codes: spans repeat a handful of countries, so most lookups end here."""
_CODE_CACHE_MAX: Final = 4096


def check_method(method: object) -> str:
    if isinstance(method, str) and method in METHODS:
        return method
    raise InputError("method", method, f"one of {', '.join(METHODS)}")


def check_bytes(value: object, field: str = "bytes") -> float:
    """A finite, non-negative byte count as a float (the type co2.js computes with)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(field, value, "a finite, non-negative number of bytes")
    try:
        number = float(value)
    except OverflowError:
        raise InputError(field, value, "a finite, non-negative number of bytes") from None
    if not (0.0 <= number < math.inf):  # also false for NaN
        raise InputError(field, value, "a finite, non-negative number of bytes")
    return number


def check_ratio(value: object, field: str) -> float:
    """A number in [0, 1] (co2.js would silently fall back to its default; we say so instead)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if 0.0 <= number <= 1.0:
            return number
    raise InputError(field, value, "a number between 0 and 1")


def _country(code: str, field: str) -> float | None:
    if code in _CODE_CACHE:
        return _CODE_CACHE[code]
    value = grid.co2js_key_intensity(code)
    if value is None:
        key = code.strip().upper()
        if not (key.isascii() and key.isalpha() and len(key) in (2, 3)):
            value = grid.co2js_key_intensity(key)
            if value is None:
                raise InputError(
                    field, code, "a number (g CO2e/kWh) or an ISO 3166-1 alpha-2/alpha-3 code"
                )
        elif len(key) == 2:
            alpha3 = grid.alpha2_to_co2js_key(key)
            value = None if alpha3 is None else grid.co2js_key_intensity(alpha3)
        else:
            value = grid.co2js_key_intensity(key)
    if len(_CODE_CACHE) < _CODE_CACHE_MAX:
        _CODE_CACHE[code] = value
    return value


_SKIP: Final = -1.0
"""Sentinel from :func:`_slow_spec`: the segment keeps the model default, no flag (spec None)."""


def _slow_spec(key: str, spec: object) -> float | None:
    """Everything but the common str/float specs; None for an unknown country."""
    field = f"grid_intensity[{key!r}]"
    if isinstance(spec, Mapping) and "country" in spec:
        spec = spec["country"]  # co2.js's {"country": "GBR"} form
    if spec is None:
        return _SKIP
    if isinstance(spec, str):
        return _country(spec, field)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        value = float(spec)
        if 0.0 <= value < math.inf:
            return value
        raise InputError(field, spec, "a finite, non-negative intensity in g CO2e/kWh")
    raise InputError(field, spec, "a number (g CO2e/kWh) or a country code")


def resolve_intensity(
    grid_intensity: Mapping[str, object] | None, default: float
) -> tuple[tuple[float, float, float], bool]:
    """``((data_center, network, device) g CO₂e/kWh, country_unknown)``."""
    if grid_intensity is None:
        return (default, default, default), False
    if grid_intensity.__class__ is not dict and not isinstance(grid_intensity, Mapping):
        raise InputError("grid_intensity", grid_intensity, "a mapping of segment to intensity")
    dc = net = dev = default
    unknown = False
    for key, spec in grid_intensity.items():
        segment = SEGMENT_KEYS.get(key)
        if segment is None:
            raise InputError("grid_intensity", key, f"segment keys among {', '.join(SEGMENT_KEYS)}")
        value: float | None
        cls = spec.__class__
        if cls is float and 0.0 <= spec < _INF:  # type: ignore[operator]
            value = spec  # type: ignore[assignment]
        elif cls is str and spec in _CODE_CACHE:
            value = _CODE_CACHE[spec]
        else:
            value = _slow_spec(key, spec)
            if value == _SKIP:
                continue
        if value is None:
            unknown = True
        elif segment == "data_center":
            dc = value
        elif segment == "network":
            net = value
        else:
            dev = value
    return (dc, net, dev), unknown


def visit_ratios(
    per_visit: bool,
    defaults: tuple[float, float, float],
    first_visit: float | None,
    return_visit: float | None,
    reload_ratio: float | None,
) -> tuple[float, float, float] | None:
    """``(first_visit, return_visit, reload_ratio)`` for a page view, defaults filled in; None
    per byte, where giving any of them is an error (co2.js would silently ignore them)."""
    if not per_visit:
        for name, value in (
            ("first_visit", first_visit),
            ("return_visit", return_visit),
            ("reload_ratio", reload_ratio),
        ):
            if value is not None:
                raise InputError(name, value, "None unless per_visit=True")
        return None
    return (
        defaults[0] if first_visit is None else check_ratio(first_visit, "first_visit"),
        defaults[1] if return_visit is None else check_ratio(return_visit, "return_visit"),
        defaults[2] if reload_ratio is None else check_ratio(reload_ratio, "reload_ratio"),
    )
