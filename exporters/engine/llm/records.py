"""The frozen records the LLM registry loads and the identity rules read.

Bounds (a value or EcoLogits' min/max range), a model's card, a provider's data-centre figures,
an electricity mix, a size class for unknown models, and the loaded :class:`Registry` with its
name indexes. No behaviour beyond construction: ``registry.py`` fills them from the data files,
``identity.py`` resolves a model name against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Version = tuple[int, int, int]
"""A release date (year, month, day); 0 for a day or month the name does not give."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """A value (low == high) or EcoLogits' min/max range."""

    low: float
    high: float

    @property
    def is_range(self) -> bool:
        return self.low != self.high


def bounds(raw: Any) -> Bounds:
    """Bounds from a data file's number or ``{"min": .., "max": ..}``."""
    if isinstance(raw, dict):
        return Bounds(float(raw["min"]), float(raw["max"]))
    return Bounds(float(raw), float(raw))


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
class SizeClass:
    """Parameters for an unknown model whose name matches ``pattern`` (``"{n}"``: group n)."""

    name: str
    pattern: re.Pattern[str]
    total: Bounds | str
    active: Bounds | str


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
    size_classes: tuple[SizeClass, ...]
    cards: dict[tuple[str, str], ModelSpec]
    """Supplement model cards (``llm_model_cards.json``) by (provider, name), aliases included."""
    lower: dict[str, ModelSpec]
    """Lower-cased names (and ``org/`` -less names) of registry models, then of cards."""
    dated: dict[str, tuple[tuple[Version, str], ...]]
    """Family stem -> its dated names (registry and cards), oldest first."""
    families: dict[str, ModelSpec]
    """Open-weight spelling key (``identity.family_key``) -> model, registry first."""
