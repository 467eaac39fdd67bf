"""Which model, provider and electricity mix an LLM call ran on, from the package data files.

The data come from EcoLogits (see ``scripts/ecologits/sync_registry.py``), plus our hand-written
``llm_methods.json`` for what EcoLogits does not cover: size classes for unknown models and the
defaults for unknown providers. Everything loads once, lazily, into frozen records; lookups are
dictionary hits so the exporter can resolve a model per span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.exporters.engine.data_files import read_csv, read_json
from otel_downstream.exporters.footprint import InputError

_MAX_CACHED_NAMES: Final = 4096

# Version suffixes providers append to a model family name (2024-08-06, 20241022, 2411, 0125, @001).
_SUFFIXES: Final = (
    re.compile(r"-v\d+(?::\d+)?$|:\d+$"),  # AWS Bedrock ids: ...-v1:0
    re.compile(r"[-@]\d{4}-\d{2}-\d{2}$"),
    re.compile(r"[-@]\d{8}$"),
    re.compile(r"[-@]\d{3,4}$"),
    re.compile(r"-(?:preview|latest|exp)$"),
)
# Model-vendor prefixes of AWS Bedrock ids ("anthropic.claude-...", "us.meta.llama3-...").
_VENDOR_PREFIX: Final = re.compile(
    r"^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|cohere|amazon|ai21|deepseek|openai|google)\."
)


@dataclass(frozen=True, slots=True)
class Bounds:
    """A value (low == high) or EcoLogits' min/max range."""

    low: float
    high: float

    @property
    def is_range(self) -> bool:
        return self.low != self.high


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str
    total_params_billion: Bounds
    active_params_billion: Bounds
    tps_tokens_per_s: float | None
    ttft_s: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    key: str
    zone: str
    pue: Bounds
    wue_l_per_kwh: Bounds


@dataclass(frozen=True, slots=True)
class Mix:
    zone: str
    g_co2e_per_kwh: float
    water_l_per_kwh: float
    water_is_world_default: bool


@dataclass(frozen=True, slots=True)
class _SizeClass:
    name: str
    pattern: re.Pattern[str]
    total: Bounds | str
    active: Bounds | str


def _bounds(raw: Any) -> Bounds:
    if isinstance(raw, dict):
        return Bounds(float(raw["min"]), float(raw["max"]))
    return Bounds(float(raw), float(raw))


@dataclass(frozen=True, slots=True)
class Registry:
    """Everything the ai_inference methods read from data files."""

    ecologits_version: str
    models: dict[tuple[str, str], ModelSpec]
    by_name: dict[str, ModelSpec]
    providers: dict[str, ProviderSpec]
    provider_names: dict[str, str]
    unknown_provider: ProviderSpec
    mixes: dict[str, Mix]
    hardware: dict[str, float]
    methods: dict[str, Any]
    size_classes: tuple[_SizeClass, ...]


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
                total_params_billion=_bounds(row["total_params_billion"]),
                active_params_billion=_bounds(row["active_params_billion"]),
                tps_tokens_per_s=row["tps_tokens_per_s"],
                ttft_s=row["ttft_s"],
                flags=tuple(w.replace("-", "_") for w in row["warnings"]),
            )
            models[(spec.provider, name)] = spec
            by_name.setdefault(name, spec)
    providers: dict[str, ProviderSpec] = {}
    provider_names: dict[str, str] = {}
    for key, p in prov_raw["providers"].items():
        providers[key] = ProviderSpec(
            key, p["zone"], _bounds(p["pue"]), _bounds(p["wue_l_per_kwh"])
        )
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
        _SizeClass(
            c["name"],
            re.compile(c["pattern"]),
            c["total_params_billion"]
            if isinstance(c["total_params_billion"], str)
            else _bounds(c["total_params_billion"]),
            c["active_params_billion"]
            if isinstance(c["active_params_billion"], str)
            else _bounds(c["active_params_billion"]),
        )
        for c in methods["size_classes"]["classes"]
    )
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
    """Find the model: exact, then without prefix/version suffix, then any provider, then a class."""
    key = (provider_key, model)
    found = _resolved.get(key)
    if found is None:
        found = _resolve(provider_key, model)
        if len(_resolved) < _MAX_CACHED_NAMES:
            _resolved[key] = found
    return found


def _resolve(provider_key: str, model: str) -> ModelSpec:
    reg = registry()
    exact = reg.models.get((provider_key, model))
    if exact is not None:
        return exact
    name = _VENDOR_PREFIX.sub("", model.strip().lower().rsplit("/", 1)[-1])
    candidates = [name]
    stem = name
    for _ in range(3):
        for suffix in _SUFFIXES:
            stem = suffix.sub("", stem)
        candidates += [stem, f"{stem}-latest"]
    for cand in candidates:
        spec = reg.models.get((provider_key, cand)) or reg.by_name.get(cand)
        if spec is not None:
            flags = spec.flags if cand == model else (*spec.flags, "model_name_normalised")
            return ModelSpec(
                spec.provider,
                spec.name,
                spec.total_params_billion,
                spec.active_params_billion,
                spec.tps_tokens_per_s,
                spec.ttft_s,
                flags,
            )
    return _estimate(provider_key, model, name)


def _estimate(provider_key: str, model: str, name: str) -> ModelSpec:
    """Guess parameters from a size class named in the model name (flag: model_estimated)."""
    for cls in registry().size_classes:
        m = cls.pattern.search(name)
        if m is None:
            continue

        def pick(b: Bounds | str, m: re.Match[str] = m) -> Bounds:
            if isinstance(b, Bounds):
                return b
            size = float(m.group(int(b.strip("{}"))))
            return Bounds(size, size)

        total, active = pick(cls.total), pick(cls.active)
        if total.high <= 0 or active.high <= 0 or active.high > total.high:
            continue
        return ModelSpec(
            provider_key,
            model,
            total,
            active,
            None,
            None,
            ("model_estimated", f"model_size_class_{cls.name.replace('-', '_')}"),
        )
    raise AssertionError("llm_methods.json must end with a catch-all size class")
