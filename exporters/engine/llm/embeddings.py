"""Embedding calls (method ``embedding-encoder-v1``): one forward pass over the input tokens.

An embedding call generates nothing, so EcoLogits' per-output-token model (and our size classes,
which read "large"/"small" in a name as a generative tier) do not apply: priced that way,
``text-embedding-3-large`` came out above a gpt-4o chat. Here the IT energy of an input token is
Epoch AI's per-input-token energy of GPT-4o (the figure the prefill ratio comes from), net of its
PUE and scaled linearly by parameter count, because a forward pass costs about 2 FLOP per
parameter per token. The provider's PUE, WUE and electricity mix then apply as for any call.
Constants and sources: ``llm_methods.json`` (``embeddings``) and docs/methodology-llm.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

from otel_downstream.exporters.engine.llm.ecologits_model import Coefficients
from otel_downstream.exporters.engine.llm.registry import Bounds, Mix, ProviderSpec, registry

__all__ = [
    "EMBEDDINGS_OPERATION",
    "EMBEDDING_METHOD",
    "CallKind",
    "EmbeddingSpec",
    "call_kind",
    "embedding_bounds",
    "embedding_coefficients",
    "embedding_spec",
]

EMBEDDING_METHOD: Final = "embedding-encoder-v1"
EMBEDDINGS_OPERATION: Final = "embeddings"
"""``gen_ai.operation.name`` of an embedding call (OTel GenAI semantic conventions)."""
_EMBEDDING_OPERATIONS: Final = frozenset({EMBEDDINGS_OPERATION, "embedding"})
"""The semconv name and the singular some instrumentations write (OpenLLMetry's request type)."""

CallKind = Literal["generate", "embed", "embed_by_name"]

_SIZE_IN_NAME: Final = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
_SECONDS_PER_HOUR: Final = 3600.0
_SAME_SIZE_TAG: Final = re.compile(r"latest|(?:b?f|fp)(?:16|32)|q\d\w*|v\d[\w.]*")
"""Ollama tags that change only the number format or the release (or nothing): same size."""


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    params_billion: Bounds
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Constants:
    it_kwh_per_token_per_b: float
    gpu_s_per_it_kwh: float
    unknown: Bounds
    by_name: dict[str, float]


def call_kind(operation: object, model: object) -> CallKind:
    """``embed`` when the operation says so, ``embed_by_name`` for a model named as one, else
    ``generate``.

    Some instrumentations leave ``gen_ai.operation.name`` out or spell it otherwise, and a model
    such as ``text-embedding-3-large`` can only embed; no generative model in the registry has
    "embed" in its name, so the name is safe evidence (flag ``operation_from_model_name``). So is
    a name the embeddings method lists with its size (``bge-large-en-v1.5``, ``all-minilm``,
    ``gte-large``): those cards describe encoders that cannot generate.
    """
    if operation in _EMBEDDING_OPERATIONS:
        return "embed"
    if isinstance(model, str):
        name = _model_key(model)
        if "embed" in name or name in _constants().by_name:
            return "embed_by_name"
        base, tag = _split_tag(name)
        if tag and base in _constants().by_name:
            return "embed_by_name"
    return "generate"


def _model_key(model: str) -> str:
    """``BAAI/bge-large-en-v1.5`` -> ``bge-large-en-v1.5``: the names in the data file."""
    return model.strip().lower().rsplit("/", 1)[-1]


def _split_tag(name: str) -> tuple[str, str]:
    """``all-minilm:latest`` -> (``all-minilm``, ``latest``): Ollama's ``name:tag`` form."""
    base, _, tag = name.partition(":")
    return base, tag


@cache
def _constants() -> _Constants:
    e = registry().methods["embeddings"]
    facility_wh = float(e["reference_input_token_wh"])
    it_wh_per_b = (
        facility_wh / float(e["reference_pue"]) / float(e["reference_active_params_billion"])
    )
    it_w_per_gpu = float(e["reference_gpu_facility_power_w"]) / float(e["reference_pue"])
    size = e["unknown_size_params_billion"]
    return _Constants(
        it_kwh_per_token_per_b=it_wh_per_b / 1000.0,
        gpu_s_per_it_kwh=1000.0 * _SECONDS_PER_HOUR / it_w_per_gpu,
        unknown=Bounds(float(size["min"]), float(size["max"])),
        by_name={m["name"]: float(m["params_billion"]) for m in e["models"]},
    )


def embedding_spec(model: str, *, by_name: bool = False) -> EmbeddingSpec:
    """Parameters: a model card we cite, else a size in the name (``7b``, ``335m``), else a range.

    An Ollama tag is read for a size first (``all-minilm:33m``), then as a variant the data lists
    (``all-minilm:l6-v2`` is ``all-minilm-l6-v2``); ``latest``, number-format (``f16``, ``q4_0``)
    and release tags (``v1.5``) keep the untagged card's size; any other tag may be another size of the family.
    """
    c = _constants()
    flags: tuple[str, ...] = ("embedding_estimated",)
    if by_name:
        flags = (*flags, "operation_from_model_name")
    name = _model_key(model)
    known = c.by_name.get(name)
    if known is not None:
        return EmbeddingSpec(Bounds(known, known), flags)
    m = _SIZE_IN_NAME.search(name)
    if m is not None:
        size = float(m.group(1)) / (1000.0 if m.group(2) == "m" else 1.0)
        if size > 0:
            return EmbeddingSpec(Bounds(size, size), (*flags, "model_estimated"))
    base, tag = _split_tag(name)
    # a tag naming a variant of the card (all-minilm:l6-v2) or only its number format (:f16,
    # :q4_0, :latest) keeps the card's size; any other tag may be another size of the family
    known = c.by_name.get(f"{base}-{tag}") if tag else None
    if known is None and tag and _SAME_SIZE_TAG.fullmatch(tag):
        known = c.by_name.get(base)
    if known is not None:
        return EmbeddingSpec(Bounds(known, known), flags)
    return EmbeddingSpec(c.unknown, (*flags, "model_estimated"))


def embedding_coefficients(
    *,
    params_billion: float,
    pue: float,
    wue_l_per_kwh: float,
    mix: Mix,
    hw: dict[str, float],
) -> Coefficients:
    """One bound as :class:`Coefficients` whose only non-zero per-token terms are the input's.

    So ``llm_ecologits.evaluate`` prices it with 0 output tokens: no decode, no server time, no
    latency cap; embodied carbon is the GPU-seconds the tokens occupy (Epoch's power per GPU)
    times the GPU's and its server share's embodied carbon over EcoLogits' hardware lifetime.
    """
    c = _constants()
    per_gpu_embodied_kg = hw["server_embodied_kg_co2e"] / hw["server_gpus"]
    per_gpu_embodied_kg += hw["gpu_embodied_kg_co2e"]
    it_kwh = c.it_kwh_per_token_per_b * params_billion
    return Coefficients(
        gpu_count=1,
        latency_per_token_s=0.0,
        ttft_s=0.0,
        gpu_kwh_per_token=0.0,
        server_kwh_per_s=0.0,
        pue=pue,
        water_l_per_it_kwh=wue_l_per_kwh + pue * mix.water_l_per_kwh,
        kg_co2e_per_kwh=mix.g_co2e_per_kwh / 1000.0,
        embodied_kg_per_s=per_gpu_embodied_kg / hw["hardware_lifespan_s"],
        prefill_kwh_per_token=it_kwh,
        prefill_s_per_token=it_kwh * c.gpu_s_per_it_kwh,
    )


def embedding_bounds(
    model: str, provider: ProviderSpec, the_mix: Mix, *, by_name: bool
) -> tuple[Coefficients, Coefficients | None, tuple[str, ...]]:
    """Low and high :class:`Coefficients` (high ``None`` without a range) and the model's flags."""
    spec = embedding_spec(model, by_name=by_name)
    size, pue, wue = spec.params_billion, provider.pue, provider.wue_l_per_kwh
    hw = registry().hardware
    low, high = (
        embedding_coefficients(params_billion=s, pue=p, wue_l_per_kwh=w, mix=the_mix, hw=hw)
        for s, p, w in ((size.low, pue.low, wue.low), (size.high, pue.high, wue.high))
    )
    ranged = size.is_range or pue.is_range or wue.is_range
    return low, high if ranged else None, spec.flags
