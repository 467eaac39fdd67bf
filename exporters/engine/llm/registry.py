"""Which model, provider and electricity mix an LLM call ran on, from the package data files.

The data come from EcoLogits (see ``scripts/ecologits/sync_registry.py``), plus our hand-written
``llm_methods.json`` for what EcoLogits does not cover (size classes for unknown models, the
defaults for unknown providers) and ``llm_model_cards.json``, cited cards of models EcoLogits
0.11.3 does not list (older generations, open-weight families). Everything loads once, lazily,
into frozen records (``records.py``); lookups are dictionary hits, and a model name is resolved
by the identity rules (``identity.py``: a name is priced as its own generation), cached per name,
so the exporter can resolve a model per span.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Final

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.exporters.engine.data_files import read_csv, read_json
from otel_downstream.exporters.engine.llm.identity import index_names, resolve, slug
from otel_downstream.exporters.engine.llm.records import (
    Bounds,
    Mix,
    ModelSpec,
    ProviderSpec,
    Registry,
    SizeClass,
    bounds,
)
from otel_downstream.exporters.footprint import InputError

__all__ = [
    "Bounds",
    "Mix",
    "ModelSpec",
    "ProviderSpec",
    "Registry",
    "known_models",
    "mix",
    "provider_spec",
    "registry",
    "resolve_model",
]

_MAX_CACHED_NAMES: Final = 4096


def _card_flags(name: str, warnings: list[str]) -> tuple[str, ...]:
    return (
        "model_card_supplement",
        f"model_card_{slug(name)}",
        *(w.replace("-", "_") for w in warnings),
    )


def _load_cards(by_name: dict[str, ModelSpec]) -> dict[tuple[str, str], ModelSpec]:
    cards: dict[tuple[str, str], ModelSpec] = {}
    for row in read_json("llm_model_cards.json")["cards"]:
        spec = ModelSpec(
            provider=row["provider"],
            name=row["name"],
            total_params_billion=bounds(row["total_params_billion"]),
            active_params_billion=bounds(row["active_params_billion"]),
            tps_tokens_per_s=None,
            ttft_s=None,
            flags=_card_flags(row["name"], row["warnings"]),
        )
        for name in (row["name"], *row["aliases"]):
            cards[(spec.provider, name)] = spec
            by_name.setdefault(name, spec)
    return cards


def _size_bounds(raw: Any) -> Bounds | str:
    """A size class's parameters: Bounds, or ``"{n}"`` for the pattern's group n."""
    return raw if isinstance(raw, str) else bounds(raw)


@cache
def registry() -> Registry:
    """Load and index the data files (once per process)."""
    models_raw = read_json("llm_models.json")
    prov_raw = read_json("llm_providers.json")
    methods = read_json("llm_methods.json")
    models: dict[tuple[str, str], ModelSpec] = {}
    by_name: dict[str, ModelSpec] = {}
    for row in models_raw["models"]:
        for name in (row["name"], *row["aliases"]):
            spec = ModelSpec(
                provider=row["provider"],
                name=name,
                total_params_billion=bounds(row["total_params_billion"]),
                active_params_billion=bounds(row["active_params_billion"]),
                tps_tokens_per_s=row["tps_tokens_per_s"],
                ttft_s=row["ttft_s"],
                flags=tuple(w.replace("-", "_") for w in row["warnings"]),
            )
            models[(spec.provider, name)] = spec
            by_name.setdefault(name, spec)
    providers: dict[str, ProviderSpec] = {}
    provider_names: dict[str, str] = {}
    for key, p in prov_raw["providers"].items():
        providers[key] = ProviderSpec(key, p["zone"], bounds(p["pue"]), bounds(p["wue_l_per_kwh"]))
        for alias in p["names"]:
            provider_names[alias] = key
    unknown = methods["unknown_provider"]
    like = providers[unknown["like_provider"]]
    mixes = {
        row["zone"]: Mix(
            row["zone"],
            float(row["g_co2e_per_kwh"]),
            float(row["water_l_per_kwh"]),
            row["water_is_world_default"] == "true",
        )
        for row in read_csv("llm_electricity_mixes.csv")
    }
    classes = tuple(
        SizeClass(
            c["name"],
            re.compile(c["pattern"]),
            _size_bounds(c["total_params_billion"]),
            _size_bounds(c["active_params_billion"]),
        )
        for c in methods["size_classes"]["classes"]
    )
    cards = _load_cards(by_name)
    lower, dated, families = index_names(models, cards)
    return Registry(
        ecologits_version=models_raw["ecologits_version"],
        models=models,
        by_name=by_name,
        providers=providers,
        provider_names=provider_names,
        unknown_provider=ProviderSpec("unknown", unknown["zone"], like.pue, like.wue_l_per_kwh),
        mixes=mixes,
        hardware={k: float(v) for k, v in prov_raw["hardware"].items()},
        methods=methods,
        size_classes=classes,
        cards=cards,
        lower=lower,
        dated=dated,
        families=families,
    )


def provider_spec(provider: str) -> tuple[ProviderSpec, tuple[str, ...]]:
    """The data-centre figures for a provider name as semconv or EcoLogits spell it."""
    reg = registry()
    key = reg.provider_names.get(provider.strip().lower())
    if key is None:
        return reg.unknown_provider, ("provider_unknown",)
    return reg.providers[key], ()


def mix(zone: str) -> tuple[Mix, tuple[str, ...]]:
    """The electricity mix of a zone, with flags; InputError if the zone is not a country code.

    Takes ISO 3166-1 alpha-3 (EcoLogits' zones, and ``WOR`` for the world) or alpha-2 (what span
    attributes and the rest of the project use). A real country EcoLogits has no mix for gets
    the world mix and the flag ``zone_world_default``.
    """
    reg = registry()
    code = zone.strip().upper() if isinstance(zone, str) else ""
    code = _alpha3().get(code, code)
    found = reg.mixes.get(code)
    if found is not None:
        return found, ()
    if code == UNKNOWN_COUNTRY or code in _alpha3().values():
        return reg.mixes["WOR"], ("zone_world_default",)
    raise InputError(
        "zone", zone, "an ISO 3166-1 country code (alpha-3 such as FRA, or alpha-2) or WOR"
    )


@cache
def _alpha3() -> dict[str, str]:
    """ISO alpha-2 -> alpha-3 from the project's countries table (empty if it is absent)."""
    try:
        rows = read_csv("countries.csv")
        return {r["alpha2"].upper(): r["alpha3"].upper() for r in rows if r.get("alpha2")}
    except (OSError, KeyError):
        return {}


def known_models(provider: str) -> list[str]:
    """Model names (aliases included) registered for a provider; [] for an unknown provider."""
    reg = registry()
    key = reg.provider_names.get(provider.strip().lower())
    return sorted(name for (p, name) in reg.models if p == key)


_resolved: dict[tuple[str, str], ModelSpec] = {}


def resolve_model(provider_key: str, model: str) -> ModelSpec:
    """The card a model name is priced as (``identity.resolve``), cached per name."""
    key = (provider_key, model)
    found = _resolved.get(key)
    if found is None:
        found = resolve(registry(), provider_key, model)
        if len(_resolved) < _MAX_CACHED_NAMES:
            _resolved[key] = found
    return found
