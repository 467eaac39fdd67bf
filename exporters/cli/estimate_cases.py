"""One what-if case (a dict, as a batch line or from CLI flags) in, one JSON-ready result out.

Kept apart from the argument parsing so ``--batch`` and the flag form run exactly the same code.
Every field is checked by name; a bad value raises :class:`InputError` naming the field and value.
Quantities a span also carries (tokens, latency, engagement seconds, a device case's bytes) get
the exporter's own limits from ``span_inputs``, so a what-if never accepts what ``serve`` would
refuse. A transfer case's bytes may be any finite amount: co2.js-style what-ifs of a month of
traffic are real questions, not one corrupt request. A result that still is not finite is refused
too, naming where (JSON has no Infinity).

Every kind is priced as the runtime prices it, with the runtime's defaults: a transfer is one
request through ``Engine.http_request`` (no country: the Ember world average, flagged; device class
``unknown``; embodied and the data centre off unless asked), so it equals what the middleware
records (``tests/exporters/test_estimate_parity.py``); co2.js's own whole-model answer for the
same bytes is its ``co2js`` part. :func:`one_shape` gives energy, CO2e and water one JSON shape.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final

from otel_downstream.exporters.accounting.span_inputs import MAX_BODY_BYTES, MAX_SECONDS, MAX_TOKENS
from otel_downstream.exporters.engine import device, grid, water
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm import registry as llm_registry
from otel_downstream.exporters.engine.llm.embeddings import call_kind
from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.footprint import InputError

_FIELDS: Final[dict[str, frozenset[str]]] = {
    "transfer": frozenset(
        {
            "bytes",
            "country",
            "device_class",
            "embodied",
            "datacenter",
            "method",
            "per_visit",
            "green",
            "green_hosting_factor",
            "grid_intensity",
            "first_visit",
            "return_visit",
            "reload_ratio",
            "hydro_evaporation",
        }
    ),
    "device": frozenset(
        {
            "device_class",
            "country",
            "method",
            "bytes",
            "seconds",
            "embodied",
            "desktop_laptop_share",
            "hydro_evaporation",
        }
    ),
    "llm": frozenset(
        {
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "latency_s",
            "zone",
            "method",
            "embodied",
            "operation",
            "allow_unknown",
        }
    ),
}

QUANTITIES: Final = ("energy_j", "co2e_g", "water_l")
"""Every result gives these as ``{"value", "low", "high"}`` wherever they appear (a method without
a range has low = high = value), so a script reads every kind, single or batch, the same way."""

DEFAULT_DEVICE_CLASS: Final = "unknown"
"""What the middleware records for a request whose User-Agent it cannot classify (or lacks)."""


@lru_cache(maxsize=64)
def _engine(config: EngineConfig) -> Engine:
    return Engine(config)


def _number(
    case: Mapping[str, Any], field: str, *, required: bool = False, upper: float = math.inf
) -> float | None:
    value = case.get(field)
    if value is None:
        if required:
            raise InputError(field, None, "a number (required)")
        return None
    expected = "a finite number" if upper == math.inf else f"a number in [0, {upper:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(field, value, expected)
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise InputError(field, value, expected) from None
    if not math.isfinite(number) or (upper != math.inf and not 0 <= number <= upper):
        raise InputError(field, value, expected)
    return number


def _flag(case: Mapping[str, Any], field: str, *, default: bool = False) -> bool:
    value = case.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(field, value, "true or false")
    return value


def _text(case: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = case.get(field)
    if value is None:
        if required:
            raise InputError(field, None, "a string (required)")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, value, "a non-empty string")
    return value


def _int(case: Mapping[str, Any], field: str, *, default: int | None = None) -> int:
    value = case.get(field)
    if value is None:  # JSON null is a missing key, as for every other field
        value = default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise InputError(field, value, f"an integer in [0, {MAX_TOKENS:g}] (required)")
    return value


def _check_finite(value: object, path: str) -> None:
    """Refuse a result with an infinite or NaN figure, naming where (JSON cannot carry it)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(path, value, "a finite figure: an input is beyond what the model takes")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{path}[{i}]")


def evaluate(case: object) -> dict[str, Any]:
    """The result of one case; raises InputError for anything wrong with it."""
    if not isinstance(case, dict):
        raise InputError("case", case, 'a JSON object such as {"kind": "transfer", "bytes": 1e6}')
    kind = case.get("kind")
    if kind not in _FIELDS:
        raise InputError("kind", kind, "one of " + ", ".join(_FIELDS))
    for field in case:
        if field != "kind" and field not in _FIELDS[kind]:
            allowed = ", ".join(sorted(_FIELDS[kind]))
            raise InputError(field, case[field], f"no such field for kind {kind} ({allowed})")
    if kind == "device":
        result = _device(case)
    elif kind == "llm":
        result = _llm(case)
    else:
        result = _transfer(case)
    _check_finite(result, "result")
    shaped: dict[str, Any] = one_shape({"kind": kind, **result})
    return shaped


def one_shape(value: Any) -> Any:
    """``value`` with every energy, CO2e and water figure as ``{"value", "low", "high"}``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in QUANTITIES and isinstance(item, (int, float)) and not isinstance(item, bool):
                out[key] = {"value": item, "low": item, "high": item}
            else:
                out[key] = one_shape(item)
        return out
    if isinstance(value, list):
        return [one_shape(item) for item in value]
    return value


def _country(case: Mapping[str, Any]) -> str | None:
    """The customer's country as given, checked strictly: a typo is the user's to fix, not a
    silent world average (no country at all is the world average, as at run time)."""
    country = _text(case, "country")
    if country is not None:
        grid.normalize_country(country, strict=True)
    return country


def _device(case: Mapping[str, Any]) -> dict[str, Any]:
    method = _text(case, "method") or "swd-v4"
    if method not in device.METHODS:
        raise InputError("method", method, "one of " + ", ".join(device.METHODS))
    device_class = device.check_device_class(_text(case, "device_class", required=True))
    share = _number(case, "desktop_laptop_share")
    if share is not None:
        device.check_laptop_share(share)
    seconds = _number(case, "seconds", upper=MAX_SECONDS)
    size = _number(case, "bytes", upper=MAX_BODY_BYTES)
    if method == "time" and seconds is None:
        raise InputError("seconds", None, "engagement seconds (required with method time)")
    if method == "swd-v4" and size is None:
        raise InputError("bytes", None, "bytes transferred (required with method swd-v4)")
    config = EngineConfig(
        device_method=method,
        include_embodied=_flag(case, "embodied"),
        hydro_evaporation=_flag(case, "hydro_evaporation", default=True),
        desktop_laptop_share=device.default_laptop_share() if share is None else share,
    )
    country = _country(case)
    footprints = _engine(config).http_request(
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


def _llm(case: Mapping[str, Any]) -> dict[str, Any]:
    method = _text(case, "method") or llm.DEFAULT_METHOD
    if method not in llm.METHODS:
        raise InputError("method", method, "one of " + ", ".join(llm.METHODS))
    config = EngineConfig(
        llm_method=method,
        include_embodied=_flag(case, "embodied"),
    )
    operation = _text(case, "operation")
    provider = _text(case, "provider", required=True) or ""
    model = _text(case, "model", required=True) or ""
    allow_unknown = _flag(case, "allow_unknown")
    providers = llm_registry.registry().provider_names
    if provider.strip().lower() not in providers and not allow_unknown:
        raise InputError(
            "provider",
            provider,
            f"a provider the engine knows{_did_you_mean(provider, providers)}. At run time a span "
            "naming an unknown provider is priced with the default data centre and flagged "
            'provider_unknown (downstream_unknown_total{kind="provider"}); allow_unknown '
            "(--allow-unknown) prices it that way here",
        )
    # An embedding (by operation or by its model's name, as the engine decides) generates
    # nothing: its usage has no output tokens to give.
    embeds = call_kind(operation, model) != "generate"
    footprint = _engine(config).llm_call(
        provider=provider,
        model=model,
        input_tokens=_int(case, "input_tokens"),
        output_tokens=_int(case, "output_tokens", default=0 if embeds else None),
        latency_s=_number(case, "latency_s", upper=MAX_SECONDS),
        zone=_text(case, "zone"),
        operation=operation,
    )
    out = footprint.to_json()
    if "model_estimated" in footprint.flags:
        out["warning"] = (
            f"model {model!r} is not one the engine knows: estimated from the size class its "
            "name suggests, as at run time (flag model_estimated, "
            'downstream_unknown_total{kind="model"})' + _did_you_mean(model, _model_names())
        )
    return out


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x' or 'y'?)"`` for the closest known names, else ``""``."""
    names = {n.lower(): n for n in known}
    close = difflib.get_close_matches(name.strip().lower(), list(names), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(names[c]) for c in close) + "?)"


def _model_names() -> list[str]:
    """Every model name the engine prices from data (EcoLogits, and model cards when present)."""
    reg = llm_registry.registry()
    names = set(reg.by_name)
    names.update(name for _, name in getattr(reg, "cards", {}))
    return sorted(names)


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


def _transfer(case: Mapping[str, Any]) -> dict[str, Any]:
    """What the middleware records for one request of ``bytes`` body bytes (request + response),
    with the same defaults; the whole co2.js model for the same bytes under ``co2js``."""
    size = _number(case, "bytes", required=True) or 0.0
    method = _text(case, "method") or network.DEFAULT_METHOD
    if method not in network.METHODS:
        raise InputError("method", method, "one of " + ", ".join(network.METHODS))
    device_class = device.check_device_class(_text(case, "device_class") or DEFAULT_DEVICE_CLASS)
    country = _country(case)
    green = _flag(case, "green")
    hydro = _flag(case, "hydro_evaporation", default=True)
    config = EngineConfig(
        network_method=method,
        green_hosting=green,
        include_embodied=_flag(case, "embodied"),
        include_datacenter=_flag(case, "datacenter"),
        hydro_evaporation=hydro,
    )
    footprints = _engine(config).http_request(
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
        per_visit=_flag(case, "per_visit"),
        green=green,
        green_hosting_factor=_number(case, "green_hosting_factor"),
        grid_intensity=intensities,
        first_visit=_number(case, "first_visit"),
        return_visit=_number(case, "return_visit"),
        reload_ratio=_number(case, "reload_ratio"),
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
