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
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from . import network_input as _in
from .footprint import JOULES_PER_KWH, InputError
from .network_constants import SwdV3Constants, SwdV4Constants, constants
from .network_factors import NetworkFactors, SegmentFactor, per_byte_factors
from .onebyte import OneByte
from .ratings import rate
from .swd import SegmentFigures, SwdV3, SwdV4

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
_INF: Final = math.inf
_UNKNOWN: Final = ("country_unknown",)
"""The co2.js release whose constants and arithmetic these models reproduce."""
METHODS: Final = _in.METHODS

Visit = tuple[float, float, float]


class _Model(Protocol):
    @property
    def segment_names(self) -> tuple[str, ...]: ...

    def segments(
        self, raw: tuple[float, ...] | None, visit: Visit | None
    ) -> dict[str, SegmentFigures]: ...

    def co2js(self, raw: tuple[float, ...] | None, visit: Visit | None) -> dict[str, float]: ...


_Detail = tuple[
    float, tuple[float, float, float], float, _Model, "tuple[float, ...] | None", "Visit | None"
]
"""(bytes, intensities, green hosting factor, model, raw intermediates, visit ratios)."""


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """One segment of a transfer (per page view when ``per_visit``). Base units: kWh, J, g."""

    operational_energy_kwh: float
    embodied_energy_kwh: float
    operational_co2e_g: float
    embodied_co2e_g: float

    @property
    def energy_kwh(self) -> float:
        """Operational energy: the electricity used now (embodied energy is reported apart)."""
        return self.operational_energy_kwh

    @property
    def energy_j(self) -> float:
        """Operational energy in joules, to which the water intensity of electricity applies."""
        return self.operational_energy_kwh * JOULES_PER_KWH

    @property
    def embodied_energy_j(self) -> float:
        return self.embodied_energy_kwh * JOULES_PER_KWH

    @property
    def co2e_g(self) -> float:
        return self.operational_co2e_g + self.embodied_co2e_g

    def to_json(self) -> dict[str, float]:
        return {
            "energy_j": self.energy_j,
            "embodied_energy_j": self.embodied_energy_j,
            "co2e_g": self.co2e_g,
            "operational_co2e_g": self.operational_co2e_g,
            "embodied_co2e_g": self.embodied_co2e_g,
        }


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The answer of :func:`transfer`. ``co2e_g`` is co2.js's total, bit for bit.

    ``segments`` splits it by segment (data_center, network, device; SWD v3 adds production, the
    embodied hardware share). Their sum equals ``co2e_g`` up to float rounding. ``co2js`` gives the
    breakdown fields exactly as co2.js reports them (its data-centre fields ignore the green hosting
    factor, its total does not).
    """

    method: str
    co2e_g: float
    rating: str | None
    flags: tuple[str, ...]
    _detail: _Detail = field(repr=False)
    """Everything else in one tuple: one field to set keeps a call within its µs budget."""

    @property
    def bytes(self) -> float:
        return self._detail[0]

    @property
    def per_visit(self) -> bool:
        return self._detail[5] is not None

    @property
    def g_co2e_per_kwh(self) -> tuple[float, float, float]:
        """Intensities applied to operational energy: (data_center, network, device)."""
        return self._detail[1]

    @property
    def green_hosting_factor(self) -> float:
        return self._detail[2]

    @property
    def visit_ratios(self) -> Visit | None:
        """``(first_visit, return_visit, reload_ratio)`` of a page view; None per byte."""
        return self._detail[5]

    @property
    def segments(self) -> dict[str, SegmentResult]:
        return {
            name: SegmentResult(*figures)
            for name, figures in self._detail[3].segments(self._detail[4], self._detail[5]).items()
        }

    @property
    def energy_kwh(self) -> float:
        """Operational energy of all segments (embodied energy: see ``segments``)."""
        return sum(s.energy_kwh for s in self.segments.values())

    @property
    def energy_j(self) -> float:
        """Operational energy of all segments in joules (embodied energy was spent elsewhere)."""
        return sum(s.energy_j for s in self.segments.values())

    @property
    def co2js(self) -> dict[str, float | str | None]:
        """What co2.js returns with ``results: "segment"`` (and ``rating: true`` for SWD).

        Where co2.js returns a bare number (OneByte; SWD v4 below one byte) this is just
        ``total`` (and ``rating``).
        """
        model, raw, visit = self._detail[3:6]
        out: dict[str, float | str | None] = dict(model.co2js(raw, visit))
        out["total"] = self.co2e_g
        if self.rating is not None:
            out["rating"] = self.rating
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "bytes": self.bytes,
            "per_visit": self.per_visit,
            "energy_j": self.energy_j,
            "co2e_g": self.co2e_g,
            "segments": {name: s.to_json() for name, s in self.segments.items()},
        }
        if self.rating is not None:
            out["rating"] = self.rating
        if self.flags:
            out["flags"] = list(self.flags)
        return out


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
