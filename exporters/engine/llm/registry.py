"""Which model, provider and electricity mix an LLM call ran on, from the package data files.

The data come from EcoLogits (see ``scripts/ecologits/sync_registry.py``), plus our hand-written
``llm_methods.json`` for what EcoLogits does not cover (size classes for unknown models, the
defaults for unknown providers) and ``llm_model_cards.json``, cited cards of models EcoLogits
0.11.3 does not list (older generations, open-weight families). Everything loads once, lazily,
into frozen records; lookups are dictionary hits (cached per name) so the exporter can resolve a
model per span.

Identity: a name is priced as its own generation. A model EcoLogits lists is found by its exact
name first, so it prices exactly as EcoLogits; then the name lower-cased, without ``org/`` or a
Bedrock vendor prefix, without API-version and channel suffixes (``-v1:0``, ``-latest``,
``-preview``); then a dated name (``-2407``, ``-2024-08-06``, ``-20241022``, ``-08-2024``) takes
its family's newest card dated at or before it, never the undated or ``-latest`` alias (which
may be a newer generation); an undated name takes the family's ``-latest`` card; then an
open-weight spelling (``llama3.1:70b``) is matched; anything else is estimated from a size class.
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

# Suffixes that name an API version or a release channel, not a model generation: AWS Bedrock's
# "-v1:0", Ollama-style ":0", "-latest", "-preview", "-exp".
_NOT_A_GENERATION: Final = (
    re.compile(r"-v\d+(?::\d+)?$|:\d+$"),
    re.compile(r"-(?:preview|latest|exp)$"),
)
# Model-vendor prefixes of AWS Bedrock ids ("anthropic.claude-...", "us.meta.llama3-...").
_VENDOR_PREFIX: Final = re.compile(
    r"^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|cohere|amazon|ai21|deepseek|openai|google)\."
)
# A release date or version at the end of a name, most specific first. Dated forms give an order
# (year, month, day); the others (OpenAI's MMDD, Vertex's 001, Google's preview MM-DD) do not.
_YMD: Final = re.compile(r"[-@](20\d\d)-(\d\d)-(\d\d)$")  # gpt-4o-2024-08-06
_YYYYMMDD: Final = re.compile(r"[-@](20\d\d)(\d\d)(\d\d)$")  # claude-3-5-sonnet-20241022
_MM_YYYY: Final = re.compile(r"-(\d\d)-(20\d\d)$")  # command-r-08-2024
_MM_DD: Final = re.compile(r"-(\d\d)-(\d\d)$")  # gemini-2.5-pro-preview-06-05
_FOUR: Final = re.compile(r"[-@](\d\d)(\d\d)$")  # mistral-large-2407 (YYMM), gpt-4-0613 (MMDD)
_THREE: Final = re.compile(r"[-@]\d{3}$")  # gemini-1.5-pro-002
# Tokens that name a serving variant, not a model, in open-weight names ("-instruct", "-hf", ":8b").
_VARIANT_TOKENS: Final = frozenset(
    (
        "instruct",
        "chat",
        "it",
        "hf",
        "turbo",
        "versatile",
        "fp8",
        "bf16",
        "fp16",
        "awq",
        "gguf",
        "latest",
        "meta",
        "preview",
    )
)

Version = tuple[int, int, int]


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
    cards: dict[tuple[str, str], ModelSpec]
    """Supplement model cards (``llm_model_cards.json``) by (provider, name), aliases included."""
    lower: dict[str, ModelSpec]
    """Lower-cased names (and ``org/`` -less names) of registry models, then of cards."""
    dated: dict[str, tuple[tuple[Version, str], ...]]
    """Family stem -> its dated names (registry and cards), oldest first."""
    families: dict[str, ModelSpec]
    """Open-weight spelling key (:func:`_family_key`) -> model, registry first."""


def _card_flags(name: str, warnings: list[str]) -> tuple[str, ...]:
    return (
        "model_card_supplement",
        f"model_card_{_slug(name)}",
        *(w.replace("-", "_") for w in warnings),
    )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _load_cards(by_name: dict[str, ModelSpec]) -> dict[tuple[str, str], ModelSpec]:
    cards: dict[tuple[str, str], ModelSpec] = {}
    for row in read_json("llm_model_cards.json")["cards"]:
        flags = _card_flags(row["name"], row["warnings"])
        for name in (row["name"], *row["aliases"]):
            spec = ModelSpec(
                provider=row["provider"],
                name=row["name"],
                total_params_billion=_bounds(row["total_params_billion"]),
                active_params_billion=_bounds(row["active_params_billion"]),
                tps_tokens_per_s=None,
                ttft_s=None,
                flags=flags,
            )
            cards[(spec.provider, name)] = spec
            by_name.setdefault(name, spec)
    return cards


def _indexes(
    models: dict[tuple[str, str], ModelSpec], cards: dict[tuple[str, str], ModelSpec]
) -> tuple[dict[str, ModelSpec], dict[str, tuple[tuple[Version, str], ...]], dict[str, ModelSpec]]:
    lower: dict[str, ModelSpec] = {}
    dated: dict[str, list[tuple[Version, str]]] = {}
    families: dict[str, ModelSpec] = {}
    for (_, name), spec in (*models.items(), *cards.items()):  # registry first: EcoLogits wins
        low = name.lower()
        short = low.rsplit("/", 1)[-1]
        lower.setdefault(low, spec)
        lower.setdefault(short, spec)
        families.setdefault(_family_key(short), spec)
        split = _split_version(_strip_channel(short))
        if split is not None and split[1] is not None:
            dated.setdefault(split[0], []).append((split[1], short))
    return lower, {k: tuple(sorted(set(v))) for k, v in dated.items()}, families


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
    cards = _load_cards(by_name)
    lower, dated, families = _indexes(models, cards)
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
    """Find the model: exact, then without prefix/version suffix, then any provider, then a class."""
    key = (provider_key, model)
    found = _resolved.get(key)
    if found is None:
        found = _resolve(provider_key, model)
        if len(_resolved) < _MAX_CACHED_NAMES:
            _resolved[key] = found
    return found


def _resolve(provider_key: str, model: str) -> ModelSpec:
    """The model's own card; a dated name never takes a newer generation's card (module doc)."""
    reg = registry()
    exact = reg.models.get((provider_key, model))
    if exact is not None:
        return exact

    def find(cand: str) -> ModelSpec | None:
        return reg.models.get((provider_key, cand)) or reg.by_name.get(cand) or reg.lower.get(cand)

    name = _VENDOR_PREFIX.sub("", model.strip().lower().rsplit("/", 1)[-1])
    stripped = _strip_channel(name)
    for cand in (model, name, stripped):
        spec = find(cand)
        if spec is not None:
            return _found(spec, model)
    split = _split_version(stripped)
    if split is None:  # an undated name is an alias: the family's current card stands
        for cand in (f"{stripped}-latest", f"{name}-latest"):
            spec = find(cand)
            if spec is not None:
                return _found(spec, model)
    else:
        spec = _same_generation(split[0], split[1])
        if spec is not None:
            return _found(spec, model)
    spec = reg.families.get(_family_key(stripped))
    if spec is not None:
        return _found(spec, model)
    return _estimate(provider_key, model, name)


def _same_generation(stem: str, version: Version | None) -> ModelSpec | None:
    """The card of a dated name's own generation: the family's newest release at or before it.

    A name older than every dated release we know, or a family whose only card is a moving
    alias (``-latest``), gets no card here (it is then looked up as an open-weight spelling or
    estimated): the family name alone may describe a newer generation. A version that gives no
    order (OpenAI's ``0613``, Vertex's ``002``) takes the undated family name.
    """
    reg = registry()
    siblings = reg.dated.get(stem, ())
    if version is not None and siblings:
        best = None
        for when, sibling in siblings:
            if when <= version:
                best = sibling
        return None if best is None else reg.lower[best]
    return reg.by_name.get(stem) or reg.lower.get(stem)


def _found(spec: ModelSpec, model: str) -> ModelSpec:
    if spec.name == model:
        return spec
    flags = spec.flags
    card = f"model_card_{_slug(spec.name)}"
    if card not in flags:
        flags = (*flags, card)
    return ModelSpec(
        spec.provider,
        spec.name,
        spec.total_params_billion,
        spec.active_params_billion,
        spec.tps_tokens_per_s,
        spec.ttft_s,
        (*flags, "model_name_normalised"),
    )


def _strip_channel(name: str) -> str:
    """Without API-version and channel suffixes (``-v1:0``, ``-latest``, ``-preview``)."""
    stem = name
    for _ in range(3):
        for suffix in _NOT_A_GENERATION:
            stem = suffix.sub("", stem)
    return stem


def _split_version(name: str) -> tuple[str, Version | None] | None:
    """(family stem, release date or None when the version gives no order), or None if undated."""
    m = _YMD.search(name) or _YYYYMMDD.search(name)
    if m is not None:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        if 1 <= mo <= 12 and 1 <= d <= 31:
            return name[: m.start()], (y, mo, d)
    m = _MM_YYYY.search(name)
    if m is not None and 1 <= int(m[1]) <= 12:
        return name[: m.start()], (int(m[2]), int(m[1]), 0)
    m = _MM_DD.search(name)
    if m is not None:
        stem = name[: m.start()]
        return (stem[: -len("-preview")] if stem.endswith("-preview") else stem), None
    m = _FOUR.search(name)
    if m is not None:
        yy, mm = int(m[1]), int(m[2])
        if 22 <= yy <= 39 and 1 <= mm <= 12:  # Mistral's YYMM (2407 = July 2024)
            return name[: m.start()], (2000 + yy, mm, 0)
        return name[: m.start()], None  # OpenAI's MMDD (0613): no year, no order
    m = _THREE.search(name)
    if m is not None:
        return name[: m.start()], None
    return None


def _family_key(name: str) -> str:
    """How open-weight names are spelt across hosts, reduced: ``Meta-Llama-3.1-70B-Instruct``,
    ``llama3.1:70b`` and ``llama-3.1-70b-instruct-turbo`` all give ``llama-3-1-70b``."""
    s = re.sub(r"[._:\s]+", "-", name.lower().rsplit("/", 1)[-1])
    s = re.sub(r"(?<=[a-z])(?=\d)", "-", s)
    return "-".join(t for t in s.split("-") if t and t not in _VARIANT_TOKENS)


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
