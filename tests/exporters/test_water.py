"""Water intensity of electricity: the table, the lookup and the build script's arithmetic."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from otel_downstream.exporters.engine import water
from otel_downstream.exporters.footprint import InputError

GAL_PER_MWH = 3.785411784 / 1000.0


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("otel_downstream.exporters.data").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_country_by_alpha2_and_alpha3_any_case() -> None:
    fr = water.intensity("FR")
    assert fr == water.intensity("fra") == water.intensity(" fr ")
    assert fr.alpha2 == "FR" and not fr.is_world_average
    cooling = water.intensity("FR", hydro_evaporation=False).l_per_kwh
    assert 0.5 < cooling < 3.0  # nuclear-heavy: cooling towers dominate
    assert fr.hydro_evaporation and fr.l_per_kwh > cooling  # counted by default


@pytest.mark.parametrize("country", [None, "", "ZZ", "QQ", "XYZ"])
def test_unknown_country_is_world_average(country: str | None) -> None:
    w = water.intensity(country)
    assert w.is_world_average and w.alpha2 == "ZZ"
    assert w.l_per_kwh == pytest.approx(water.intensity("ZZ").l_per_kwh)


@pytest.mark.parametrize("bad", ["F1", "FRANCE", 33, "", "1"])
def test_malformed_country_is_input_error(bad: object) -> None:
    if bad == "":
        return  # empty means unknown, covered above
    with pytest.raises(InputError) as info:
        water.intensity(bad)  # type: ignore[arg-type]
    assert info.value.field == "country"


def test_hydro_evaporation_adds_only_for_hydro_countries() -> None:
    # Norway is ~90% hydro: evaporation dominates when switched on; a hydro-free grid is unchanged.
    no_off, no_on = water.intensity("NO", hydro_evaporation=False), water.intensity("NO")
    assert no_on.l_per_kwh > 10 * no_off.l_per_kwh
    assert no_on.hydro_evaporation and not no_off.hydro_evaporation
    rows = {r["alpha2"]: r for r in _rows("water_intensity.csv")}
    dry = next(a for a, r in rows.items() if float(r["hydro_share"]) == 0.0)
    assert water.intensity(dry).l_per_kwh == water.intensity(dry, hydro_evaporation=False).l_per_kwh


def test_table_matches_fuel_factors_for_a_recomputed_country() -> None:
    """Recompute one row from the published factors and a mix: France 2023 (OWID, TWh)."""
    factors = {
        r["generation_field"]: float(r["gal_per_mwh"])
        for r in _rows("water_fuel_factors.csv")
        if r["component"] == "operational"
    }
    assert factors["coal_TWh"] == 687 and factors["nuclear_TWh"] == 672  # Macknick 2012 medians
    assert factors["wind_TWh"] == 0 and factors["solar_TWh"] == 1
    mix = {  # OWID energy mix as bundled in codecarbon 3.3.2, France 2023
        "coal_TWh": 2.16,
        "gas_TWh": 31.43,
        "oil_TWh": 9.71,
        "nuclear_TWh": 335.65,
        "biofuel_TWh": 9.5,
        "other_renewable_exc_biofuel_TWh": 0.6,
        "solar_TWh": 23.26,
        "wind_TWh": 48.61,
        "hydroelectricity_TWh": 53.19,
    }
    expected = sum(mix[k] * factors[k] for k in mix) / sum(mix.values()) * GAL_PER_MWH
    assert water.intensity("FR", hydro_evaporation=False).l_per_kwh == pytest.approx(
        expected, abs=1e-4
    )


def test_every_row_has_provenance_and_sane_values() -> None:
    rows = _rows("water_intensity.csv")
    assert len(rows) > 200
    assert sum(r["alpha2"] == "ZZ" for r in rows) == 1
    for r in rows:
        assert r["source"] and r["licence"] and int(r["year"]) >= 2009
        assert 0.0 <= float(r["l_per_kwh"]) <= float(r["l_per_kwh_with_hydro_evaporation"]) < 20.0
    assert "ZZ" not in water.countries() and "US" in water.countries()


def test_agrees_with_the_wri_figures_the_ai_segment_uses() -> None:
    """EcoLogits' electricity water (WRI off-site method) for the AI segment, same electricity:
    with hydro evaporation counted, the world average and two large grids agree closely."""
    theirs = {
        r["zone"]: float(r["water_l_per_kwh"])
        for r in _rows("llm_electricity_mixes.csv")
        if r["water_is_world_default"] == "false"
    }
    assert water.intensity(None).l_per_kwh == pytest.approx(theirs["WOR"], rel=0.01)
    assert water.intensity("FR").l_per_kwh == pytest.approx(theirs["FRA"], rel=0.05)
    assert water.intensity("DE").l_per_kwh == pytest.approx(theirs["DEU"], rel=0.10)


def test_committed_factor_table_is_what_the_build_script_writes() -> None:
    """The factors are constants in scripts/water/build_water_table.py; the CSV must match them."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "water" / "build_water_table.py"
    if not path.exists():  # tests run from an installed wheel have no scripts/
        pytest.skip("scripts/ not present")
    spec = importlib.util.spec_from_file_location("build_water_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._factor_rows() == _rows("water_fuel_factors.csv")
