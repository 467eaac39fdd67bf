"""One what-if case (a dict, as a batch line or from CLI flags) in, one JSON-ready result out.

Kept apart from the argument parsing so ``--batch`` and the flag form run exactly the same code.
Every field is checked by name (``estimate_fields``); a bad value raises :class:`InputError`
naming the field and value. Quantities a span also carries (tokens, latency, engagement seconds, a
device case's bytes) get the exporter's own limits from ``span_inputs``, so a what-if never
accepts what ``serve`` would refuse. A result that still is not finite is refused too, naming
where (JSON has no Infinity).

Every kind is priced as the runtime prices it, with the runtime's defaults: ``transfer`` and
``device`` in ``estimate_web``, ``llm`` in ``estimate_llm``. :func:`one_shape` gives energy, CO2e
and water one JSON shape.
"""

from __future__ import annotations

import math
from typing import Any, Final

from otel_downstream.exporters.cli.estimate_llm import llm_case
from otel_downstream.exporters.cli.estimate_web import device_case, transfer_case
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
        result = device_case(case)
    elif kind == "llm":
        result = llm_case(case)
    else:
        result = transfer_case(case)
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
