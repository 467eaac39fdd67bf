"""Build exporters/data/water_intensity.csv: litres of water consumed per kWh of electricity, per country.

Why a script: the table is derived, not typed in. Each country's electricity generation mix (TWh by
source, Our World in Data energy dataset from Ember and the Energy Institute, as bundled in the
``codecarbon`` package) is weighted by per-source operational water consumption factors (Macknick et
al. 2012, medians). The factors are written next to the result (water_fuel_factors.csv) so every
number in the country table can be reproduced by hand.

Run from the repository root with any Python >= 3.10:

    python3 scripts/water/build_water_table.py

It creates a throw-away virtualenv (/tmp/water-venv, override with WATER_VENV) with the pinned
inputs, re-runs itself inside it and writes both CSV files. Nothing here is imported at run time.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

CODECARBON = "codecarbon==3.3.2"
PYCOUNTRY = "pycountry==26.2.16"
VENV = Path(os.environ.get("WATER_VENV", "/tmp/water-venv"))
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "exporters" / "data"
GAL_PER_MWH_TO_L_PER_KWH = 3.785411784 / 1000.0

MACKNICK = (
    "Macknick, Newmark, Heath, Hallett (2012) Operational water consumption and withdrawal factors "
    "for electricity generating technologies: a review of existing literature. Environ. Res. Lett. "
    "7 045802, Table 2 (consumption, median)"
)
MACKNICK_LICENCE = "CC BY-NC-SA 3.0 (article); factors are cited facts"

# (generation field in the mix, technology the median is taken from, gal/MWh median, note)
# Thermal plants: the recirculating (cooling tower) median, the most common cooling for new
# capacity and the conservative middle between once-through (lower consumption) and ponds.
FUEL_FACTORS: tuple[tuple[str, str, float, str], ...] = (
    ("coal_TWh", "coal, generic, cooling tower", 687.0, ""),
    ("gas_TWh", "natural gas combined cycle, cooling tower", 205.0, "most gas generation is CCGT"),
    (
        "oil_TWh",
        "natural gas steam turbine, cooling tower",
        826.0,
        "proxy: Macknick has no oil row; oil-fired plants use the same steam (Rankine) cycle",
    ),
    ("nuclear_TWh", "nuclear, cooling tower", 672.0, ""),
    ("biofuel_TWh", "biopower steam, cooling tower", 553.0, "bioenergy incl. biogas and waste"),
    (
        "other_renewable_exc_biofuel_TWh",
        "geothermal flash, cooling tower",
        15.0,
        "mostly geothermal; flash plants are the largest share of geothermal capacity",
    ),
    ("solar_TWh", "photovoltaic, utility scale", 1.0, "panel cleaning; CSP is a small share"),
    ("wind_TWh", "wind turbine", 0.0, ""),
    ("hydroelectricity_TWh", "hydropower, run of plant operation", 0.0, "no cooling water"),
)
HYDRO_EVAPORATION = (
    "hydroelectricity_TWh",
    "hydropower, reservoir evaporation (in-stream)",
    4491.0,
    "Macknick Table 2 median (from Torcellini et al. 2003, NREL/TP-550-33905); gross evaporation,"
    " not allocated among reservoir uses; counted only with hydro evaporation switched on",
)
MIX_SOURCE = (
    "Our World in Data energy dataset (Ember, Energy Institute Statistical Review) electricity "
    "generation by source, as bundled in codecarbon 3.3.2 data/private_infra/global_energy_mix.json"
)
MIX_LICENCE = "mix data CC BY 4.0 (Our World in Data); codecarbon package MIT"


def _ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # --no-deps: only the JSON data file and pycountry's tables are needed, not codecarbon's stack.
    subprocess.run([*pip, "--no-deps", CODECARBON, PYCOUNTRY], check=True)
    return python


def _factor_rows() -> list[dict[str, str]]:
    rows = []
    for field, technology, gal, note in (*FUEL_FACTORS, HYDRO_EVAPORATION):
        evaporation = (field, technology, gal, note) == HYDRO_EVAPORATION
        rows.append(
            {
                "generation_field": field,
                "component": "hydro_evaporation" if evaporation else "operational",
                "technology": technology,
                "gal_per_mwh": f"{gal:g}",
                "l_per_kwh": f"{gal * GAL_PER_MWH_TO_L_PER_KWH:.6f}",
                "year": "2012",
                "source": MACKNICK,
                "licence": MACKNICK_LICENCE,
                "note": note,
            }
        )
    return rows


def _intensity(mix: dict[str, float]) -> tuple[float, float]:
    """(L/kWh without, with hydro evaporation) for one generation mix in TWh."""
    total = sum(float(mix[field]) for field, *_ in FUEL_FACTORS)
    if total <= 0:
        raise ValueError("empty generation mix")
    litres = sum(float(mix[field]) * gal for field, _, gal, _ in FUEL_FACTORS)
    hydro = float(mix[HYDRO_EVAPORATION[0]]) * HYDRO_EVAPORATION[2]
    scale = GAL_PER_MWH_TO_L_PER_KWH / total
    return litres * scale, (litres + hydro) * scale


def build() -> None:
    import importlib.util

    import pycountry  # only inside the build venv

    # find_spec, not import: importing codecarbon would pull its whole runtime stack.
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or spec.origin is None:
        raise SystemExit("codecarbon is not installed in the build venv")
    mix_path = Path(spec.origin).parent / "data" / "private_infra" / "global_energy_mix.json"
    mixes: dict[str, dict[str, float]] = json.loads(mix_path.read_text(encoding="utf-8"))
    rows = []
    world: dict[str, float] = {field: 0.0 for field, *_ in FUEL_FACTORS}
    years = []
    for alpha3, mix in sorted(mixes.items()):
        country = pycountry.countries.get(alpha_3=alpha3)
        if country is None or float(mix["total_TWh"]) <= 0:
            print(f"skipped {alpha3}: no ISO 3166 alpha-2 code or no generation", file=sys.stderr)
            continue
        without, with_evap = _intensity(mix)
        for field in world:
            world[field] += float(mix[field])
        years.append(int(mix["year"]))
        rows.append(
            _row(
                country.alpha_2,
                alpha3,
                str(mix["country_name"]),
                year=int(mix["year"]),
                without=without,
                with_evap=with_evap,
                mix=mix,
            )
        )
    without, with_evap = _intensity(world)
    rows.append(
        _row(
            "ZZ",
            "WLD",
            "World (generation-weighted over all countries)",
            year=max(years),
            without=without,
            with_evap=with_evap,
            mix=world,
        )
    )
    _write(DATA / "water_intensity.csv", rows)
    _write(DATA / "water_fuel_factors.csv", _factor_rows())
    print(
        f"wrote {len(rows)} rows; world {without:.3f} L/kWh ({with_evap:.3f} with hydro evaporation)"
    )


def _row(
    alpha2: str,
    alpha3: str,
    name: str,
    *,
    year: int,
    without: float,
    with_evap: float,
    mix: dict[str, float],
) -> dict[str, str]:
    total = sum(float(mix[field]) for field, *_ in FUEL_FACTORS)
    return {
        "alpha2": alpha2,
        "alpha3": alpha3,
        "country_name": name,
        "year": str(year),
        "l_per_kwh": f"{without:.4f}",
        "l_per_kwh_with_hydro_evaporation": f"{with_evap:.4f}",
        "hydro_share": f"{float(mix['hydroelectricity_TWh']) / total:.4f}",
        "generation_twh": f"{total:.2f}",
        "source": "OWID energy mix (Ember, EI) via codecarbon 3.3.2 x Macknick et al. 2012 medians (water_fuel_factors.csv)",
        "licence": MIX_LICENCE,
    }


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    if os.environ.get("WATER_BUILD_INNER") == "1":
        build()
    else:
        python = _ensure_venv()
        env = {**os.environ, "WATER_BUILD_INNER": "1"}
        raise SystemExit(subprocess.call([str(python), __file__], env=env))
