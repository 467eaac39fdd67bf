"""Customer devices: the electricity a customer's phone, computer or TV uses while using the service.

Two methods, because the exporter does not always know how long a customer looked at a response:

* ``swd-v4`` (default): the Sustainable Web Design v4 device segment, energy per byte transferred
  (the network module owns the per-GB constants, so figures match co2.js exactly).
* ``time`` (``time-v1``): watts in active use of the device class × engagement seconds, with a
  low/high range from the power table. ``desktop`` is a laptop / desktop-with-monitor mix and
  ``unknown`` a page-view-weighted mix of classes, both from ``data/device_mix.csv``.

Bots have no customer device: 0 under both methods. Embodied (manufacturing) carbon is optional: SWD
v4's embodied device kWh/GB at the global intensity, or for ``time`` the device's embodied kgCO₂e
spread over its lifetime use hours (``data/device_embodied.csv``). Embodied adds CO₂e only: its
energy and water were spent where the device was made, not at run time.

A rate (:class:`DeviceRate`) is the footprint of one byte or one second for one device class in one
country; the engine caches rates so a span costs a few multiplications.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Final, Literal

from otel_downstream.agent.attributes import DEVICE_CLASSES
from otel_downstream.exporters.engine.data_files import read_csv
from otel_downstream.exporters.footprint import (
    JOULES_PER_KWH,
    ZERO,
    Footprint,
    Impact,
    InputError,
)

METHODS: Final = ("swd-v4", "time")
METHOD_VERSIONS: Final = {"swd-v4": "swd-v4", "time": "time-v1"}
DATA_VERSION: Final = "device-v1"
_NO_PARTS: Final[Mapping[str, Footprint]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DevicePower:
    """Active-use wall power of a device class (after mixes are resolved), watts."""

    device_class: str
    w: float
    w_low: float
    w_high: float


@dataclass(frozen=True, slots=True)
class _Tables:
    power: Mapping[str, DevicePower]
    unknown_mix: Mapping[str, float]
    default_laptop_share: float
    embodied_g_per_use_s: Mapping[str, float]


@cache
def _load() -> _Tables:
    power = {
        r["device"]: DevicePower(
            r["device"], float(r["w_active"]), float(r["w_low"]), float(r["w_high"])
        )
        for r in read_csv("device_power.csv")
    }
    mixes: dict[str, dict[str, float]] = {}
    for r in read_csv("device_mix.csv"):
        mixes.setdefault(r["mix"], {})[r["device"]] = float(r["share"])
    embodied = {}
    for r in read_csv("device_embodied.csv"):
        use_s = float(r["lifetime_years"]) * 365.0 * float(r["use_hours_per_day"]) * 3600
        embodied[r["device"]] = float(r["embodied_kg_co2e"]) * 1000.0 / use_s
    for name, mix in mixes.items():
        if not math.isclose(sum(mix.values()), 1.0, abs_tol=1e-9):
            raise RuntimeError(f"device_mix.csv: shares of {name!r} do not sum to 1")
    return _Tables(
        power=power,
        unknown_mix=mixes["unknown"],
        default_laptop_share=mixes["desktop"]["laptop"],
        embodied_g_per_use_s=embodied,
    )


def default_laptop_share() -> float:
    """Share of the ``desktop`` class that is a laptop when not configured (IDC 2023 shipments)."""
    return _load().default_laptop_share


def check_device_class(device_class: object) -> str:
    """The class itself, or InputError naming the field when it is not one of DEVICE_CLASSES."""
    if not isinstance(device_class, str) or device_class not in DEVICE_CLASSES:
        raise InputError("device_class", device_class, "one of " + ", ".join(DEVICE_CLASSES))
    return device_class


def check_laptop_share(share: object) -> float:
    if (
        isinstance(share, bool)
        or not isinstance(share, (int, float))
        or not 0.0 <= float(share) <= 1.0
    ):
        raise InputError("desktop_laptop_share", share, "a number from 0 to 1")
    return float(share)


def _mix(device_class: str, laptop_share: float) -> dict[str, float]:
    """Leaf device -> weight for a class (the class itself unless it is a mix)."""
    if device_class == "desktop":
        return {"laptop": laptop_share, "desktop_with_monitor": 1.0 - laptop_share}
    if device_class == "unknown":
        weights: dict[str, float] = {}
        for part, share in _load().unknown_mix.items():
            for leaf, w in _mix(part, laptop_share).items():
                weights[leaf] = weights.get(leaf, 0.0) + share * w
        return weights
    return {device_class: 1.0}


def power(device_class: str, *, laptop_share: float | None = None) -> DevicePower:
    """Active-use power of ``device_class`` with the desktop and unknown mixes resolved."""
    check_device_class(device_class)
    tables = _load()
    share = (
        tables.default_laptop_share if laptop_share is None else check_laptop_share(laptop_share)
    )
    w = lo = hi = 0.0
    for leaf, weight in _mix(device_class, share).items():
        p = tables.power[leaf]
        w += weight * p.w
        lo += weight * p.w_low
        hi += weight * p.w_high
    return DevicePower(device_class, w, lo, hi)


def embodied_g_per_second(device_class: str, *, laptop_share: float | None = None) -> float:
    """Embodied gCO₂e per second of use: manufacturing spread over lifetime use hours."""
    check_device_class(device_class)
    tables = _load()
    share = (
        tables.default_laptop_share if laptop_share is None else check_laptop_share(laptop_share)
    )
    return sum(
        weight * tables.embodied_g_per_use_s[leaf]
        for leaf, weight in _mix(device_class, share).items()
    )


@dataclass(frozen=True, slots=True)
class DeviceRate:
    """Footprint of one unit (a byte or a second) of device use; scale it with :meth:`footprint`."""

    method: str
    unit: Literal["byte", "second"]
    total: Impact
    low: Impact | None
    high: Impact | None
    embodied: Impact
    flags: tuple[str, ...]

    def footprint(self, quantity: float, flags: tuple[str, ...] = ()) -> Footprint:
        """The device footprint of ``quantity`` bytes or seconds (already validated, >= 0)."""
        low, high, e = self.low, self.high, self.embodied
        return Footprint(
            segment="customer_device",
            method=self.method,
            total=self.total.scaled(quantity),
            low=None if low is None else low.scaled(quantity),
            high=None if high is None else high.scaled(quantity),
            embodied=ZERO if e is ZERO else e.scaled(quantity),
            parts=_NO_PARTS,
            flags=self.flags + flags if flags else self.flags,
            data_version=DATA_VERSION,
        )


def _impact(kwh: float, g_per_kwh: float, l_per_kwh: float) -> Impact:
    return Impact(kwh * JOULES_PER_KWH, kwh * g_per_kwh, kwh * l_per_kwh)


def per_byte_rate(
    *,
    device_class: str,
    operational_kwh_per_byte: float,
    embodied_kwh_per_byte: float,
    embodied_g_per_kwh: float,
    grid_g_per_kwh: float,
    water_l_per_kwh: float,
    include_embodied: bool,
    flags: tuple[str, ...] = (),
) -> DeviceRate:
    """SWD v4 device segment per byte (factors from ``network.per_byte_factors``): operational
    energy at the customer's grid and water; embodied (optional) adds CO₂e at the model's global
    intensity, as co2.js does, and no run-time energy or water. Bots: zero."""
    check_device_class(device_class)
    if device_class == "bot":
        return DeviceRate("swd-v4", "byte", ZERO, None, None, ZERO, (*flags, "bot"))
    operational = _impact(operational_kwh_per_byte, grid_g_per_kwh, water_l_per_kwh)
    embodied = (
        Impact(0.0, embodied_kwh_per_byte * embodied_g_per_kwh, 0.0) if include_embodied else ZERO
    )
    return DeviceRate("swd-v4", "byte", operational + embodied, None, None, embodied, flags)


def per_second_rate(
    *,
    device_class: str,
    grid_g_per_kwh: float,
    water_l_per_kwh: float,
    include_embodied: bool,
    laptop_share: float | None = None,
    flags: tuple[str, ...] = (),
) -> DeviceRate:
    """Time method per second: watts of the class (low/high from the power table) at the
    customer's grid; embodied (optional) as gCO₂e per second of lifetime use."""
    p = power(device_class, laptop_share=laptop_share)
    if device_class == "bot":
        flags = (*flags, "bot")
    kwh_per_s = 1.0 / 3600.0 / 1000.0
    embodied = (
        Impact(0.0, embodied_g_per_second(device_class, laptop_share=laptop_share), 0.0)
        if include_embodied
        else ZERO
    )
    if include_embodied and device_class == "wearable":
        flags = (*flags, "embodied_unavailable")
    return DeviceRate(
        "time-v1",
        "second",
        _impact(p.w * kwh_per_s, grid_g_per_kwh, water_l_per_kwh) + embodied,
        _impact(p.w_low * kwh_per_s, grid_g_per_kwh, water_l_per_kwh) + embodied,
        _impact(p.w_high * kwh_per_s, grid_g_per_kwh, water_l_per_kwh) + embodied,
        embodied,
        flags,
    )


def check_quantity(field: str, value: object) -> float:
    """A finite, non-negative number (bytes or seconds), else InputError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field, value, "a non-negative number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InputError(field, value, "a non-negative number")
    return number
