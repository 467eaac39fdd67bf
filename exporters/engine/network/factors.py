"""Per-byte energy factors of the network models, for the exporter's hot path.

``transfer()`` runs a whole model per call. The exporter sees thousands of spans a second, each with
its own byte count and country, so it takes these factors once per configuration and then does
``bytes × kWh/byte × g/kWh`` per span. The factors are the model's constants folded together
(``kWh/GB ÷ bytes/GB``, times the page-view weighting), so results agree with ``transfer()`` to
within a few units in the last place; ``transfer()`` alone is bit-identical to co2.js.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Protocol

from otel_downstream.exporters.engine.network import inputs as _in
from otel_downstream.exporters.engine.network.constants import constants
from otel_downstream.exporters.footprint import InputError

__all__ = ["NetworkFactors", "SegmentFactor", "per_byte_factors"]


@dataclass(frozen=True, slots=True)
class SegmentFactor:
    """Energy per byte of one segment and how to turn it into CO₂e."""

    operational_kwh_per_byte: float
    embodied_kwh_per_byte: float
    embodied_g_co2e_per_kwh: float
    """The model fixes this (its global intensity): embodied energy was spent where hardware is made."""
    fixed_g_co2e_per_kwh: float | None = None
    """Set when the model fixes the operational intensity (OneByte; SWD v3 green data centre)."""
    operational_co2e_scale: float = 1.0
    """1 − green hosting factor for the SWD v4 data centre; 1 elsewhere."""

    def co2e_g(self, bytes_: float, g_co2e_per_kwh: float) -> float:
        """CO₂e in grams for ``bytes_`` when the operational energy is used at ``g_co2e_per_kwh``."""
        grid = g_co2e_per_kwh if self.fixed_g_co2e_per_kwh is None else self.fixed_g_co2e_per_kwh
        return (
            bytes_ * self.operational_kwh_per_byte * grid * self.operational_co2e_scale
            + bytes_ * self.embodied_kwh_per_byte * self.embodied_g_co2e_per_kwh
        )


@dataclass(frozen=True, slots=True)
class NetworkFactors:
    """Factors of one model configuration; segments as in :class:`network.TransferResult`."""

    method: str
    per_visit: bool
    segments: Mapping[str, SegmentFactor]
    default_g_co2e_per_kwh: float
    """The model's own global intensity (494 for SWD v4), which co2.js uses when no country applies."""
    min_bytes: float
    """co2.js answers 0 below this many bytes (1 for perByte and v4/OneByte; 0 for SWD v3 perVisit)."""

    # Flat per-byte views for the engine (kWh per byte; 0.0 for a segment the model lacks).
    def _segment(self, name: str) -> SegmentFactor:
        return self.segments.get(name, _NO_SEGMENT)

    @property
    def network_kwh(self) -> float:
        return self._segment("network").operational_kwh_per_byte

    @property
    def device_kwh(self) -> float:
        return self._segment("device").operational_kwh_per_byte

    @property
    def device_embodied_kwh(self) -> float:
        return self._segment("device").embodied_kwh_per_byte

    @property
    def embodied_g_co2e_per_kwh(self) -> float:
        """The intensity the model applies to embodied energy (its global figure)."""
        return max(s.embodied_g_co2e_per_kwh for s in self.segments.values())

    @property
    def datacenter_g_co2e_per_kwh(self) -> float:
        """Effective data-centre intensity with green hosting applied, at the model's default grid."""
        dc = self._segment("data_center")
        grid = self.default_g_co2e_per_kwh
        if dc.fixed_g_co2e_per_kwh is not None:
            grid = dc.fixed_g_co2e_per_kwh
        return grid * dc.operational_co2e_scale

    @property
    def network_g_co2e_per_kwh(self) -> float | None:
        """A fixed network intensity (OneByte), or None: use the grid where the customer is."""
        return self._segment("network").fixed_g_co2e_per_kwh

    def operational_kwh(self, bytes_: float) -> float:
        """Operational energy of all segments (the electricity used at run time)."""
        if bytes_ < self.min_bytes:
            return 0.0
        return sum(bytes_ * s.operational_kwh_per_byte for s in self.segments.values())

    def co2e_g(self, bytes_: float, g_co2e_per_kwh: float | Mapping[str, float]) -> float:
        """Total CO₂e for ``bytes_``: one intensity for all segments, or one per segment name."""
        if bytes_ < self.min_bytes:
            return 0.0
        total = 0.0
        for name, segment in self.segments.items():
            grid = (
                g_co2e_per_kwh
                if isinstance(g_co2e_per_kwh, (int, float))
                else g_co2e_per_kwh.get(name, self.default_g_co2e_per_kwh)
            )
            total += segment.co2e_g(bytes_, grid)
        return total


_NO_SEGMENT: Final = SegmentFactor(0.0, 0.0, 0.0)


def per_byte_factors(
    method: str = "swd-v4",
    *,
    green: bool = False,
    green_hosting_factor: float | None = None,
    per_visit: bool = False,
    first_visit: float | None = None,
    return_visit: float | None = None,
    reload_ratio: float | None = None,
) -> NetworkFactors:
    """kWh per byte of each segment for a model configuration (cached: call it per span freely)."""
    _in.check_method(method)
    if green is not True and green is not False:
        raise InputError("green", green, "True or False")
    if green_hosting_factor is not None:
        if method != "swd-v4":
            raise InputError(
                "green_hosting_factor", green_hosting_factor, "None unless method='swd-v4'"
            )
        green_hosting_factor = _in.check_ratio(green_hosting_factor, "green_hosting_factor")
    visit = [first_visit, return_visit, reload_ratio]
    names = ("first_visit", "return_visit", "reload_ratio")
    for n, name in enumerate(names):
        if visit[n] is not None:
            if not per_visit:
                raise InputError(name, visit[n], "None unless per_visit=True")
            visit[n] = _in.check_ratio(visit[n], name)
    if per_visit and method == "onebyte":
        raise InputError("per_visit", per_visit, "False for method='onebyte'")
    return _factors(
        method,
        green=green,
        ghf=green_hosting_factor,
        per_visit=per_visit,
        first_visit=visit[0],
        return_visit=visit[1],
        reload_ratio=visit[2],
    )


@lru_cache(maxsize=256)
def _factors(
    method: str,
    *,
    green: bool,
    ghf: float | None,
    per_visit: bool,
    first_visit: float | None,
    return_visit: float | None,
    reload_ratio: float | None,
) -> NetworkFactors:
    c = constants()
    segments: dict[str, SegmentFactor]
    if method == "onebyte":
        one = c.onebyte
        segments = {
            "data_center": SegmentFactor(
                one.dc_kwh_per_byte,
                0.0,
                0.0,
                fixed_g_co2e_per_kwh=one.green_dc_intensity if green else one.grey_intensity,
            ),
            "network": SegmentFactor(
                one.network_kwh_per_byte,
                0.0,
                0.0,
                fixed_g_co2e_per_kwh=one.green_network_intensity if green else one.grey_intensity,
            ),
        }
        return NetworkFactors(
            method, False, MappingProxyType(segments), one.grey_intensity, min_bytes=1.0
        )
    if method == "swd-v4":
        v4 = c.swd_v4
        weight = _weight(per_visit, first_visit, return_visit, reload_ratio, v4)
        scale = 1.0 - (1.0 if green else (ghf or 0.0))
        gb = v4.bytes_per_gb
        g = v4.global_intensity
        segments = {
            "data_center": SegmentFactor(
                v4.op_dc / gb * weight, v4.emb_dc / gb * weight, g, operational_co2e_scale=scale
            ),
            "network": SegmentFactor(v4.op_network / gb * weight, v4.emb_network / gb * weight, g),
            "device": SegmentFactor(v4.op_device / gb * weight, v4.emb_device / gb * weight, g),
        }
        return NetworkFactors(method, per_visit, MappingProxyType(segments), g, min_bytes=1.0)
    v3 = c.swd_v3
    weight = _weight(per_visit, first_visit, return_visit, reload_ratio, v3)
    usage = v3.kwh_per_gb / v3.bytes_per_gb * weight
    g = v3.global_intensity
    segments = {
        "data_center": SegmentFactor(
            usage * v3.share_dc,
            0.0,
            0.0,
            fixed_g_co2e_per_kwh=v3.renewables_intensity if green else None,
        ),
        "network": SegmentFactor(usage * v3.share_network, 0.0, 0.0),
        "device": SegmentFactor(usage * v3.share_device, 0.0, 0.0),
        "production": SegmentFactor(0.0, usage * v3.share_production, g),
    }
    return NetworkFactors(
        method, per_visit, MappingProxyType(segments), g, min_bytes=0.0 if per_visit else 1.0
    )


class _VisitDefaults(Protocol):
    @property
    def first_visit(self) -> float: ...
    @property
    def return_visit(self) -> float: ...
    @property
    def reload_ratio(self) -> float: ...


def _weight(
    per_visit: bool,
    first_visit: float | None,
    return_visit: float | None,
    reload_ratio: float | None,
    defaults: _VisitDefaults,
) -> float:
    """Bytes-weighted share of a page view: first + reload × return (co2.js's visit formula)."""
    if not per_visit:
        return 1.0
    first = defaults.first_visit if first_visit is None else first_visit
    again = defaults.return_visit if return_visit is None else return_visit
    reload = defaults.reload_ratio if reload_ratio is None else reload_ratio
    return first + reload * again
