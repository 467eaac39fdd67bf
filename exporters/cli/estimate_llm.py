"""The ``llm`` case of ``estimate``: one LLM API call priced as the runtime prices it; an unknown
provider is refused with the closest known names (or priced as at run time with
``allow_unknown``), an unknown model priced from its size class with a warning naming the closest
known models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_downstream.exporters.accounting.span_inputs import MAX_SECONDS
from otel_downstream.exporters.cli import estimate_fields as F
from otel_downstream.exporters.engine.engine import EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm import registry as llm_registry
from otel_downstream.exporters.engine.llm.embeddings import call_kind
from otel_downstream.exporters.footprint import InputError


def llm_case(case: Mapping[str, Any]) -> dict[str, Any]:
    method = F.text(case, "method") or llm.DEFAULT_METHOD
    if method not in llm.METHODS:
        raise InputError("method", method, "one of " + ", ".join(llm.METHODS))
    config = EngineConfig(
        llm_method=method,
        include_embodied=F.flag(case, "embodied"),
    )
    operation = F.text(case, "operation")
    provider = F.text(case, "provider", required=True) or ""
    model = F.text(case, "model", required=True) or ""
    allow_unknown = F.flag(case, "allow_unknown")
    providers = llm_registry.registry().provider_names
    if provider.strip().lower() not in providers and not allow_unknown:
        raise InputError(
            "provider",
            provider,
            f"a provider the engine knows{F.did_you_mean(provider, providers)}. At run time a span "
            "naming an unknown provider is priced with the default data centre and flagged "
            'provider_unknown (downstream_unknown_total{kind="provider"}); allow_unknown '
            "(--allow-unknown) prices it that way here",
        )
    # An embedding (by operation or by its model's name, as the engine decides) generates
    # nothing: its usage has no output tokens to give.
    embeds = call_kind(operation, model) != "generate"
    footprint = F.engine(config).llm_call(
        provider=provider,
        model=model,
        input_tokens=F.integer(case, "input_tokens"),
        output_tokens=F.integer(case, "output_tokens", default=0 if embeds else None),
        latency_s=F.number(case, "latency_s", upper=MAX_SECONDS),
        zone=F.text(case, "zone"),
        operation=operation,
    )
    out = footprint.to_json()
    if "model_estimated" in footprint.flags:
        out["warning"] = (
            f"model {model!r} is not one the engine knows: estimated from the size class its "
            "name suggests, as at run time (flag model_estimated, "
            'downstream_unknown_total{kind="model"})' + F.did_you_mean(model, _model_names())
        )
    return out


def _model_names() -> list[str]:
    """Every model name the engine prices from data (EcoLogits, and model cards when present)."""
    reg = llm_registry.registry()
    names = set(reg.by_name)
    names.update(name for _, name in getattr(reg, "cards", {}))
    return sorted(names)
