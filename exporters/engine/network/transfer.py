"""CO₂e and energy of moving bytes over the internet: SWD v4 (default), SWD v3 and OneByte.

The figures are bit-identical to npm ``@tgwf/co2`` 0.19.0 (``perByte``/``perVisit`` and their
``results: "segment"`` breakdowns), so a number here can be checked against the tool most web
carbon reports use. :func:`transfer` answers one question fully; :func:`per_byte_factors` gives the
per-byte energy of each segment so the exporter can do ``bytes × factor × intensity`` for
thousands of spans a second. See ``docs/methodology-network.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from otel_downstream.exporters.engine.network import inputs as _in
from otel_downstream.exporters.engine.network.constants import (
    SwdV3Constants,
    SwdV4Constants,
    constants,
)
from otel_downstream.exporters.engine.network.factors import (
    NetworkFactors,
    SegmentFactor,
    per_byte_factors,
)
from otel_downstream.exporters.engine.network.onebyte import OneByte
from otel_downstream.exporters.engine.network.results import SegmentResult, TransferResult, Visit
from otel_downstream.exporters.engine.network.swd import SwdV3, SwdV4
from otel_downstream.exporters.engine.ratings import rate
from otel_downstream.exporters.footprint import InputError

__all__ = [
    "DATA_VERSION",
    "DEFAULT_METHOD",
    "METHODS",
    "NetworkFactors",
    "SegmentFactor",
    "SegmentResult",
    "TransferResult",
    "per_byte_factors",
    "transfer",
]

DEFAULT_METHOD: Final = "swd-v4"
DATA_VERSION: Final = "co2js-0.19.0"
"""The co2.js release whose constants and arithmetic these models reproduce."""
_INF: Final = math.inf
_UNKNOWN: Final = ("country_unknown",)
METHODS: Final = _in.METHODS


@dataclass(frozen=True, slots=True)
class _Models:
    v4: SwdV4
    v3: SwdV3
    onebyte: OneByte


_MODELS: _Models | None = None


def _models() -> _Models:
    """The models, built on first use (reading the constants file), then a global read."""
    global _MODELS
    if _MODELS is None:
        c = constants()
        _MODELS = _Models(SwdV4(c.swd_v4), SwdV3(c.swd_v3), OneByte(c.onebyte))
    return _MODELS


def transfer(
    bytes_: float,
    *,
    method: str = DEFAULT_METHOD,
    per_visit: bool = False,
    green: bool = False,
    green_hosting_factor: float | None = None,
    grid_intensity: Mapping[str, float | str] | None = None,
    first_visit: float | None = None,
    return_visit: float | None = None,
    reload_ratio: float | None = None,
) -> TransferResult:
    """CO₂e of transferring ``bytes_`` bytes (co2.js ``perByte``, or ``perVisit`` for a page view).

    ``grid_intensity`` maps segments (``device``, ``network``, ``dataCenter``/``data_center``) to
    g CO₂e/kWh or to a country code (alpha-3, alpha-2 or a co2.js region key). ``green`` marks
    green hosting; ``green_hosting_factor`` (SWD v4 only) is the green share of the data centre's
    electricity. ``first_visit``/``return_visit``/``reload_ratio`` shape a page view (SWD only).
    Raises :class:`~otel_downstream.exporters.footprint.InputError` on bad input.
    """
    if bytes_.__class__ is float and 0.0 <= bytes_ < _INF:
        size: float = bytes_
    else:
        size = _in.check_bytes(bytes_, "bytes")
    if method.__class__ is not str or method not in METHODS:
        _in.check_method(method)
    if green is not True and green is not False:
        raise InputError("green", green, "True or False")
    models = _MODELS or _models()
    options = (first_visit, return_visit, reload_ratio)
    if method == "swd-v4":
        v4 = models.v4
        c4 = v4.c
        ghf = 0.0
        if green_hosting_factor is not None:
            ghf = _in.check_ratio(green_hosting_factor, "green_hosting_factor")
        if green:
            ghf = 1.0  # co2.js: green hosting overrides any factor
        intensities, unknown = _in.resolve_intensity(grid_intensity, c4.global_intensity)
        visit = _visit(per_visit, c4, options)
        total, raw = v4.compute(size, ghf, intensities, visit)
        return TransferResult(
            method,
            total,
            rate(total, c4.rating_bounds),
            _UNKNOWN if unknown else (),
            (size, intensities, ghf, v4, raw, visit),
        )
    if green_hosting_factor is not None:
        raise InputError(
            "green_hosting_factor", green_hosting_factor, "None unless method='swd-v4'"
        )
    if method == "swd-v3":
        v3 = models.v3
        c3 = v3.c
        intensities, unknown = _in.resolve_intensity(grid_intensity, c3.global_intensity)
        visit = _visit(per_visit, c3, options)
        total, raw = v3.compute(size, green, intensities, visit)
        if green:
            intensities = (c3.renewables_intensity, intensities[1], intensities[2])
        return TransferResult(
            method,
            total,
            rate(total, c3.rating_bounds),
            _UNKNOWN if unknown else (),
            (size, intensities, 1.0 if green else 0.0, v3, raw, visit),
        )
    one = models.onebyte
    if per_visit:
        raise InputError(
            "per_visit", per_visit, "False for method='onebyte' (co2.js has no perVisit)"
        )
    if grid_intensity is not None:
        raise InputError(
            "grid_intensity", grid_intensity, "None for method='onebyte' (fixed intensities)"
        )
    _in.visit_ratios(False, (1.0, 0.0, 0.0), *options)  # raises if any was given
    total, raw = one.compute(size, green)
    c1 = one.c
    grids = (
        c1.green_dc_intensity if green else c1.grey_intensity,
        c1.green_network_intensity if green else c1.grey_intensity,
        0.0,
    )
    return TransferResult(
        method, total, None, (), (size, grids, 1.0 if green else 0.0, one, raw, None)
    )


def _visit(
    per_visit: bool,
    c: SwdV4Constants | SwdV3Constants,
    options: tuple[float | None, float | None, float | None],
) -> Visit | None:
    """The page-view ratios with the model's defaults filled in, or None per byte."""
    if not per_visit and options == (None, None, None):
        return None  # the common per-byte call skips the checks
    return _in.visit_ratios(per_visit, (c.first_visit, c.return_visit, c.reload_ratio), *options)
