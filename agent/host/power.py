"""Host power model: idle/max watts per profile × utilisation, plus memory, storage and GPUs.

This is the linear model Cloud Carbon Footprint and Teads use (``P = idle + u × (max - idle)``).
Profiles and component coefficients are package data (``exporters/data/host_profiles.csv`` and
``host_components.csv``) read at construction; any field can be overridden per deployment. The
``auto`` profile sizes the model from this host (threads, memory, disk) with the per-vCPU
coefficients, so it needs no configuration at all.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_DATA_PACKAGE = "otel_downstream.exporters.data"
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class HostProfile:
    """Power characteristics of one host; watts unless named otherwise."""

    name: str
    cpu_idle_w: float
    cpu_max_w: float
    memory_gb: float = 0.0
    ssd_tb: float = 0.0
    hdd_tb: float = 0.0
    gpu_count: int = 0
    gpu_idle_w: float = 0.0
    gpu_max_w: float = 0.0
    embodied_kg_co2e: float | None = None
    lifetime_years: float = 4.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "name" or value is None:
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"host profile {self.name!r}: {field.name}={value!r} must be >= 0")
        if self.cpu_max_w < self.cpu_idle_w or self.gpu_max_w < self.gpu_idle_w:
            raise ValueError(f"host profile {self.name!r}: max watts below idle watts")
        if self.lifetime_years <= 0:
            raise ValueError(f"host profile {self.name!r}: lifetime_years must be > 0")


@dataclass(frozen=True, slots=True)
class ComponentCoefficients:
    memory_w_per_gb: float
    ssd_w_per_tb: float
    hdd_w_per_tb: float
    cpu_min_w_per_vcpu: float
    cpu_max_w_per_vcpu: float


@cache
def component_coefficients() -> ComponentCoefficients:
    rows = _read_csv("host_components.csv")
    watts = {row["component"]: float(row["watts"]) for row in rows}
    return ComponentCoefficients(
        memory_w_per_gb=watts["memory"],
        ssd_w_per_tb=watts["ssd"],
        hdd_w_per_tb=watts["hdd"],
        cpu_min_w_per_vcpu=watts["cpu_min"],
        cpu_max_w_per_vcpu=watts["cpu_max"],
    )


@cache
def builtin_profiles() -> dict[str, HostProfile]:
    profiles: dict[str, HostProfile] = {}
    for row in _read_csv("host_profiles.csv"):
        embodied = row["embodied_kg_co2e"].strip()
        profiles[row["profile"]] = HostProfile(
            name=row["profile"],
            cpu_idle_w=float(row["cpu_idle_w"]),
            cpu_max_w=float(row["cpu_max_w"]),
            memory_gb=float(row["memory_gb"]),
            ssd_tb=float(row["ssd_tb"]),
            hdd_tb=float(row["hdd_tb"]),
            gpu_count=int(row["gpu_count"]),
            gpu_idle_w=float(row["gpu_idle_w"]),
            gpu_max_w=float(row["gpu_max_w"]),
            embodied_kg_co2e=float(embodied) if embodied else None,
            lifetime_years=float(row["lifetime_years"]),
        )
    return profiles


def auto_profile(vcpus: int, memory_gb: float, disk_tb: float) -> HostProfile:
    """A profile sized from this host's threads, memory and disk, with CCF's per-vCPU watts."""
    c = component_coefficients()
    return HostProfile(
        name=AUTO,
        cpu_idle_w=vcpus * c.cpu_min_w_per_vcpu,
        cpu_max_w=vcpus * c.cpu_max_w_per_vcpu,
        memory_gb=memory_gb,
        ssd_tb=disk_tb,
    )


def resolve_profile(name: str, overrides: dict[str, Any] | None = None) -> HostProfile:
    """The named profile (``auto`` sized from this host) with per-deployment overrides applied.

    Raises ``ValueError`` naming the bad profile or field: a misconfiguration, caught at construction.
    """
    if name == AUTO:
        import psutil

        disk_tb = 0.0
        with contextlib.suppress(OSError):
            disk_tb = psutil.disk_usage("/").total / 1e12
        profile = auto_profile(
            psutil.cpu_count() or 1, psutil.virtual_memory().total / 1e9, disk_tb
        )
    else:
        known = builtin_profiles()
        if name not in known:
            raise ValueError(
                f"unknown host profile {name!r}; choose one of {[AUTO, *sorted(known)]}"
            )
        profile = known[name]
    if overrides:
        allowed = {f.name for f in dataclasses.fields(HostProfile)} - {"name"}
        unknown = set(overrides) - allowed
        if unknown:
            raise ValueError(
                f"unknown host profile field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        profile = dataclasses.replace(profile, **overrides)
    return profile


def memory_watts(profile: HostProfile) -> float:
    """Memory power, drawn whatever the load (RAPL's ``dram`` zones measure it where present)."""
    return profile.memory_gb * component_coefficients().memory_w_per_gb


def storage_watts(profile: HostProfile) -> float:
    """Storage power, drawn whatever the load; no energy counter covers it."""
    c = component_coefficients()
    return profile.ssd_tb * c.ssd_w_per_tb + profile.hdd_tb * c.hdd_w_per_tb


def static_watts(profile: HostProfile) -> float:
    """Memory and storage power: drawn whatever the load."""
    return memory_watts(profile) + storage_watts(profile)


def cpu_watts(profile: HostProfile, cpu_utilisation: float) -> float:
    u = min(max(cpu_utilisation, 0.0), 1.0)
    return profile.cpu_idle_w + u * (profile.cpu_max_w - profile.cpu_idle_w)


def gpu_watts(profile: HostProfile, gpu_utilisation: float) -> float:
    u = min(max(gpu_utilisation, 0.0), 1.0)
    return profile.gpu_count * (profile.gpu_idle_w + u * (profile.gpu_max_w - profile.gpu_idle_w))


def embodied_grams_per_second(profile: HostProfile) -> float:
    """Embodied carbon amortised linearly over the hardware's lifetime (0 without a figure)."""
    if profile.embodied_kg_co2e is None:
        return 0.0
    return profile.embodied_kg_co2e * 1000.0 / (profile.lifetime_years * 365.25 * 86400.0)


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files(_DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))
