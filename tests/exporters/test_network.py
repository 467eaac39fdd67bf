"""The network models against npm @tgwf/co2 0.19.0's own answers, compared with == (bit for bit).

Fixtures come from scripts/co2js/generate_fixtures.mjs (run the real package; see its header).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.engine.network.constants import constants
from otel_downstream.exporters.engine.ratings import rate
from otel_downstream.exporters.footprint import InputError

FIXTURES = Path(__file__).parent / "fixtures"
CO2JS_DIR = Path(__file__).resolve().parents[2] / "scripts" / "co2js"
HAVE_CO2JS = shutil.which("node") is not None and (CO2JS_DIR / "node_modules/@tgwf/co2").is_dir()
SEGMENT_VARIABLES = ("dataCenter", "network", "device")


@cache
def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def kwargs(case: dict[str, Any]) -> dict[str, Any]:
    """co2.js call options -> transfer() keyword arguments."""
    options = case["options"]
    out: dict[str, Any] = {
        "method": case["method"],
        "per_visit": case["fn"] == "perVisit",
        "green": case["green"],
    }
    if "gridIntensity" in options:
        out["grid_intensity"] = {
            segment: spec["country"] if isinstance(spec, dict) else spec
            for segment, spec in options["gridIntensity"].items()
        }
    renames = {
        "greenHostingFactor": "green_hosting_factor",
        "firstVisitPercentage": "first_visit",
        "returnVisitPercentage": "return_visit",
        "dataReloadRatio": "reload_ratio",
    }
    for key, name in renames.items():
        if key in options:
            out[name] = options[key]
    return out


def mismatches(case: dict[str, Any]) -> list[str]:
    result = network.transfer(case["bytes"], **kwargs(case))
    expected = case["co2"]
    problems = []
    if isinstance(expected, dict):
        got = result.co2js
        if got != expected:
            diff = {k: (got.get(k), expected.get(k)) for k in expected.keys() | got.keys()}
            diff = {k: v for k, v in diff.items() if v[0] != v[1]}
            problems.append(f"segments differ: {diff}")
    elif result.co2e_g != expected:
        problems.append(f"total {result.co2e_g!r} != {expected!r}")
    if case["plain"] is not None and result.co2e_g != case["plain"]:
        problems.append(f"plain total {result.co2e_g!r} != {case['plain']!r}")
    variables = case["variables"]
    default = result.g_co2e_per_kwh if case["method"] == "onebyte" else None
    for n, segment in enumerate(SEGMENT_VARIABLES):
        if default is not None or (segment == "dataCenter" and case["green"]):
            continue  # co2.js reports the option, not the fixed intensity it then applies
        value = variables["gridIntensity"][segment]["value"]
        if value is None:  # co2.js: unknown country -> NaN -> the model's global intensity
            value = 494 if case["method"] == "swd-v4" else 472.94
            if "country_unknown" not in result.flags:
                problems.append("unknown country not flagged")
        if result.g_co2e_per_kwh[n] != value:
            problems.append(f"{segment} intensity {result.g_co2e_per_kwh[n]} != {value}")
    if (
        case["method"] == "swd-v4"
        and result.green_hosting_factor != variables["greenHostingFactor"]
    ):
        problems.append(f"green hosting factor {result.green_hosting_factor}")
    if case["fn"] == "perVisit":
        ratios = (
            variables["firstVisitPercentage"],
            variables["returnVisitPercentage"],
            variables["dataReloadRatio"],
        )
        if result.visit_ratios != ratios:
            problems.append(f"visit ratios {result.visit_ratios} != {ratios}")
    return problems


@pytest.mark.parametrize(
    ("name", "minimum"),
    [("co2js_swd_v4.json", 1300), ("co2js_swd_v3.json", 1000), ("co2js_onebyte.json", 28)],
)
def test_every_co2js_case_is_bit_identical(name: str, minimum: int) -> None:
    doc = fixture(name)
    assert doc["co2js_version"] == "0.19.0"
    cases = doc["cases"]
    assert len(cases) >= minimum
    failures = []
    for case in cases:
        problems = mismatches(case)
        if problems:
            failures.append((case["fn"], case["bytes"], case["green"], case["options"], problems))
    assert not failures, f"{len(failures)} of {len(cases)} cases differ, e.g. {failures[:3]}"


def test_fixtures_cover_what_the_brief_asks_for() -> None:
    cases = fixture("co2js_swd_v4.json")["cases"]
    byte_counts = {c["bytes"] for c in cases}
    assert {0, 1, 1000, 1e6, 2.2e6, 1e9, 1e12, 1234.5678} <= byte_counts
    countries = {
        (segment, spec["country"])
        for c in cases
        for segment, spec in c["options"].get("gridIntensity", {}).items()
        if isinstance(spec, dict)
    }
    for segment in SEGMENT_VARIABLES:
        assert (segment, "GBR") in countries
    assert {c["options"].get("greenHostingFactor") for c in cases} >= {0, 0.5, 1}
    assert {c["fn"] for c in cases} == {"perByte", "perVisit"}
    ratings = {c["co2"]["rating"] for c in cases if isinstance(c["co2"], dict)}
    assert ratings >= {"A+", "C", "F"}


def test_rating_thresholds_match_co2js() -> None:
    c = constants()
    bounds = {3: c.swd_v3.rating_bounds, 4: c.swd_v4.rating_bounds}
    cases = fixture("co2js_ratings.json")["cases"]
    assert len(cases) >= 50
    for case in cases:
        assert rate(case["co2e"], bounds[case["version"]]) == case["rating"], case


def test_segments_sum_to_the_total() -> None:
    for method, per_visit in [
        ("swd-v4", False),
        ("swd-v4", True),
        ("swd-v3", True),
        ("onebyte", False),
    ]:
        for green in (False, True):
            r = network.transfer(2.2e6, method=method, per_visit=per_visit, green=green)
            total = sum(s.co2e_g for s in r.segments.values())
            assert total == pytest.approx(r.co2e_g, rel=1e-12), (method, per_visit, green)
            assert r.energy_j > 0


def test_per_byte_segments_sum_exactly_for_v4() -> None:
    r = network.transfer(123456.0, green_hosting_factor=0.3, grid_intensity={"device": "FRA"})
    s = r.segments
    assert s["data_center"].co2e_g + s["network"].co2e_g + s["device"].co2e_g == r.co2e_g


@pytest.mark.parametrize(
    ("method", "per_visit"),
    [("swd-v4", False), ("swd-v4", True), ("swd-v3", False), ("swd-v3", True), ("onebyte", False)],
)
@pytest.mark.parametrize("green", [False, True])
def test_factor_path_agrees_with_transfer(method: str, per_visit: bool, green: bool) -> None:
    visit = {"first_visit": 0.6, "return_visit": 0.4, "reload_ratio": 0.1} if per_visit else {}
    ghf = {"green_hosting_factor": 0.4} if method == "swd-v4" and not green else {}
    factors = network.per_byte_factors(method, green=green, per_visit=per_visit, **visit, **ghf)
    grids = {"data_center": 300.0, "network": 215.79, "device": 44.18}
    co2js_grid = {"dataCenter": 300.0, "network": "GBR", "device": "FRA"}
    if method == "onebyte":
        grids, co2js_grid = {}, None
    for size in (0.5, 1.0, 999.0, 1e6, 2.2e6, 7.5e13):
        expected = network.transfer(
            size,
            method=method,
            per_visit=per_visit,
            green=green,
            grid_intensity=co2js_grid,
            **visit,
            **ghf,
        )
        got = factors.co2e_g(size, grids)
        assert got == pytest.approx(expected.co2e_g, rel=1e-12, abs=0.0), size
        energy = sum(s.operational_energy_kwh for s in expected.segments.values())
        assert factors.operational_kwh(size) == pytest.approx(energy, rel=1e-12, abs=0.0)
        if size < factors.min_bytes:
            assert expected.co2e_g == got == 0.0
            continue
        for name, seg in expected.segments.items():
            f = factors.segments[name]
            assert size * f.operational_kwh_per_byte == pytest.approx(
                seg.operational_energy_kwh, rel=1e-12, abs=0.0
            )
            assert size * f.embodied_kwh_per_byte == pytest.approx(
                seg.embodied_energy_kwh, rel=1e-12, abs=0.0
            )


@settings(max_examples=300, deadline=None, database=None)
@given(
    size=st.floats(min_value=0, max_value=1e15),
    grids=st.tuples(*[st.floats(min_value=0, max_value=2000)] * 3),
    ghf=st.floats(min_value=0, max_value=1),
    visit=st.none() | st.tuples(*[st.floats(min_value=0, max_value=1)] * 3),
)
def test_factor_path_agrees_for_any_input(
    size: float,
    grids: tuple[float, float, float],
    ghf: float,
    visit: tuple[float, float, float] | None,
) -> None:
    ratios = {}
    if visit is not None:
        ratios = dict(zip(("first_visit", "return_visit", "reload_ratio"), visit, strict=True))
    r = network.transfer(
        size,
        per_visit=visit is not None,
        green_hosting_factor=ghf,
        grid_intensity=dict(zip(("dataCenter", "network", "device"), grids, strict=True)),
        **ratios,
    )
    f = network.per_byte_factors(per_visit=visit is not None, green_hosting_factor=ghf, **ratios)
    by_segment = dict(zip(("data_center", "network", "device"), grids, strict=True))
    assert f.co2e_g(size, by_segment) == pytest.approx(r.co2e_g, rel=1e-12, abs=1e-300)
    assert sum(s.co2e_g for s in r.segments.values()) == pytest.approx(
        r.co2e_g, rel=1e-12, abs=1e-300
    )


def test_flat_factor_views_for_the_engine() -> None:
    f = network.per_byte_factors("swd-v4", green_hosting_factor=0.5)
    assert f.network_kwh == 0.059 / 1e9
    assert f.device_embodied_kwh == 0.081 / 1e9
    assert f.embodied_g_co2e_per_kwh == 494
    assert f.datacenter_g_co2e_per_kwh == 247
    assert f.network_g_co2e_per_kwh is None
    one = network.per_byte_factors("onebyte")
    assert one.network_g_co2e_per_kwh == 519
    assert one.device_kwh == 0.0
    assert network.per_byte_factors("swd-v4") is network.per_byte_factors("swd-v4")


def test_result_json_is_in_base_units() -> None:
    r = network.transfer(1e9, grid_intensity={"device": "GB", "network": "gbr"})
    doc = r.to_json()
    assert (doc["method"], doc["bytes"], doc["per_visit"]) == ("swd-v4", 1e9, False)
    assert doc["rating"] == "F"
    # 0.055 + 0.059 + 0.08 kWh/GB operational = 0.194 kWh = 698,400 J
    assert doc["energy_j"] == pytest.approx(698_400.0)
    assert doc["segments"]["device"]["operational_co2e_g"] == pytest.approx(0.08 * 215.79)
    assert r.g_co2e_per_kwh == (494.0, 215.79, 215.79)
    json.dumps(doc)


def test_country_codes_alpha2_alpha3_and_regions() -> None:
    by3 = network.transfer(1e6, grid_intensity={"device": "GBR"})
    by2 = network.transfer(1e6, grid_intensity={"device": "gb"})
    assert by2.co2e_g == by3.co2e_g
    eu = network.transfer(1e6, grid_intensity={"network": "eu"})
    assert eu.g_co2e_per_kwh[1] == 213.02
    unknown = network.transfer(1e6, grid_intensity={"network": "QQ"})
    assert unknown.flags == ("country_unknown",)
    assert unknown.co2e_g == network.transfer(1e6).co2e_g
    nested = network.transfer(1e6, grid_intensity={"dataCenter": {"country": "NOR"}})  # type: ignore[dict-item]
    assert nested.g_co2e_per_kwh[0] == 30.75


def test_fractional_bytes_follow_co2js() -> None:
    assert network.transfer(0.5).co2e_g == 0.0
    assert network.transfer(0.5, method="swd-v3").co2e_g == 0.0
    # co2.js v3 perVisit has no one-byte floor.
    assert network.transfer(0.5, method="swd-v3", per_visit=True).co2e_g > 0.0


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (-1, "bytes"),
        (math.nan, "bytes"),
        (math.inf, "bytes"),
        ("100", "bytes"),
        (None, "bytes"),
        (True, "bytes"),
        (10**400, "bytes"),
    ],
    ids=["negative", "nan", "inf", "string", "none", "bool", "huge-int"],
)
def test_bad_bytes_name_field_and_value(value: object, field: str) -> None:
    with pytest.raises(InputError) as err:
        network.transfer(value)  # type: ignore[arg-type]
    assert err.value.field == field
    assert repr(value)[:20] in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "swd-v5"}, "method"),
        ({"method": None}, "method"),
        ({"green": "yes"}, "green"),
        ({"green_hosting_factor": 1.5}, "green_hosting_factor"),
        ({"green_hosting_factor": math.nan}, "green_hosting_factor"),
        ({"method": "swd-v3", "green_hosting_factor": 0.5}, "green_hosting_factor"),
        ({"grid_intensity": {"device": "12"}}, "grid_intensity['device']"),
        ({"grid_intensity": {"device": "Narnia!"}}, "grid_intensity['device']"),
        ({"grid_intensity": {"device": -5}}, "grid_intensity['device']"),
        ({"grid_intensity": {"device": math.inf}}, "grid_intensity['device']"),
        ({"grid_intensity": {"device": [1]}}, "grid_intensity['device']"),
        ({"grid_intensity": {"server": 100}}, "grid_intensity"),
        ({"grid_intensity": 100}, "grid_intensity"),
        ({"first_visit": 0.5}, "first_visit"),
        ({"per_visit": True, "reload_ratio": 2}, "reload_ratio"),
        ({"per_visit": True, "return_visit": -0.1}, "return_visit"),
        ({"method": "onebyte", "per_visit": True}, "per_visit"),
        ({"method": "onebyte", "grid_intensity": {"device": 1}}, "grid_intensity"),
    ],
)
def test_bad_options_name_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        network.transfer(1000, **kwargs)
    assert err.value.field == field


def test_factor_path_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        network.per_byte_factors("nope")
    with pytest.raises(InputError):
        network.per_byte_factors("swd-v3", green_hosting_factor=0.2)
    with pytest.raises(InputError):
        network.per_byte_factors("swd-v4", first_visit=0.2)


def test_public_names() -> None:
    assert network.__all__ == [
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
    for name in network.__all__:
        assert hasattr(network, name)


@pytest.mark.skipif(not HAVE_CO2JS, reason="needs node and `npm ci` in scripts/co2js")
def test_committed_fixtures_are_what_the_script_writes(tmp_path: Path) -> None:
    subprocess.run(
        ["node", "generate_fixtures.mjs"],
        cwd=CO2JS_DIR,
        env={**os.environ, "OUT_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    names = sorted(p.name for p in tmp_path.glob("co2js_*.json"))
    assert names == sorted(p.name for p in FIXTURES.glob("co2js_*.json"))
    for name in names:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name
