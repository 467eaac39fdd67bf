"""RAPL counters read from a fake powercap tree laid out as Linux lays it out."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_downstream.agent.host.rapl import RaplAbsent, RaplReader, RaplUnavailable

MAX_RANGE = 262_143_328_850


def make_zone(root: Path, zone: str, name: str, energy_uj: int, max_range: int = MAX_RANGE) -> Path:
    path = root / zone
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    make_zone(tmp_path, "intel-rapl:0:0", "core", 500_000)  # inside package: must not be added
    make_zone(tmp_path, "intel-rapl:0:1", "dram", 200_000)
    make_zone(tmp_path, "intel-rapl:1", "psys", 9_000_000)  # whole SoC: would double count
    return tmp_path


def set_energy(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_counts_packages_and_dram_only(powercap: Path) -> None:
    reader = RaplReader(powercap)
    assert reader.zone_names == ("intel-rapl:0", "intel-rapl:0:1")
    set_energy(powercap, "intel-rapl:0", 31_000_000)  # +30 J
    set_energy(powercap, "intel-rapl:0:0", 25_500_000)  # ignored
    set_energy(powercap, "intel-rapl:0:1", 5_200_000)  # +5 J
    set_energy(powercap, "intel-rapl:1", 99_000_000)  # ignored
    assert reader.delta_joules(1.0) == pytest.approx(35.0)


def test_wrap_around_is_added_back(powercap: Path) -> None:
    set_energy(powercap, "intel-rapl:0", MAX_RANGE - 2_000_000)
    reader = RaplReader(powercap)
    set_energy(powercap, "intel-rapl:0", 3_000_000)  # wrapped: 2 J before the top + 3 J after
    assert reader.delta_joules(1.0) == pytest.approx(5.0)


def test_implausible_jump_is_refused_then_recovers(powercap: Path) -> None:
    reader = RaplReader(powercap)
    set_energy(powercap, "intel-rapl:0", 900_000_000_000 % MAX_RANGE)  # tens of kJ in 1 s
    with pytest.raises(RaplUnavailable, match="implausible"):
        reader.delta_joules(1.0)
    set_energy(powercap, "intel-rapl:0", 900_000_000_000 % MAX_RANGE + 10_000_000)
    assert reader.delta_joules(1.0) == pytest.approx(10.0)


def test_counter_disappearing_raises_unavailable(powercap: Path) -> None:
    reader = RaplReader(powercap)
    (powercap / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.raises(RaplUnavailable, match="cannot read"):
        reader.delta_joules(1.0)


def test_no_zones_is_absent_not_a_fault(tmp_path: Path) -> None:
    with pytest.raises(RaplAbsent):
        RaplReader(tmp_path / "nowhere")
