"""Per-call cost of our LLM footprint against EcoLogits' own ``llm_impacts``, in the same run.

The exporter prices every GenAI span, so ``llm.llm_call`` must be cheap: the target is at least
30x faster than EcoLogits 0.11.3's ``llm_impacts`` for the same (provider, model, tokens, latency).

EcoLogits is timed in this process when it is importable (a ``bench`` extra), otherwise in a
subprocess on a venv at ``/tmp/eco-venv`` that this script creates from PyPI the first time
(``scripts/ecologits/requirements.txt``), so the project venv never gets EcoLogits' pins.

Run: ``python -m tests.benchmarks.bench_llm`` (or ``make bench``).
"""

from __future__ import annotations

import json
import math
import subprocess
import timeit
import venv
from pathlib import Path

from otel_downstream.exporters.engine.llm import call as llm

ECO_VENV = Path("/tmp/eco-venv")
REQUIREMENTS = Path(__file__).resolve().parents[2] / "scripts" / "ecologits" / "requirements.txt"
CASES = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-5"),
    ("mistralai", "mistral-large-latest"),
    ("mistralai", "ministral-8b-latest"),
    ("anthropic", "claude-sonnet-4-5"),
]
# (input tokens, output tokens, latency s) cycled so no single call is special
CALLS = [(120, 350, 4.2), (2000, 40, 0.8), (30, 1200, 15.0), (500, 500, None)]
REPEAT = 5

_ECO_TIMER = r"""
import json, logging, sys, timeit
from ecologits.tracers.utils import llm_impacts
logging.disable(logging.WARNING)
cases, calls, number, repeat = json.loads(sys.argv[1])
out = {}
for provider, model in cases:
    def run():
        for _, tokens, latency in calls:
            llm_impacts(provider, model, tokens, latency)
    run()
    best = min(timeit.repeat(run, number=number, repeat=repeat))
    out[model] = best / (number * len(calls)) * 1e6
print(json.dumps(out))
"""


def ours_us(provider: str, model: str, method: str, number: int = 2000) -> float:
    def run() -> None:
        for tokens_in, tokens_out, latency in CALLS:
            llm.llm_call(
                provider=provider,
                model=model,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                latency_s=latency,
                method=method,
            )

    run()
    best = min(timeit.repeat(run, number=number, repeat=REPEAT))
    return best / (number * len(CALLS)) * 1e6


def ecologits_us(number: int = 100) -> tuple[dict[str, float], str]:
    """EcoLogits' µs per call per model, and where it ran."""
    payload = json.dumps([CASES, CALLS, number, REPEAT])
    try:
        import ecologits  # noqa: F401  (the project venv has it with a `bench` extra)
    except ImportError:
        python = ECO_VENV / "bin" / "python"
        if not python.exists():
            print(f"creating {ECO_VENV} with {REQUIREMENTS.name} (first run only)...", flush=True)
            venv.create(ECO_VENV, with_pip=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True
            )
        out = subprocess.run(
            [str(python), "-c", _ECO_TIMER, payload], check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout), f"subprocess on {ECO_VENV}"
    return _ecologits_here(number), "in process"


def _ecologits_here(number: int) -> dict[str, float]:
    import logging

    from ecologits.tracers.utils import llm_impacts

    logging.disable(logging.WARNING)
    out = {}
    for provider, model in CASES:

        def run(provider: str = provider, model: str = model) -> None:
            for _, tokens, latency in CALLS:
                llm_impacts(provider, model, tokens, latency)  # type: ignore[arg-type]

        run()
        best = min(timeit.repeat(run, number=number, repeat=REPEAT))
        out[model] = best / (number * len(CALLS)) * 1e6
    return out


def main() -> int:
    ours = {
        (model, method): ours_us(provider, model, method)
        for provider, model in CASES
        for method in llm.METHODS
    }
    theirs, where = ecologits_us()
    print(f"µs per call (best of {REPEAT}), {len(CALLS)} token/latency mixes; EcoLogits {where}")
    header = f"{'model':24} {'ecologits':>10} {'+prefill':>10} {'mistral-lca':>12} {'EcoLogits':>10} {'ratio':>7}"
    print(header)
    ratios = []
    for _, model in CASES:
        default = ours[(model, llm.DEFAULT_METHOD)]
        ratio = theirs[model] / default
        ratios.append(ratio)
        print(
            f"{model:24} {ours[(model, 'ecologits')]:10.2f} {default:10.2f} "
            f"{ours[(model, 'mistral-lca-2025')]:12.2f} {theirs[model]:10.1f} {ratio:6.0f}x"
        )
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(
        f"speed-up vs EcoLogits llm_impacts ({llm.DEFAULT_METHOD}): geometric mean {geo:.0f}x, "
        f"min {min(ratios):.0f}x (target >= 30x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
