"""Water consumed per kWh of electricity, per country.

Water follows energy the way CO₂e does: litres = kWh × the water intensity of the electricity where it
is used. The table (``data/water_intensity.csv``) is built by ``scripts/water/build_water_table.py``
from each country's generation mix and per-source operational consumption factors (Macknick et al.
2012 medians). Reservoir evaporation of hydropower is a separate column; it is counted by default,
as WRI's guidance and EcoLogits (our AI segment) do, and can be switched off (docs/methodology.md,
"Water").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.exporters.engine.data_files import read_csv
from otel_downstream.exporters.footprint import InputError

DATA_VERSION: Final = "water-v1"
"""Bumped whenever the table or the way it is built changes (shown in downstream_build_info)."""

WORLD: Final = UNKNOWN_COUNTRY
"""The world-average row of the table is keyed by the "country unknown" code."""


@dataclass(frozen=True, slots=True)
class WaterIntensity:
    """Litres consumed per kWh in one country (or the world average when ``is_world_average``)."""

    alpha2: str
    l_per_kwh: float
    year: int
    is_world_average: bool
    hydro_evaporation: bool


@dataclass(frozen=True, slots=True)
class _Row:
    alpha2: str
    alpha3: str
    year: int
    l_per_kwh: float
    l_per_kwh_with_hydro_evaporation: float


@cache
def _load() -> dict[str, _Row]:
    """Read the CSV once per process; keyed by alpha-2 and alpha-3 (upper case)."""
    table: dict[str, _Row] = {}
    for record in read_csv("water_intensity.csv"):
        row = _Row(
            alpha2=record["alpha2"],
            alpha3=record["alpha3"],
            year=int(record["year"]),
            l_per_kwh=float(record["l_per_kwh"]),
            l_per_kwh_with_hydro_evaporation=float(record["l_per_kwh_with_hydro_evaporation"]),
        )
        table[row.alpha2] = row
        table[row.alpha3] = row
    if WORLD not in table:
        raise RuntimeError("water_intensity.csv has no world-average row (ZZ)")
    return table


def intensity(country: str | None, *, hydro_evaporation: bool = True) -> WaterIntensity:
    """Water intensity of electricity in ``country`` (ISO alpha-2 or alpha-3, any case).

    ``None``, an empty string, ``ZZ`` or a code the table lacks give the world average with
    ``is_world_average=True``, so the caller can flag ``country_unknown``. A value that is not a
    country code at all (wrong type or shape) is an input error.
    """
    if country is not None and not isinstance(country, str):
        raise InputError("country", country, "an ISO 3166 alpha-2 or alpha-3 code")
    code = (country or "").strip().upper()
    if code and (len(code) not in (2, 3) or not code.isalpha()):
        raise InputError("country", country, "an ISO 3166 alpha-2 or alpha-3 code")
    table = _load()
    row = table.get(code) if code else None
    world = row is None or row.alpha2 == WORLD
    if row is None:
        row = table[WORLD]
    value = row.l_per_kwh_with_hydro_evaporation if hydro_evaporation else row.l_per_kwh
    return WaterIntensity(row.alpha2, value, row.year, world, hydro_evaporation)


def countries() -> tuple[str, ...]:
    """Alpha-2 codes with a country-specific figure (the world row excluded), sorted."""
    return tuple(sorted({r.alpha2 for r in _load().values() if r.alpha2 != WORLD}))
