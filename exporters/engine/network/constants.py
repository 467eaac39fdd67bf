"""The constants of the network transfer models, read once from ``data/swd_constants.json``.

Every number there names the co2.js 0.19.0 file and constant it comes from; this module only turns
the JSON into typed, frozen objects so the models can read plain attributes on the hot path. JSON
numbers parse to the same doubles as the JavaScript literals, which is what keeps the models
bit-identical to co2.js.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from otel_downstream.exporters.engine.data_files import read_json

__all__ = ["OneByteConstants", "SwdV3Constants", "SwdV4Constants", "constants"]


RATING_LETTERS: Final = ("A+", "A", "B", "C", "D", "E")
"""Ratings with an upper bound, best first; anything above the last bound is ``F``."""


@dataclass(frozen=True, slots=True)
class SwdV4Constants:
    bytes_per_gb: float
    op_dc: float
    op_network: float
    op_device: float
    emb_dc: float
    emb_network: float
    emb_device: float
    global_intensity: float
    first_visit: float
    return_visit: float
    reload_ratio: float
    rating_bounds: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SwdV3Constants:
    bytes_per_gb: float
    kwh_per_gb: float
    share_device: float
    share_network: float
    share_production: float
    share_dc: float
    global_intensity: float
    renewables_intensity: float
    first_visit: float
    return_visit: float
    reload_ratio: float
    rating_bounds: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class OneByteConstants:
    dc_kwh_per_byte: float
    network_kwh_per_byte: float
    grey_intensity: float
    green_network_intensity: float
    green_dc_intensity: float


@dataclass(frozen=True, slots=True)
class Constants:
    co2js_version: str
    swd_v4: SwdV4Constants
    swd_v3: SwdV3Constants
    onebyte: OneByteConstants


def _v(node: Any) -> float:
    return float(node["value"])


def _bounds(node: Any) -> tuple[float, ...]:
    return tuple(float(node[letter]) for letter in RATING_LETTERS)


@cache
def constants() -> Constants:
    """All model constants (loaded on first call, then cached)."""
    raw = read_json("swd_constants.json")
    gb = _v(raw["bytes_per_gb"])
    v4 = raw["swd_v4"]
    v3 = raw["swd_v3"]
    one = raw["onebyte"]
    parts = one["network_kwh_per_byte_parts"]
    return Constants(
        co2js_version=str(raw["co2js_version"]),
        swd_v4=SwdV4Constants(
            bytes_per_gb=gb,
            op_dc=_v(v4["operational_kwh_per_gb"]["data_center"]),
            op_network=_v(v4["operational_kwh_per_gb"]["network"]),
            op_device=_v(v4["operational_kwh_per_gb"]["device"]),
            emb_dc=_v(v4["embodied_kwh_per_gb"]["data_center"]),
            emb_network=_v(v4["embodied_kwh_per_gb"]["network"]),
            emb_device=_v(v4["embodied_kwh_per_gb"]["device"]),
            global_intensity=_v(v4["global_g_co2e_per_kwh"]),
            first_visit=_v(v4["first_visit_ratio"]),
            return_visit=_v(v4["return_visit_ratio"]),
            reload_ratio=_v(v4["data_reload_ratio"]),
            rating_bounds=_bounds(v4["rating_upper_bounds_g_co2e"]),
        ),
        swd_v3=SwdV3Constants(
            bytes_per_gb=gb,
            kwh_per_gb=_v(v3["kwh_per_gb"]),
            share_device=_v(v3["energy_share"]["device"]),
            share_network=_v(v3["energy_share"]["network"]),
            share_production=_v(v3["energy_share"]["production"]),
            share_dc=_v(v3["energy_share"]["data_center"]),
            global_intensity=_v(v3["global_g_co2e_per_kwh"]),
            renewables_intensity=_v(v3["renewables_g_co2e_per_kwh"]),
            first_visit=_v(v3["first_visit_ratio"]),
            return_visit=_v(v3["return_visit_ratio"]),
            reload_ratio=_v(v3["data_reload_ratio"]),
            rating_bounds=_bounds(v3["rating_upper_bounds_g_co2e"]),
        ),
        onebyte=OneByteConstants(
            dc_kwh_per_byte=_v(one["data_center_kwh_per_byte"]),
            # Same expression and order as co2.js 1byte.js, so the sum rounds identically.
            network_kwh_per_byte=(
                float(parts["fixed_wired"]) + float(parts["fixed_wifi"]) + float(parts["mobile_4g"])
            )
            / 3,
            grey_intensity=_v(one["grey_g_co2e_per_kwh"]),
            green_network_intensity=_v(one["green_network_g_co2e_per_kwh"]),
            green_dc_intensity=_v(one["green_data_center_g_co2e_per_kwh"]),
        ),
    )
