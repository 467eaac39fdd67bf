"""Customer-device model: power table, mixes, per-byte and per-second rates, embodied share."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from otel_downstream.agent.attributes import DEVICE_CLASSES
from otel_downstream.exporters.engine import device
from otel_downstream.exporters.footprint import InputError


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("otel_downstream.exporters.data").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_every_device_class_has_a_power_with_an_ordered_range() -> None:
    for cls in DEVICE_CLASSES:
        p = device.power(cls)
        assert p.w_low <= p.w <= p.w_high, cls
    assert device.power("bot").w_high == 0.0
    # the IEA/Carbon Trust ordering a TV >> laptop >> smartphone holds
    assert device.power("tv").w > device.power("desktop").w > device.power("smartphone").w


def test_data_files_cite_a_source_for_each_row() -> None:
    for name in ("device_power.csv", "device_mix.csv", "device_embodied.csv"):
        for row in _rows(name):
            assert row["source"], (name, row)


def test_desktop_is_the_configured_laptop_mix() -> None:
    laptop = {r["device"]: r for r in _rows("device_power.csv")}["laptop"]
    tower = {r["device"]: r for r in _rows("device_power.csv")}["desktop_with_monitor"]
    for share in (0.0, 0.3, 1.0):
        w = device.power("desktop", laptop_share=share).w
        assert w == pytest.approx(
            share * float(laptop["w_active"]) + (1 - share) * float(tower["w_active"])
        )
    assert device.default_laptop_share() == 0.75
    assert device.power("desktop").w == device.power("desktop", laptop_share=0.75).w


def test_unknown_is_the_page_view_weighted_mix() -> None:
    mix = {r["device"]: float(r["share"]) for r in _rows("device_mix.csv") if r["mix"] == "unknown"}
    expected = sum(share * device.power(cls).w for cls, share in mix.items())
    assert device.power("unknown").w == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["phone", "", None, 3, "Smartphone"])
def test_bad_device_class_names_the_field(bad: object) -> None:
    with pytest.raises(InputError, match="device_class="):
        device.power(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True, float("nan")])
def test_bad_laptop_share(bad: object) -> None:
    with pytest.raises(InputError, match="desktop_laptop_share="):
        device.power("desktop", laptop_share=bad)  # type: ignore[arg-type]


def test_time_rate_is_watts_times_seconds_at_the_grid() -> None:
    rate = device.per_second_rate(
        device_class="tv", grid_g_per_kwh=400.0, water_l_per_kwh=2.0, include_embodied=False
    )
    fp = rate.footprint(3600.0)  # one hour of a 100 W TV = 0.1 kWh
    assert fp.segment == "customer_device" and fp.method == "time-v1"
    assert fp.total.energy_j == pytest.approx(0.1 * 3.6e6)
    assert fp.total.co2e_g == pytest.approx(40.0)
    assert fp.total.water_l == pytest.approx(0.2)
    assert fp.low is not None and fp.high is not None
    assert fp.low.energy_j == pytest.approx(0.05 * 3.6e6) and fp.high.co2e_g == pytest.approx(80.0)
    assert fp.embodied.co2e_g == 0.0


def test_time_embodied_is_spread_over_lifetime_use() -> None:
    row = {r["device"]: r for r in _rows("device_embodied.csv")}["smartphone"]
    hours = float(row["lifetime_years"]) * 365 * float(row["use_hours_per_day"])
    per_hour = float(row["embodied_kg_co2e"]) * 1000 / hours
    rate = device.per_second_rate(
        device_class="smartphone", grid_g_per_kwh=0.0, water_l_per_kwh=0.0, include_embodied=True
    )
    fp = rate.footprint(3600.0)
    assert fp.embodied.co2e_g == pytest.approx(per_hour)
    assert fp.total.co2e_g == pytest.approx(per_hour)  # zero-carbon grid: all embodied
    assert fp.operational.co2e_g == pytest.approx(0.0)


def test_per_byte_rate_is_swd_v4_device_segment() -> None:
    # co2.js SWD v4: device 0.080 kWh/GB operational, 0.081 kWh/GB embodied at 494 g/kWh global
    rate = device.per_byte_rate(
        device_class="smartphone",
        operational_kwh_per_byte=0.080 / 1e9,
        embodied_kwh_per_byte=0.081 / 1e9,
        grid_g_per_kwh=300.0,
        water_l_per_kwh=1.5,
        include_embodied=True,
        embodied_g_per_kwh=494.0,
    )
    fp = rate.footprint(1e9)
    assert fp.method == "swd-v4" and fp.low is None
    assert fp.operational.co2e_g == pytest.approx(0.080 * 300)
    assert fp.embodied.co2e_g == pytest.approx(0.081 * 494)
    # embodied adds CO2e only: run-time energy and water are the operational part
    assert fp.total.energy_j == pytest.approx(0.080 * 3.6e6)
    assert fp.total.water_l == pytest.approx(0.080 * 1.5)


def test_bots_have_no_device_footprint_under_either_method() -> None:
    by_bytes = device.per_byte_rate(
        device_class="bot",
        operational_kwh_per_byte=0.08 / 1e9,
        embodied_kwh_per_byte=0.081 / 1e9,
        grid_g_per_kwh=300.0,
        water_l_per_kwh=1.0,
        include_embodied=True,
        embodied_g_per_kwh=494.0,
    ).footprint(1e9)
    by_time = device.per_second_rate(
        device_class="bot", grid_g_per_kwh=300.0, water_l_per_kwh=1.0, include_embodied=True
    ).footprint(60.0)
    for fp in (by_bytes, by_time):
        assert fp.total.energy_j == 0.0 and fp.total.co2e_g == 0.0 and "bot" in fp.flags


@pytest.mark.parametrize("bad", [-1, float("inf"), "10", None, True])
def test_check_quantity(bad: object) -> None:
    with pytest.raises(InputError, match="seconds="):
        device.check_quantity("seconds", bad)
    assert device.check_quantity("seconds", 2) == 2.0
