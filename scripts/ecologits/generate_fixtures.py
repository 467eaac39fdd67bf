"""Golden cases for tests/exporters/test_llm.py, computed by EcoLogits' own ``llm_impacts``.

Our ``ecologits`` method must match EcoLogits within 0.1 % for energy, GWP (usage + embodied) and
water, for the value and both ends of every range. The cases cover every OpenAI and Mistral model
EcoLogits registers (aliases included) and a few models of each other provider, across output-token
counts, measured latencies (None = unknown) and electricity-mix zones.

Run (from the repository root, in the EcoLogits venv; see sync_registry.py):

    /tmp/eco-venv/bin/python scripts/ecologits/generate_fixtures.py

Writes tests/exporters/fixtures/ecologits_{openai,mistralai,others}.json.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import logging
import os
from typing import Any

from ecologits.model_repository import models
from ecologits.tracers.utils import llm_impacts
from ecologits.utils.range_value import RangeValue

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "exporters", "fixtures"
)
TOKENS = (0, 1, 57, 400, 1500, 8000)
LATENCIES: tuple[float | None, ...] = (None, 0.25, 2.0, 9.5, 60.0)
ZONES: tuple[str | None, ...] = (None, None, None, "FRA", "WOR", "IND")
PER_MODEL = 6
OTHERS_PER_PROVIDER = 6


def _triple(v: Any) -> list[float]:
    """[value, min, max]; a RangeValue's value is its mean, as EcoLogits displays it."""
    if isinstance(v, RangeValue):
        return [float(v.mean), float(v.min), float(v.max)]
    return [float(v), float(v), float(v)]


def _case(
    provider: str, name: str, tokens: int, latency: float | None, zone: str | None
) -> dict[str, Any]:
    r = llm_impacts(provider, name, tokens, latency, electricity_mix_zone=zone)  # type: ignore[arg-type]
    if r.has_errors:
        raise RuntimeError(f"{provider}/{name}: {r.errors}")
    return {
        "provider": provider,
        "model": name,
        "output_tokens": tokens,
        "latency_s": latency,
        "zone": zone,
        "energy_kwh": _triple(r.energy.value),
        "gwp_kg": _triple(r.gwp.value),
        "wcf_l": _triple(r.wcf.value),
        "embodied_gwp_kg": _triple(r.embodied.gwp.value),
    }


def main() -> int:
    logging.disable(logging.WARNING)  # EcoLogits warns once per model about estimated architectures
    grid = list(itertools.product(TOKENS, LATENCIES))
    by_provider: dict[str, list[Any]] = {}
    for m in sorted(models.list_models(), key=lambda m: (m.provider.value, m.name)):
        by_provider.setdefault(m.provider.value, []).append(m)
    files: dict[str, list[dict[str, Any]]] = {"openai": [], "mistralai": [], "others": []}
    n = 0
    for provider, all_models in by_provider.items():
        target = provider if provider in files else "others"
        chosen = all_models
        if target == "others":
            step = max(len(all_models) // OTHERS_PER_PROVIDER, 1)
            chosen = all_models[::step][:OTHERS_PER_PROVIDER]
        for m in chosen:
            for k in range(PER_MODEL):
                tokens, latency = grid[(n * 7 + k * 5) % len(grid)]
                zone = ZONES[(n + k) % len(ZONES)]
                files[target].append(_case(provider, m.name, tokens, latency, zone))
            n += 1
    os.makedirs(OUT, exist_ok=True)
    version = importlib.metadata.version("ecologits")
    for target, cases in files.items():
        with open(os.path.join(OUT, f"ecologits_{target}.json"), "w", encoding="utf-8") as fd:
            json.dump(
                {
                    "ecologits_version": version,
                    "generated_by": "scripts/ecologits/generate_fixtures.py",
                    "units": "energy kWh, gwp kgCO2eq (usage + embodied), wcf L; each [value, min, max]",
                    "cases": cases,
                },
                fd,
                indent=0,
            )
            fd.write("\n")
        print(f"{target}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
