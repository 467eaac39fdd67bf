"""Average grid carbon intensity per country, as co2.js 0.19.0 ships it (Ember yearly data).

CO₂e of network and device energy is energy × the intensity of the grid where the customer is, so the
exporter asks this module once per span. The tables load lazily from package data on first use and
every later lookup is a dict hit. Unknown or missing countries fall back to the Ember world average and
say so (``is_world_average``, flag ``country_unknown``), because a figure with a visible caveat is
more useful to an operator than a dropped span.

``exporters/data/grid_intensity.csv`` and ``countries.csv`` are written by
``scripts/co2js/export_grid_data.mjs`` from the installed npm package; see
``docs/methodology-network.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY as _UNKNOWN_COUNTRY
from otel_downstream.exporters.engine.data_files import read_csv
from otel_downstream.exporters.footprint import InputError

__all__ = [
    "DATA_VERSION",
    "UNKNOWN_COUNTRY",
    "GridIntensity",
    "alpha2_to_co2js_key",
    "alpha3_to_alpha2",
    "co2js_key_intensity",
    "countries",
    "country_names",
    "intensity",
    "normalize_country",
]

UNKNOWN_COUNTRY: Final = _UNKNOWN_COUNTRY
"""The alpha-2 code for "country not known" (CLDR's unknown region), used as a metric label."""

DATA_VERSION: Final = "co2js-0.19.0-ember"
"""Names the intensity table in ``downstream_build_info`` and in footprint ``data_version``."""


@dataclass(frozen=True, slots=True)
class GridIntensity:
    """The average carbon intensity of one country's grid, or the world average standing in for it."""

    alpha2: str
    """Canonical ISO 3166-1 alpha-2 code (``XK`` for Kosovo), ``ZZ`` when the country is unknown."""
    g_co2e_per_kwh: float
    year: int
    is_world_average: bool
    """True when no country figure applied (unknown country, or a country Ember has no data for)."""
    source: str
    licence: str

    @property
    def flags(self) -> tuple[str, ...]:
        """``("country_unknown",)`` when the world average stood in, else ``()``."""
        return ("country_unknown",) if self.is_world_average else ()


@dataclass(frozen=True, slots=True)
class _Country:
    alpha2: str
    alpha3: str
    name: str


@dataclass(frozen=True, slots=True)
class _Tables:
    world: GridIntensity
    by_alpha2: dict[str, GridIntensity]
    """Every ISO country (with data or standing in with the world average), keyed by alpha-2."""
    by_spelling: dict[str, GridIntensity]
    """alpha-2 and alpha-3, upper and lower case, plus ``ZZ``: the one-dict-hit fast path."""
    alpha2_by_alpha3: dict[str, str]
    alpha3_by_alpha2: dict[str, str]
    co2js: dict[str, float]
    """co2.js ``averageIntensity.data`` keys (alpha-3 and region names, upper case) to g/kWh."""
    countries: tuple[_Country, ...]


@cache
def _tables() -> _Tables:
    country_rows = tuple(
        _Country(row["alpha2"], row["alpha3"], row["name"]) for row in read_csv("countries.csv")
    )
    co2js: dict[str, float] = {}
    by_alpha2: dict[str, GridIntensity] = {}
    world: GridIntensity | None = None
    for row in read_csv("grid_intensity.csv"):
        value = float(row["g_co2e_per_kwh"])
        co2js[row["co2js_key"]] = value
        kind = row["kind"]
        if kind == "region":
            continue
        entry = GridIntensity(
            alpha2=row["country_alpha2"],
            g_co2e_per_kwh=value,
            year=int(row["year"]),
            is_world_average=kind == "world",
            source=row["source"],
            licence=row["licence"],
        )
        if kind == "world":
            world = entry
        else:
            by_alpha2[entry.alpha2] = entry
    if world is None:
        raise RuntimeError("grid_intensity.csv has no WORLD row; regenerate it")
    for country in country_rows:
        if country.alpha2 not in by_alpha2:
            by_alpha2[country.alpha2] = GridIntensity(
                alpha2=country.alpha2,
                g_co2e_per_kwh=world.g_co2e_per_kwh,
                year=world.year,
                is_world_average=True,
                source=world.source,
                licence=world.licence,
            )
    alpha2_by_alpha3 = {c.alpha3: c.alpha2 for c in country_rows}
    by_spelling: dict[str, GridIntensity] = {UNKNOWN_COUNTRY: world, "zz": world}
    for country in country_rows:
        entry = by_alpha2[country.alpha2]
        for spelling in (country.alpha2, country.alpha3):
            by_spelling[spelling] = entry
            by_spelling[spelling.lower()] = entry
    alpha3_by_alpha2 = {c.alpha2: c.alpha3 for c in country_rows}
    return _Tables(
        world, by_alpha2, by_spelling, alpha2_by_alpha3, alpha3_by_alpha2, co2js, country_rows
    )


def _resolve(code: object, strict: bool, field: str) -> GridIntensity:
    tables = _tables()
    if code is None:
        return tables.world
    if not isinstance(code, str):
        raise InputError(field, code, "an ISO 3166-1 alpha-2 or alpha-3 country code, or None")
    found = tables.by_spelling.get(code)
    if found is not None:
        return found
    found = tables.by_spelling.get(code.strip().upper())
    if found is not None:
        return found
    if strict and code.strip():
        raise InputError(field, code, "an ISO 3166-1 alpha-2 or alpha-3 country code")
    return tables.world


def intensity(country: str | None, *, strict: bool = False) -> GridIntensity:
    """The grid intensity for an ISO alpha-2 or alpha-3 code (any case).

    ``None``, ``""``, ``ZZ`` and unrecognised codes give the world average with
    ``is_world_average=True``; with ``strict=True`` an unrecognised code raises
    :class:`~otel_downstream.exporters.footprint.InputError` instead. A non-string always raises.
    """
    tables = _tables()
    if isinstance(country, str):
        found = tables.by_spelling.get(country)
        if found is not None:
            return found
    return _resolve(country, strict, "country")


def normalize_country(code: str | None, *, strict: bool = False) -> str:
    """Canonical alpha-2 for an alpha-2 or alpha-3 code (any case); ``ZZ`` when unknown or missing.

    A valid ISO code with no grid data still normalises to itself (it is a fine metric label).
    """
    return _resolve(code, strict, "country").alpha2


def co2js_key_intensity(key: str) -> float | None:
    """co2.js's own lookup: ``averageIntensity.data[key.toUpperCase()]``, or None when absent.

    Accepts what co2.js accepts for ``gridIntensity: {segment: {country}}``: alpha-3 codes and
    its region names (``EU``, ``WORLD``, ``LATIN AMERICA AND CARIBBEAN``…).
    """
    return _tables().co2js.get(key.upper())


def alpha3_to_alpha2(alpha3: str) -> str | None:
    """ISO alpha-3 (upper case) to alpha-2, or None."""
    return _tables().alpha2_by_alpha3.get(alpha3)


def alpha2_to_co2js_key(alpha2: str) -> str | None:
    """The co2.js key (alpha-3) for an alpha-2 code, when co2.js has data for that country."""
    tables = _tables()
    alpha3 = tables.alpha3_by_alpha2.get(alpha2)
    return alpha3 if alpha3 is not None and alpha3 in tables.co2js else None


def countries() -> dict[str, GridIntensity]:
    """Every ISO country's entry keyed by alpha-2 (a copy; for reports and docs)."""
    return dict(_tables().by_alpha2)


def country_names() -> dict[str, tuple[str, str]]:
    """Every ISO country's ``(alpha3, name)`` keyed by alpha-2 (for did-you-mean suggestions)."""
    return {c.alpha2: (c.alpha3, c.name) for c in _tables().countries}
