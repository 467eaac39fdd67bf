"""The grid-intensity table: co2.js's shipped Ember figures, with year, source and licence per row."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from otel_downstream.exporters.engine import grid
from otel_downstream.exporters.engine.network.constants import constants
from otel_downstream.exporters.footprint import InputError

FIXTURES = Path(__file__).parent / "fixtures"
CO2JS_DIR = Path(__file__).resolve().parents[2] / "scripts" / "co2js"
HAVE_CO2JS = shutil.which("node") is not None and (CO2JS_DIR / "node_modules/@tgwf/co2").is_dir()


def rows(name: str) -> list[dict[str, str]]:
    text = (
        resources.files("otel_downstream.exporters.data").joinpath(name).read_text(encoding="utf-8")
    )
    return list(csv.DictReader(io.StringIO(text)))


def test_every_row_has_value_year_source_and_licence() -> None:
    table = rows("grid_intensity.csv")
    assert len(table) >= 200
    for row in table:
        assert float(row["g_co2e_per_kwh"]) >= 0, row
        assert 2015 <= int(row["year"]) <= 2030, row
        assert "co2" in row["source"] and "Ember" in row["source"], row
        assert row["licence"] == "CC-BY-SA-4.0", row
        assert row["kind"] in {"country", "region", "world"}, row
    countries = [r for r in table if r["kind"] == "country"]
    assert len({r["country_alpha2"] for r in countries}) == len(countries)
    assert all(len(r["country_alpha2"]) == 2 and len(r["country_alpha3"]) == 3 for r in countries)
    assert [r["co2js_key"] for r in table if r["kind"] == "world"] == ["WORLD"]


def test_country_list_is_iso_3166() -> None:
    table = rows("countries.csv")
    assert len(table) >= 249
    assert {"alpha2": "GB", "alpha3": "GBR"}.items() <= table[
        [r["alpha2"] for r in table].index("GB")
    ].items()
    assert all(r["source"] for r in table)


@pytest.mark.parametrize("code", ["GB", "gb", "GBR", "gbr", " Gbr "])
def test_alpha2_and_alpha3_any_case(code: str) -> None:
    g = grid.intensity(code)
    assert (g.alpha2, g.g_co2e_per_kwh, g.year, g.is_world_average) == ("GB", 215.79, 2024, False)
    assert g.flags == ()
    assert grid.normalize_country(code) == "GB"


@pytest.mark.parametrize("code", [None, "", "ZZ", "zz", "QQ", "QQQ", "not a country"])
def test_unknown_means_world_average_and_says_so(code: str | None) -> None:
    g = grid.intensity(code)
    assert g.alpha2 == "ZZ"
    assert g.is_world_average
    assert g.flags == ("country_unknown",)
    assert g.g_co2e_per_kwh == 472.94
    assert grid.normalize_country(code) == "ZZ"


def test_world_average_is_the_swd_v3_global_constant() -> None:
    # co2.js defines GLOBAL_GRID_INTENSITY as averageIntensity.data.WORLD.
    assert grid.intensity(None).g_co2e_per_kwh == constants().swd_v3.global_intensity


@pytest.mark.parametrize("code", ["QQ", "12", "GBRR", "G B"])
def test_strict_rejects_unrecognised_codes(code: str) -> None:
    with pytest.raises(InputError) as err:
        grid.intensity(code, strict=True)
    assert err.value.field == "country"
    assert err.value.value == code
    with pytest.raises(InputError):
        grid.normalize_country(code, strict=True)


def test_strict_still_accepts_missing_and_zz() -> None:
    assert grid.intensity(None, strict=True).is_world_average
    assert grid.intensity("ZZ", strict=True).is_world_average


@pytest.mark.parametrize("code", [826, 2.5, b"GB", ["GB"]])
def test_non_strings_always_raise(code: object) -> None:
    with pytest.raises(InputError):
        grid.intensity(code)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        grid.normalize_country(code)  # type: ignore[arg-type]


def test_iso_country_without_data_keeps_its_code() -> None:
    g = grid.intensity("VA")  # Holy See: ISO code, no Ember figure
    assert g.alpha2 == "VA"
    assert g.is_world_average
    assert g.flags == ("country_unknown",)
    assert grid.normalize_country("VAT") == "VA"


def test_kosovo_uses_the_user_assigned_codes() -> None:
    assert grid.intensity("XK").g_co2e_per_kwh == grid.intensity("XKX").g_co2e_per_kwh == 958.72


def test_zero_intensity_is_a_real_value() -> None:
    g = grid.intensity("CF")  # co2.js ships 0 for the Central African Republic
    assert g.g_co2e_per_kwh == 0.0
    assert not g.is_world_average


def test_table_agrees_with_the_values_co2js_resolved() -> None:
    """Every country the fixtures passed to co2.js resolved to the value in our table."""
    checked = 0
    for name in ("co2js_swd_v4.json", "co2js_swd_v3.json"):
        for case in json.loads((FIXTURES / name).read_text(encoding="utf-8"))["cases"]:
            for segment, spec in case["variables"]["gridIntensity"].items():
                if "country" in spec and spec["value"] is not None:
                    assert grid.co2js_key_intensity(spec["country"]) == spec["value"], segment
                    checked += 1
    assert checked > 100


def test_countries_lists_every_iso_country() -> None:
    table = grid.countries()
    assert table["FR"].g_co2e_per_kwh == 44.18
    assert table["VA"].is_world_average
    assert "ZZ" not in table


def test_lookups_are_cached_objects() -> None:
    assert grid.intensity("DE") is grid.intensity("DEU")


def test_code_helpers() -> None:
    assert grid.alpha3_to_alpha2("NOR") == "NO"
    assert grid.alpha3_to_alpha2("QQQ") is None
    assert grid.alpha2_to_co2js_key("NO") == "NOR"
    assert grid.alpha2_to_co2js_key("VA") is None  # ISO country without a co2.js figure
    assert grid.co2js_key_intensity("latin america and caribbean") == 254.21


def test_public_names() -> None:
    assert grid.__all__ == [
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
    for name in grid.__all__:
        assert hasattr(grid, name)


@pytest.mark.skipif(not HAVE_CO2JS, reason="needs node and `npm ci` in scripts/co2js")
def test_committed_tables_are_what_the_script_writes(tmp_path: Path) -> None:
    subprocess.run(
        ["node", "export_grid_data.mjs"],
        cwd=CO2JS_DIR,
        env={**os.environ, "OUT_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = resources.files("otel_downstream.exporters.data")
    for name in ("grid_intensity.csv", "countries.csv"):
        assert (tmp_path / name).read_text(encoding="utf-8") == data.joinpath(name).read_text(
            encoding="utf-8"
        ), name
