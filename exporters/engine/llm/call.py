"""Footprint of one LLM API call (segment ``ai_inference``): energy, CO₂e and water.

Methods (docs/methodology-llm.md has every formula, constant and source):

- ``ecologits``: EcoLogits 0.11.3 exactly (output tokens, latency, model size, provider data centre).
- ``ecologits-prefill`` (default): the same plus input-token (prefill) energy, which EcoLogits
  leaves out although long prompts are a large share of real API traffic.
- ``mistral-lca-2025``: CO₂e and water anchored on Mistral AI's published lifecycle analysis of
  Mistral Large 2, scaled per output token and by active parameters; energy from ``ecologits``.

Embedding calls are not generative: whatever the method, they get ``embedding-encoder-v1``
(``llm_embeddings``), one forward pass over the input tokens.

The exporter calls :func:`llm_call` once per GenAI span, so everything that depends only on
(provider, model, zone, method) is computed once and cached; a call is then a few float operations.
Unknown models and providers never fail: they are estimated and flagged.
"""

from __future__ import annotations

from typing import Final

from otel_downstream.exporters.engine.llm.ecologits_model import (
    Coefficients,
    coefficients,
    evaluate,
)
from otel_downstream.exporters.engine.llm.embeddings import (
    EMBEDDING_METHOD,
    CallKind,
    call_kind,
    embedding_bounds,
)
from otel_downstream.exporters.engine.llm.inputs import latency_seconds, non_empty, token_count
from otel_downstream.exporters.engine.llm.parts import LlmParts, PartsPlan
from otel_downstream.exporters.engine.llm.registry import (
    Bounds,
    known_models,
    mix,
    provider_spec,
    registry,
    resolve_model,
)
from otel_downstream.exporters.footprint import JOULES_PER_KWH, ZERO, Footprint, Impact, InputError

__all__ = ["DATA_VERSION", "DEFAULT_METHOD", "METHODS", "known_models", "llm_call"]

METHODS: Final = ("ecologits", "ecologits-prefill", "mistral-lca-2025")
DEFAULT_METHOD: Final = "ecologits-prefill"
DATA_VERSION: Final = "ecologits-0.11.3"
"""The EcoLogits release the registry files were synced from (a test holds it to the files)."""

_MAX_PLANS: Final = 4096


class _Plan:
    """Everything about a call except its tokens and latency (built once, then read-only)."""

    __slots__ = (
        "data_version",
        "flags",
        "high",
        "include_embodied",
        "lca_g_per_token",
        "lca_l_per_token",
        "low",
        "method",
        "parts_plan",
    )

    def __init__(
        self,
        method: str,
        *,
        low: Coefficients,
        high: Coefficients | None,  # None: no range (EcoLogits gives a single value)
        flags: tuple[str, ...],
        include_embodied: bool,
        data_version: str,
        lca: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0)),
    ) -> None:
        self.method = method
        self.low = low
        self.high = high
        self.flags = flags
        self.include_embodied = include_embodied
        self.data_version = data_version
        self.lca_g_per_token, self.lca_l_per_token = lca  # mistral-lca-2025, (low, high)
        self.parts_plan: PartsPlan = (method, low, high, include_embodied)


_plans: dict[tuple[str, str, str | None, str, bool, CallKind], _Plan] = {}


def llm_call(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    latency_s: float | None,
    method: str = DEFAULT_METHOD,
    zone: str | None = None,
    include_embodied: bool = True,
    operation: str | None = None,
) -> Footprint:
    """Footprint of one call; raises :class:`InputError` naming the bad field and value.

    ``latency_s`` is the measured request duration (it caps the generation time, as in EcoLogits);
    ``None`` means unknown. ``zone`` overrides the provider's default electricity-mix zone (ISO
    3166-1 alpha-3 such as ``FRA`` or alpha-2 such as ``FR``; ``WOR`` is the world average).
    ``operation`` is ``gen_ai.operation.name``: ``"embeddings"`` (or a model named as an
    embedding model) is priced by ``embedding-encoder-v1`` from the input tokens.
    """
    out_tok = token_count("output_tokens", output_tokens)
    in_tok = token_count("input_tokens", input_tokens)
    latency = latency_seconds(latency_s)
    if include_embodied is not True and include_embodied is not False:
        raise InputError("include_embodied", include_embodied, "True or False")
    if operation is not None and not isinstance(operation, str):
        raise InputError("operation", operation, "a gen_ai.operation.name string, or None")
    kind = call_kind(operation, model)
    key = (provider, model, zone, method, include_embodied, kind)
    try:
        plan = _plans.get(key)
    except TypeError:  # an unhashable argument: _plan names it in an InputError
        plan = None
    if plan is None:
        plan = _plan(provider, model, zone, method, include_embodied, kind=kind)
        if len(_plans) < _MAX_PLANS:
            _plans[key] = plan
    if plan.method == "mistral-lca-2025":
        return _lca_footprint(plan, out_tok, latency)
    if plan.method == EMBEDDING_METHOD:
        out_tok = 0.0  # an embedding generates nothing; its usage reports no output tokens
    return _ecologits_footprint(plan, out_tok, in_tok, latency)


def _plan(
    provider: str,
    model: str,
    zone: str | None,
    method: str,
    embodied: bool,
    *,
    kind: CallKind,
) -> _Plan:
    non_empty("provider", provider)
    non_empty("model", model)
    if method not in METHODS:
        raise InputError("method", method, f"one of {', '.join(METHODS)}")
    if zone is not None:
        non_empty("zone", zone)
    reg = registry()
    prov, flags = provider_spec(provider)
    the_mix, zone_flags = mix(zone if zone is not None else prov.zone)
    if the_mix.water_is_world_default:
        zone_flags = (*zone_flags, "water_intensity_world_default")
    if kind != "generate":
        low, high, spec_flags = embedding_bounds(
            model, prov, the_mix, by_name=kind == "embed_by_name"
        )
        return _embedding_plan(low, high, (*flags, *zone_flags, *spec_flags), embodied)
    spec = resolve_model(prov.key, model)
    flags = (*flags, *spec.flags, *zone_flags)
    prefill = reg.methods["prefill"]["input_to_output_token_energy_ratio"]
    ratio = float(prefill) if method == "ecologits-prefill" else 0.0

    def bound(pick: int) -> Coefficients:
        def one(b: Bounds) -> float:
            return b.high if pick else b.low

        return coefficients(
            active_params_billion=one(spec.active_params_billion),
            total_params_billion=one(spec.total_params_billion),
            tps_tokens_per_s=spec.tps_tokens_per_s,
            ttft_s=spec.ttft_s,
            pue=one(prov.pue),
            wue_l_per_kwh=one(prov.wue_l_per_kwh),
            mix=the_mix,
            hw=reg.hardware,
            prefill_ratio=ratio,
        )

    ranged = any(
        b.is_range
        for b in (
            spec.active_params_billion,
            spec.total_params_billion,
            prov.pue,
            prov.wue_l_per_kwh,
        )
    )
    low = bound(0)
    high = bound(1) if ranged else None
    version = f"ecologits-{reg.ecologits_version}"
    if method != "mistral-lca-2025":
        if not embodied:
            flags = (*flags, "embodied_excluded")
        return _Plan(
            method,
            low=low,
            high=high,
            flags=flags,
            include_embodied=embodied,
            data_version=version,
        )
    lca = reg.methods["mistral_lca_2025"]
    per_b_token = 1.0 / (lca["reference_output_tokens"] * lca["reference_active_params_billion"])
    g = lca["co2e_g_per_reference_response"] * per_b_token
    litres = lca["water_l_per_reference_response"] * per_b_token
    act = spec.active_params_billion
    flags = (*flags, "energy_from_ecologits", "embodied_not_separated")
    if zone is not None:
        flags = (*flags, "zone_ignored")
    return _Plan(
        method,
        low=low,
        high=high,
        flags=flags,
        include_embodied=True,
        data_version=f"mistral-lca-2025+{version}",
        lca=((g * act.low, g * act.high), (litres * act.low, litres * act.high)),
    )


def _embedding_plan(
    low: Coefficients, high: Coefficients | None, flags: tuple[str, ...], embodied: bool
) -> _Plan:
    flags = flags if embodied else (*flags, "embodied_excluded")
    version = f"{EMBEDDING_METHOD}+ecologits-{registry().ecologits_version}"
    return _Plan(
        EMBEDDING_METHOD,
        low=low,
        high=high,
        flags=flags,
        include_embodied=embodied,
        data_version=version,
    )


def _ecologits_footprint(plan: _Plan, out_tok: float, in_tok: float, latency: float) -> Footprint:
    lo = evaluate(plan.low, out_tok, in_tok, latency)
    hi = lo if plan.high is None else evaluate(plan.high, out_tok, in_tok, latency)
    emb_lo = lo[3] * 1000.0 if plan.include_embodied else 0.0
    emb_hi = hi[3] * 1000.0 if plan.include_embodied else 0.0
    low = Impact(lo[0] * JOULES_PER_KWH, lo[1] * 1000.0 + emb_lo, lo[2])
    if plan.high is None:
        total, low_i, high_i = low, None, None
        embodied = Impact(0.0, emb_lo, 0.0)
    else:
        high_i = Impact(hi[0] * JOULES_PER_KWH, hi[1] * 1000.0 + emb_hi, hi[2])
        total = Impact(
            (low.energy_j + high_i.energy_j) / 2,
            (low.co2e_g + high_i.co2e_g) / 2,
            (low.water_l + high_i.water_l) / 2,
        )
        low_i = low
        embodied = Impact(0.0, (emb_lo + emb_hi) / 2, 0.0)
    return Footprint(
        "ai_inference",
        plan.method,
        total,
        low_i,
        high_i,
        embodied,
        LlmParts(plan.parts_plan, lo, hi),
        plan.flags,
        plan.data_version,
    )


def _lca_footprint(plan: _Plan, out_tok: float, latency: float) -> Footprint:
    lo = evaluate(plan.low, out_tok, 0.0, latency)
    g_lo, g_hi = plan.lca_g_per_token
    l_lo, l_hi = plan.lca_l_per_token
    low = Impact(lo[0] * JOULES_PER_KWH, g_lo * out_tok, l_lo * out_tok)
    if plan.high is None:
        return Footprint(
            "ai_inference",
            plan.method,
            low,
            flags=plan.flags,
            data_version=plan.data_version,
        )
    hi = evaluate(plan.high, out_tok, 0.0, latency)
    high = Impact(hi[0] * JOULES_PER_KWH, g_hi * out_tok, l_hi * out_tok)
    total = Impact(
        (low.energy_j + high.energy_j) / 2,
        (low.co2e_g + high.co2e_g) / 2,
        (low.water_l + high.water_l) / 2,
    )
    return Footprint(
        "ai_inference",
        plan.method,
        total,
        low,
        high,
        ZERO,
        flags=plan.flags,
        data_version=plan.data_version,
    )
