"""The ``transfer`` and ``device`` cases of ``estimate``: one request's bytes, or a device session,
priced as the runtime prices them.

A transfer is one request through ``Engine.http_request`` (no country: the Ember world average,
flagged; device class ``unknown``; embodied and the data centre off unless asked), so it equals
what the middleware records (``tests/exporters/test_estimate_parity.py``); co2.js's own whole-model
answer for the same bytes is its ``co2js`` part. A transfer's bytes may be any finite amount:
co2.js-style what-ifs of a month of traffic are real questions, not one corrupt request.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any, Final

from otel_downstream.exporters.accounting.span_inputs import MAX_BODY_BYTES, MAX_SECONDS
from otel_downstream.exporters.cli import estimate_fields as F
from otel_downstream.exporters.engine import device, grid, water
from otel_downstream.exporters.engine.engine import EngineConfig
from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.footprint import InputError


def device_case(case: Mapping[str, Any]) -> dict[str, Any]:
    method = F.text(case, "method") or "swd-v4"
    if method not in device.METHODS:
        raise InputError("method", method, "one of " + ", ".join(device.METHODS))
    device_class = F.device_class(case, required=True)
    share = F.number(case, "desktop_laptop_share")
    if share is not None:
        device.check_laptop_share(share)
    seconds = F.number(case, "seconds", upper=MAX_SECONDS)
    size = F.number(case, "bytes", upper=MAX_BODY_BYTES)
    if method == "time" and seconds is None:
        raise InputError("seconds", None, "engagement seconds (required with method time)")
    if method == "swd-v4" and size is None:
        raise InputError("bytes", None, "bytes transferred (required with method swd-v4)")
    config = EngineConfig(
        device_method=method,
        include_embodied=F.flag(case, "embodied"),
        hydro_evaporation=F.flag(case, "hydro_evaporation", default=True),
        desktop_laptop_share=device.default_laptop_share() if share is None else share,
    )
    country = F.country(case)
    footprints = F.engine(config).http_request(
        request_bytes=0,
        response_bytes=size if size is not None else 0.0,
        country=country,
        device_class=device_class,
        engagement_s=seconds,
    )
    found = next(f for f in footprints if f.segment == "customer_device")
    out = found.to_json()
    if method == "time":
        p = device.power(device_class, laptop_share=config.desktop_laptop_share)
        out["power_w"] = {"value": p.w, "low": p.w_low, "high": p.w_high}
    return out


_CATEGORY_D: Final = {"data_center": False, "network": True, "device": True, "production": False}
_NOTES: Final = {
    "data_center": "the operator's own Scope 2/3, not Category D",
    "production": "SWD v3 embodied hardware of all segments (not split by the model)",
}


def _grid_intensity(value: object) -> dict[str, float | str] | None:
    """Per-segment intensities: a number (g/kWh) or a country code; CLI strings may be numbers."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(
            "grid_intensity", value, 'an object such as {"device": "FRA", "network": 350}'
        )
    out: dict[str, float | str] = {}
    for segment, raw in value.items():
        item = raw.get("country") if isinstance(raw, dict) else raw
        if isinstance(item, str):
            with contextlib.suppress(ValueError):
                item = float(item)
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise InputError(f"grid_intensity.{segment}", raw, "g CO2e/kWh or a country code")
        out[segment] = item
    return out


def _water_for(code: float | str | None, hydro: bool) -> tuple[float, tuple[str, ...]]:
    """Water intensity where a segment's energy is used: the country given for its grid, else world."""
    if isinstance(code, str):
        alpha2 = grid.normalize_country(code)
        found = water.intensity(
            alpha2 if alpha2 != grid.UNKNOWN_COUNTRY else None, hydro_evaporation=hydro
        )
        if not found.is_world_average:
            return found.l_per_kwh, ()
    return water.intensity(None, hydro_evaporation=hydro).l_per_kwh, ("water_world_average",)


def transfer_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """What the middleware records for one request of ``bytes`` body bytes (request + response),
    with the same defaults; the whole co2.js model for the same bytes under ``co2js``."""
    size = F.number(case, "bytes", required=True) or 0.0
    method = F.text(case, "method") or network.DEFAULT_METHOD
    if method not in network.METHODS:
        raise InputError("method", method, "one of " + ", ".join(network.METHODS))
    device_class = F.device_class(case)
    country = F.country(case)
    green = F.flag(case, "green")
    hydro = F.flag(case, "hydro_evaporation", default=True)
    config = EngineConfig(
        network_method=method,
        green_hosting=green,
        include_embodied=F.flag(case, "embodied"),
        include_datacenter=F.flag(case, "datacenter"),
        hydro_evaporation=hydro,
    )
    footprints = F.engine(config).http_request(
        request_bytes=0.0, response_bytes=size, country=country, device_class=device_class
    )
    flags: list[str] = []
    for fp in footprints:
        flags += [flag for flag in fp.flags if flag not in flags]
    out: dict[str, Any] = {
        "method": method,
        "bytes": size,
        "geo_country_iso_code": grid.normalize_country(country),
        "device_class": device_class,
        "energy_j": math.fsum(fp.total.energy_j for fp in footprints),
        "co2e_g": math.fsum(fp.total.co2e_g for fp in footprints),
        "water_l": math.fsum(fp.total.water_l for fp in footprints),
        "operational_co2e_g": math.fsum(fp.operational.co2e_g for fp in footprints),
        "embodied_co2e_g": math.fsum(fp.embodied.co2e_g for fp in footprints),
    }
    if flags:
        out["flags"] = flags
    out["segments"] = {fp.segment: fp.to_json() for fp in footprints}
    out["co2js"] = _co2js_model(case, size, method, green=green, hydro=hydro)
    return out


def _co2js_model(
    case: Mapping[str, Any], size: float, method: str, *, green: bool, hydro: bool
) -> dict[str, Any]:
    """The whole network model for ``size`` bytes as co2.js reports it: every segment (data
    centre included), embodied always in, the model's own global intensity where no
    ``grid_intensity`` is given (494 g/kWh for SWD v4), per byte or per visit."""
    intensities = _grid_intensity(case.get("grid_intensity"))
    result = network.transfer(
        size,
        method=method,
        per_visit=F.flag(case, "per_visit"),
        green=green,
        green_hosting_factor=F.number(case, "green_hosting_factor"),
        grid_intensity=intensities,
        first_visit=F.number(case, "first_visit"),
        return_visit=F.number(case, "return_visit"),
        reload_ratio=F.number(case, "reload_ratio"),
    )
    out = result.to_json()
    given = intensities or {}
    places = {
        "data_center": given.get("dataCenter", given.get("data_center")),
        "network": given.get("network"),
        "device": given.get("device"),
    }
    g_by_segment = dict(
        zip(("data_center", "network", "device"), result.g_co2e_per_kwh, strict=True)
    )
    water_total = 0.0
    category_d = {"energy_j": 0.0, "co2e_g": 0.0, "water_l": 0.0}
    for name, seg in result.segments.items():
        l_per_kwh, flags = _water_for(places.get(name), hydro=hydro)
        water_l = seg.operational_energy_kwh * l_per_kwh
        water_total += water_l
        part = out["segments"][name]
        part["water_l"] = water_l
        part["category_d"] = _CATEGORY_D.get(name, False)
        if name in g_by_segment:
            part["g_co2e_per_kwh"] = g_by_segment[name]
        if seg.operational_energy_kwh:
            part["l_per_kwh"] = l_per_kwh
        if flags and seg.operational_energy_kwh:
            part["flags"] = list(flags)
        if name in _NOTES:
            part["note"] = _NOTES[name]
        if part["category_d"]:
            category_d["energy_j"] += seg.energy_j
            category_d["co2e_g"] += seg.co2e_g
            category_d["water_l"] += water_l
    out["water_l"] = water_total
    out["category_d"] = category_d
    out["note"] = CO2JS_NOTE
    out["output"] = result.co2js
    return out


CO2JS_NOTE: Final = (
    "the whole model as co2.js reports it, for comparison with co2.js-based tools: data centre "
    "included, embodied always in, and the model's own global grid intensity where no "
    "grid_intensity is given; the figures above are what the middleware records"
)
