"""EcoLogits 0.11.3's LLM inference model, reduced to per-call constants and a few float ops.

EcoLogits evaluates a small DAG of pydantic values on every call (hundreds of µs). Every term of
that DAG is linear in the output-token count and in the generation latency once the model, the
provider's data centre and the electricity mix are fixed, so we fold the fixed part into one
``Coefficients`` record per bound (EcoLogits' min/max parameter and PUE/WUE ranges) and evaluate:

    latency  = min(request latency, output tokens x latency per token + time to first token)
    IT kWh   = server kWh/s x latency + GPU kWh/token x output tokens
    energy   = PUE x IT kWh
    water    = IT kWh x (on-site WUE + PUE x off-site water intensity of the mix)
    CO2e     = energy x mix intensity + embodied kg/s x latency

The formulas, constants and their sources are in docs/methodology-llm.md. Prefill (input-token)
energy is our documented extension: each input token costs ``ratio`` output tokens of GPU and
server time, and is not capped by the measured latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from otel_downstream.exporters.engine.llm.registry import Mix

_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Coefficients:
    """Per-call constants for one bound of one (model, provider, zone)."""

    gpu_count: int
    latency_per_token_s: float
    ttft_s: float
    gpu_kwh_per_token: float  # all the model's GPUs, per output token
    server_kwh_per_s: float  # the server's non-GPU power share, per second of generation
    pue: float
    water_l_per_it_kwh: float
    kg_co2e_per_kwh: float
    embodied_kg_per_s: float
    prefill_kwh_per_token: float  # IT energy per input token (0 when prefill is off)
    prefill_s_per_token: float  # server occupancy per input token (0 when prefill is off)


def gpu_count(total_params_billion: float, hw: dict[str, float]) -> int:
    """GPUs needed to hold the weights, rounded up to a power of two (EcoLogits)."""
    memory_gb = hw["memory_overhead"] * total_params_billion * hw["model_quantization_bits"] / 8.0
    count = max(math.ceil(memory_gb / hw["gpu_memory_gb"]), 1)
    return int(2 ** math.ceil(math.log2(count)))


def coefficients(
    *,
    active_params_billion: float,
    total_params_billion: float,
    tps_tokens_per_s: float | None,
    ttft_s: float | None,
    pue: float,
    wue_l_per_kwh: float,
    mix: Mix,
    hw: dict[str, float],
    prefill_ratio: float = 0.0,
) -> Coefficients:
    """Fold everything but tokens and latency into constants."""
    batch = hw["batch_size"]
    gpus = gpu_count(total_params_billion, hw)
    per_gpu_wh_per_token = (
        hw["gpu_energy_alpha"] * math.exp(hw["gpu_energy_beta"] * batch) * active_params_billion
        + hw["gpu_energy_gamma"]
    )
    gpu_kwh_per_token = gpus * per_gpu_wh_per_token / 1000.0
    if tps_tokens_per_s:
        latency_per_token = 1.0 / tps_tokens_per_s
    else:
        latency_per_token = (
            hw["latency_alpha"] * active_params_billion
            + hw["latency_beta"] * batch
            + hw["latency_gamma"]
        )
    share = gpus / hw["server_gpus"]
    server_kwh_per_s = hw["server_power_kw"] * share / batch / _SECONDS_PER_HOUR
    embodied_kg = share * hw["server_embodied_kg_co2e"] + gpus * hw["gpu_embodied_kg_co2e"]
    embodied_kg_per_s = embodied_kg / (hw["hardware_lifespan_s"] * batch)
    return Coefficients(
        gpu_count=gpus,
        latency_per_token_s=latency_per_token,
        ttft_s=ttft_s or 0.0,
        gpu_kwh_per_token=gpu_kwh_per_token,
        server_kwh_per_s=server_kwh_per_s,
        pue=pue,
        water_l_per_it_kwh=wue_l_per_kwh + pue * mix.water_l_per_kwh,
        kg_co2e_per_kwh=mix.g_co2e_per_kwh / 1000.0,
        embodied_kg_per_s=embodied_kg_per_s,
        prefill_kwh_per_token=prefill_ratio
        * (gpu_kwh_per_token + server_kwh_per_s * latency_per_token),
        prefill_s_per_token=prefill_ratio * latency_per_token,
    )


def evaluate(
    c: Coefficients, output_tokens: float, input_tokens: float, latency_s: float
) -> tuple[float, float, float, float, float, float]:
    """Return (energy kWh, usage kgCO2e, water L, embodied kgCO2e, prefill IT kWh, prefill s).

    ``latency_s`` is the measured request latency (``math.inf`` when unknown). The prefill pair
    (IT energy and server-seconds of the input tokens) is already included in the first four
    figures; it is returned so a breakdown can be shown without recomputing.
    """
    generation_s = output_tokens * c.latency_per_token_s + c.ttft_s
    generation_s = min(generation_s, latency_s)
    prefill_it = input_tokens * c.prefill_kwh_per_token
    prefill_s = input_tokens * c.prefill_s_per_token
    it_kwh = c.server_kwh_per_s * generation_s + c.gpu_kwh_per_token * output_tokens + prefill_it
    energy = c.pue * it_kwh
    return (
        energy,
        energy * c.kg_co2e_per_kwh,
        it_kwh * c.water_l_per_it_kwh,
        (generation_s + prefill_s) * c.embodied_kg_per_s,
        prefill_it,
        prefill_s,
    )
