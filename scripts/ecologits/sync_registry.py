"""Regenerate the LLM registry data files from the installed EcoLogits package.

EcoLogits (MPL-2.0) is the reference for the ``ai_inference`` segment. Rather than hand-copying its
model list, zone mixes and provider data-centre figures, this script reads them from the package
installed in a separate venv and writes our own data files, so an upgrade is one command and a diff.

Run (from the repository root):

    python3 -m venv /tmp/eco-venv
    /tmp/eco-venv/bin/pip install -r scripts/ecologits/requirements.txt
    /tmp/eco-venv/bin/python scripts/ecologits/sync_registry.py

Writes exporters/data/llm_models.json, exporters/data/llm_providers.json and
exporters/data/llm_electricity_mixes.csv. Hand-written method data (prefill ratio, Mistral LCA
anchors, size classes) lives in exporters/data/llm_methods.json and is not touched.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import sys
from typing import Any

from ecologits.electricity_mix_repository import electricity_mixes
from ecologits.impacts import llm as eco_llm
from ecologits.model_repository import ParametersMoE, models
from ecologits.tracers.utils import PROVIDER_CONFIG_MAP
from ecologits.utils.range_value import RangeValue

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "exporters", "data")
VERSION = importlib.metadata.version("ecologits")
REPO = "https://github.com/genai-impact/ecologits/blob/v{version}/ecologits/{path}"
LICENCE = "MPL-2.0 (EcoLogits code and data files)"

# How the OpenTelemetry GenAI semantic conventions (gen_ai.provider.name) and other common spellings
# name each EcoLogits provider. The Azure OpenAI client goes through EcoLogits' OpenAI tracer, so it
# shares OpenAI's data-centre figures.
PROVIDER_NAMES: dict[str, list[str]] = {
    "openai": ["openai", "azure.ai.openai", "azure_openai", "azure"],
    "mistralai": ["mistralai", "mistral_ai", "mistral"],
    "anthropic": ["anthropic"],
    "google_genai": [
        "google_genai",
        "gcp.gemini",
        "gcp.vertex_ai",
        "gcp.gen_ai",
        "google",
        "gemini",
    ],
    "cohere": ["cohere"],
    "huggingface_hub": ["huggingface_hub", "huggingface", "hf"],
}


def _value(v: Any) -> Any:
    """A plain number, or {"min", "max"} for an EcoLogits RangeValue."""
    if isinstance(v, RangeValue):
        return {"min": float(v.min), "max": float(v.max)}
    return float(v)


def _raw() -> dict[str, Any]:
    path = os.path.join(os.path.dirname(eco_llm.__file__), "..", "data", "models.json")
    with open(path, encoding="utf-8") as fd:
        raw: dict[str, Any] = json.load(fd)
    return raw


def _aliases() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for a in _raw().get("aliases") or []:
        out.setdefault((a["provider"], a["alias"]), []).append(a["name"])
    return out


def _sources() -> dict[tuple[str, str], list[str]]:
    """Per-model sources as listed in the raw file (EcoLogits' Model.from_json drops them)."""
    return {(m["provider"], m["name"]): list(m.get("sources") or []) for m in _raw()["models"]}


def build_models() -> dict[str, Any]:
    aliases = _aliases()
    sources = _sources()
    alias_names = {(p, n) for (p, _), names in aliases.items() for n in names}
    rows = []
    for m in models.list_models():
        key = (m.provider.value, m.name)
        if key in alias_names:
            continue  # listed under the model it aliases
        params = m.architecture.parameters
        if isinstance(params, ParametersMoE):
            total, active = params.total, params.active
        else:
            total = active = params
        dep = m.deployment
        rows.append(
            {
                "provider": m.provider.value,
                "name": m.name,
                "architecture": m.architecture.type.value,
                "total_params_billion": _value(total),
                "active_params_billion": _value(active),
                "tps_tokens_per_s": dep.tps if dep and dep.tps is not None else None,
                "ttft_s": dep.ttft if dep and dep.ttft is not None else None,
                "aliases": sorted(aliases.get(key, [])),
                "warnings": [w.code for w in m.warnings],
                "sources": sources.get(key, []),
            }
        )
    rows.sort(key=lambda r: (r["provider"], r["name"]))
    return {
        "ecologits_version": VERSION,
        "source": REPO.format(version=VERSION, path="data/models.json"),
        "licence": LICENCE,
        "generated_by": "scripts/ecologits/sync_registry.py",
        "units": {
            "total_params_billion": "billion parameters (drives GPU count via memory)",
            "active_params_billion": "billion parameters active per token (drives energy and latency)",
            "tps_tokens_per_s": "measured output tokens per second (null: EcoLogits' latency regression)",
            "ttft_s": "measured time to first token, seconds (null: 0)",
        },
        "models": rows,
    }


def build_providers() -> dict[str, Any]:
    providers = {}
    for name, cfg in sorted(PROVIDER_CONFIG_MAP.items()):
        providers[name] = {
            "names": PROVIDER_NAMES.get(name, [name]),
            "zone": cfg.datacenter_location,
            "pue": _value(cfg.datacenter_pue),
            "wue_l_per_kwh": _value(cfg.datacenter_wue),
        }
    hardware = {
        "model_quantization_bits": eco_llm.MODEL_QUANTIZATION_BITS,
        "gpu_energy_alpha": eco_llm.GPU_ENERGY_ALPHA,
        "gpu_energy_beta": eco_llm.GPU_ENERGY_BETA,
        "gpu_energy_gamma": eco_llm.GPU_ENERGY_GAMMA,
        "latency_alpha": eco_llm.LATENCY_ALPHA,
        "latency_beta": eco_llm.LATENCY_BETA,
        "latency_gamma": eco_llm.LATENCY_GAMMA,
        "gpu_memory_gb": eco_llm.GPU_MEMORY,
        "gpu_embodied_kg_co2e": eco_llm.GPU_EMBODIED_IMPACT_GWP,
        "server_gpus": eco_llm.SERVER_GPUS,
        "server_power_kw": eco_llm.SERVER_POWER,
        "server_embodied_kg_co2e": eco_llm.SERVER_EMBODIED_IMPACT_GWP,
        "hardware_lifespan_s": eco_llm.HARDWARE_LIFESPAN,
        "batch_size": eco_llm.BATCH_SIZE,
        "memory_overhead": 1.2,
    }
    return {
        "ecologits_version": VERSION,
        "source": REPO.format(version=VERSION, path="tracers/utils.py")
        + " (PROVIDER_CONFIG_MAP); hardware: "
        + REPO.format(version=VERSION, path="impacts/llm.py"),
        "licence": LICENCE,
        "year": 2026,
        "generated_by": "scripts/ecologits/sync_registry.py",
        "notes": (
            "Zones are ISO 3166-1 alpha-3 codes (EcoLogits' electricity-mix zones). PUE and on-site "
            "WUE are the providers' published data-centre averages as collected by EcoLogits; a "
            "{min, max} pair is a range. Hardware: NVIDIA H100 80GB in 8-GPU p5.48xlarge-class "
            "servers; GPU energy and latency regressions fitted by EcoLogits on the ML.ENERGY "
            "leaderboard; embodied GWP from Boavizta/NVIDIA; lifetime 3 years; energy in kWh per "
            "output token before conversion."
        ),
        "providers": providers,
        "hardware": hardware,
    }


def write_mixes(path: str) -> int:
    mixes = sorted(electricity_mixes.list_electricity_mixes(), key=lambda m: m.zone)
    with open(path, "w", newline="", encoding="utf-8") as fd:
        w = csv.writer(fd, lineterminator="\n")
        w.writerow(
            [
                "zone",
                "g_co2e_per_kwh",
                "water_l_per_kwh",
                "water_is_world_default",
                "source",
                "year",
                "licence",
            ]
        )
        for m in mixes:
            codes = {x.code for x in m.warnings}
            w.writerow(
                [
                    m.zone,
                    f"{m.gwp * 1000.0:.10g}",
                    f"{m.wue:.10g}",
                    "true" if "electricity-mix-wue-world" in codes else "false",
                    f"EcoLogits {VERSION} data/electricity_mixes.json "
                    "(GWP: Our World in Data; water: WRI off-site method)",
                    2026,
                    "GWP: CC BY 4.0 (Our World in Data); file: MPL-2.0 (EcoLogits)",
                ]
            )
    return len(mixes)


def main() -> int:
    reg = build_models()
    with open(os.path.join(DATA, "llm_models.json"), "w", encoding="utf-8") as fd:
        json.dump(reg, fd, indent=1, ensure_ascii=False)
        fd.write("\n")
    with open(os.path.join(DATA, "llm_providers.json"), "w", encoding="utf-8") as fd:
        json.dump(build_providers(), fd, indent=1, ensure_ascii=False)
        fd.write("\n")
    n = write_mixes(os.path.join(DATA, "llm_electricity_mixes.csv"))
    print(f"ecologits {VERSION}: {len(reg['models'])} models, {n} zones", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
