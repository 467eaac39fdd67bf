"""What :func:`otel_downstream.exporters.engine.network.transfer.transfer` returns, with its co2.js-shaped views.

A transfer keeps the model's raw intermediates and builds the per-segment and co2.js breakdowns
only when they are read: the exporter needs just the total, thousands of times a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from otel_downstream.exporters.engine.network.swd import SegmentFigures
from otel_downstream.exporters.footprint import JOULES_PER_KWH

__all__ = ["SegmentResult", "TransferResult", "Visit"]

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
