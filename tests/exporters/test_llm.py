"""ai_inference footprints: EcoLogits 0.11.3 golden cases, our extensions, and bad input.

The golden cases come from EcoLogits' own ``llm_impacts`` (scripts/ecologits/generate_fixtures.py).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm.registry import registry
from otel_downstream.exporters.footprint import Footprint, InputError

FIXTURES = Path(__file__).parent / "fixtures"
REL = 1e-3  # acceptance: within 0.1 % of EcoLogits
J_PER_KWH = 3_600_000.0


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"ecologits_{name}.json").read_text())
    return data


def _close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-15)


def _triples(fp: Footprint) -> dict[str, list[float]]:
    low = fp.low or fp.total
    high = fp.high or fp.total
    return {
        "energy_kwh": [
            fp.total.energy_j / J_PER_KWH,
            low.energy_j / J_PER_KWH,
            high.energy_j / J_PER_KWH,
        ],
        "gwp_kg": [fp.total.co2e_g / 1000, low.co2e_g / 1000, high.co2e_g / 1000],
        "wcf_l": [fp.total.water_l, low.water_l, high.water_l],
    }


@pytest.mark.parametrize("name", ["openai", "mistralai", "others"])
def test_matches_ecologits_within_0_1_percent(name: str) -> None:
    data = _load(name)
    assert data["ecologits_version"] == "0.11.3"
    assert len(data["cases"]) > 100
    bad = []
    for case in data["cases"]:
        fp = llm.llm_call(
            provider=case["provider"],
            model=case["model"],
            input_tokens=777,  # EcoLogits ignores input tokens; so must the "ecologits" method
            output_tokens=case["output_tokens"],
            latency_s=case["latency_s"],
            method="ecologits",
            zone=case["zone"],
        )
        ours = _triples(fp)
        for quantity in ("energy_kwh", "gwp_kg", "wcf_l"):
            for i, label in enumerate(("value", "min", "max")):
                if not _close(ours[quantity][i], case[quantity][i]):
                    bad.append(
                        (case["model"], case["output_tokens"], case["latency_s"], quantity, label)
                    )
        if not _close(fp.embodied.co2e_g / 1000, case["embodied_gwp_kg"][0]):
            bad.append(
                (case["model"], case["output_tokens"], case["latency_s"], "embodied", "value")
            )
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


@pytest.mark.parametrize(
    ("provider", "fixture"), [("openai", "openai"), ("mistral_ai", "mistralai")]
)
def test_registry_holds_every_model_ecologits_knows(provider: str, fixture: str) -> None:
    theirs = {c["model"] for c in _load(fixture)["cases"]}
    assert set(llm.known_models(provider)) == theirs
    assert llm.known_models("no-such-provider") == []


def test_data_version_matches_the_synced_files() -> None:
    assert llm.DATA_VERSION == f"ecologits-{registry().ecologits_version}"
    fp = llm.llm_call(
        provider="openai", model="gpt-4o", input_tokens=1, output_tokens=1, latency_s=None
    )
    assert fp.data_version == llm.DATA_VERSION
    assert fp.segment == "ai_inference"
    assert fp.method == llm.DEFAULT_METHOD == "ecologits-prefill"


@pytest.mark.parametrize(
    ("semconv", "ecologits"),
    [
        ("mistral_ai", "mistralai"),
        ("azure.ai.openai", "openai"),
        ("gcp.gemini", "google_genai"),
        ("anthropic", "anthropic"),
        ("OpenAI", "openai"),
    ],
)
def test_semconv_provider_names_map_to_ecologits(semconv: str, ecologits: str) -> None:
    model = llm.known_models(ecologits)[0]
    a = llm.llm_call(
        provider=semconv, model=model, input_tokens=10, output_tokens=300, latency_s=4.0
    )
    b = llm.llm_call(
        provider=ecologits, model=model, input_tokens=10, output_tokens=300, latency_s=4.0
    )
    assert a.total == b.total
    assert "provider_unknown" not in a.flags


def test_unknown_provider_uses_world_mix_and_flags() -> None:
    fp = llm.llm_call(
        provider="acme-ai",
        model="gpt-4o",
        input_tokens=0,
        output_tokens=500,
        latency_s=None,
        method="ecologits",
    )
    assert "provider_unknown" in fp.flags
    assert "model_estimated" not in fp.flags  # the name is found under another provider
    usage = fp.parts["usage"]
    world = registry().mixes["WOR"].g_co2e_per_kwh
    assert usage.total.co2e_g == pytest.approx(usage.total.energy_j / J_PER_KWH * world, rel=1e-9)
    openai = llm.llm_call(
        provider="openai",
        model="gpt-4o",
        input_tokens=0,
        output_tokens=500,
        latency_s=None,
        method="ecologits",
    )
    assert fp.total.co2e_g != openai.total.co2e_g


@pytest.mark.parametrize(
    ("model", "size_class", "active_low"),
    [
        ("gpt-99-nano", "nano", 5.0),
        ("acme-mini-2", "mini", 8.0),
        ("acme-coder-70b-instruct", "explicit_dense", 70.0),  # llama-3.1-70b has a card
        ("acme-30b-a3b", "explicit_moe", 3.0),  # qwen3-30b-a3b has a card
        ("mystery-model", "default", 44.0),
    ],
)
def test_unknown_models_are_estimated_from_a_size_class(
    model: str, size_class: str, active_low: float
) -> None:
    fp = llm.llm_call(
        provider="openai", model=model, input_tokens=100, output_tokens=200, latency_s=3.0
    )
    assert "model_estimated" in fp.flags
    assert f"model_size_class_{size_class}" in fp.flags
    assert fp.total.energy_j > 0 and fp.total.co2e_g > 0 and fp.total.water_l > 0
    # bigger classes cost more per token than smaller ones
    nano = llm.llm_call(
        provider="openai", model="x-nano", input_tokens=100, output_tokens=200, latency_s=3.0
    )
    if active_low > 5.0:
        assert fp.total.energy_j > nano.total.energy_j


def test_explicit_size_drives_energy_monotonically() -> None:
    def energy(size: int) -> float:
        return llm.llm_call(
            provider="hf", model=f"m-{size}b", input_tokens=0, output_tokens=100, latency_s=None
        ).total.energy_j

    assert energy(7) < energy(70) < energy(400)


@pytest.mark.parametrize(
    ("provider", "name", "family"),
    [
        ("openai", "gpt-4o-2099-01-01", "gpt-4o-2024-11-20"),  # newest dated gpt-4o card
        ("openai", "openai/gpt-4o", "gpt-4o"),
        ("openai", "GPT-4o", "gpt-4o"),
        ("mistral_ai", "mistral-small-2603-v1:0", "mistral-small-2603"),
        ("mistral_ai", "mistral-small-2604", "mistral-small-2603"),  # its own generation
        ("anthropic", "anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("anthropic", "us.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"),
    ],
)
def test_versioned_and_prefixed_names_resolve_to_the_family(
    provider: str, name: str, family: str
) -> None:
    kw: dict[str, Any] = {
        "input_tokens": 0,
        "output_tokens": 100,
        "latency_s": 2.0,
        "method": "ecologits",
    }
    fp = llm.llm_call(provider=provider, model=name, **kw)
    ref = llm.llm_call(provider=provider, model=family, **kw)
    assert fp.total == ref.total
    assert "model_name_normalised" in fp.flags


def test_prefill_adds_input_token_energy_at_the_documented_ratio() -> None:
    kw: dict[str, Any] = {
        "provider": "mistral_ai",
        "model": "ministral-8b-latest",
        "latency_s": None,
    }
    base = llm.llm_call(input_tokens=0, output_tokens=300, method="ecologits", **kw)
    no_input = llm.llm_call(input_tokens=0, output_tokens=300, method="ecologits-prefill", **kw)
    assert no_input.total == base.total
    one_out = llm.llm_call(input_tokens=0, output_tokens=1, method="ecologits", **kw)
    zero_out = llm.llm_call(input_tokens=0, output_tokens=0, method="ecologits", **kw)
    per_output_token = one_out.total.energy_j - zero_out.total.energy_j
    with_input = llm.llm_call(
        input_tokens=2000, output_tokens=300, method="ecologits-prefill", **kw
    )
    ratio = registry().methods["prefill"]["input_to_output_token_energy_ratio"]
    assert 0 < ratio < 1
    assert with_input.total.energy_j - base.total.energy_j == pytest.approx(
        2000 * ratio * per_output_token, rel=1e-9
    )
    usage = with_input.parts["usage"]
    decode, prefill = usage.parts["decode"], usage.parts["prefill"]
    assert decode.total.energy_j == pytest.approx(base.total.energy_j, rel=1e-9)
    assert prefill.total.energy_j + decode.total.energy_j == pytest.approx(
        usage.total.energy_j, rel=1e-12
    )
    parts_co2 = usage.total.co2e_g + with_input.parts["embodied"].total.co2e_g
    assert parts_co2 == pytest.approx(with_input.total.co2e_g, rel=1e-12)
    assert with_input.embodied.co2e_g > base.embodied.co2e_g  # prefill occupies the server too


def test_ranges_bracket_the_value_and_parts_add_up() -> None:
    fp = llm.llm_call(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=900,
        output_tokens=700,
        latency_s=20.0,
    )
    assert fp.low is not None and fp.high is not None
    for q in ("energy_j", "co2e_g", "water_l"):
        assert getattr(fp.low, q) < getattr(fp.total, q) < getattr(fp.high, q)
    assert set(fp.parts) == {"usage", "embodied"} and len(fp.parts) == 2
    assert fp.operational.co2e_g == pytest.approx(fp.parts["usage"].total.co2e_g, rel=1e-12)
    assert fp.embodied == fp.parts["embodied"].total
    out = fp.to_json()
    assert out["segments"]["usage"]["segments"]["prefill"]["energy_j"]["value"] > 0
    assert out["flags"] == list(fp.flags)


def test_include_embodied_false_leaves_only_usage() -> None:
    kw: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 50,
        "output_tokens": 80,
        "latency_s": 1.0,
    }
    with_e = llm.llm_call(**kw)
    without = llm.llm_call(include_embodied=False, **kw)
    assert without.embodied.co2e_g == 0.0
    assert "embodied_excluded" in without.flags
    assert set(without.parts) == {"usage"}
    assert without.total.co2e_g == pytest.approx(
        with_e.total.co2e_g - with_e.embodied.co2e_g, rel=1e-12
    )
    assert without.total.energy_j == with_e.total.energy_j


def test_zone_override_changes_only_the_mix() -> None:
    kw: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 10,
        "output_tokens": 400,
        "latency_s": None,
    }
    usa = llm.llm_call(**kw)
    fra = llm.llm_call(zone="fra", **kw)
    assert fra.total.energy_j == usa.total.energy_j
    assert (
        fra.parts["usage"].total.co2e_g < usa.parts["usage"].total.co2e_g / 5
    )  # nuclear vs US mix


@pytest.mark.parametrize(
    ("zone", "same_as", "flag"),
    [
        ("FR", "FRA", None),
        ("se", "SWE", None),
        ("AND", "WOR", "zone_world_default"),
        ("ZZ", "WOR", "zone_world_default"),
    ],
)
def test_zones_take_alpha2_and_fall_back_to_world_for_countries_without_a_mix(
    zone: str, same_as: str, flag: str | None
) -> None:
    kw: dict[str, Any] = {
        "provider": "mistral_ai",
        "model": "mistral-small-latest",
        "input_tokens": 5,
        "output_tokens": 50,
        "latency_s": None,
    }
    fp = llm.llm_call(zone=zone, **kw)
    ref = llm.llm_call(zone=same_as, **kw)
    assert fp.total == ref.total
    assert (flag in fp.flags) if flag else ("zone_world_default" not in fp.flags)


def test_mistral_lca_reproduces_the_published_anchor() -> None:
    # Mistral Large 2 (123 B dense) writing 400 tokens is Mistral's reference: 1.14 g and 45 mL.
    fp = llm.llm_call(
        provider="mistral_ai",
        model="mistral-large-2407",
        input_tokens=50,
        output_tokens=400,
        latency_s=None,
        method="mistral-lca-2025",
    )
    assert fp.total.co2e_g == pytest.approx(1.14, rel=1e-12)
    assert fp.total.water_l == pytest.approx(0.045, rel=1e-12)
    assert {"energy_from_ecologits", "embodied_not_separated", "model_card_supplement"} <= set(
        fp.flags
    )
    half = llm.llm_call(
        provider="mistral_ai",
        model="mistral-large-123b",  # a size-class estimate of the same size scales the same
        input_tokens=50,
        output_tokens=200,
        latency_s=None,
        method="mistral-lca-2025",
    )
    assert half.total.co2e_g == pytest.approx(0.57, rel=1e-12)
    ranged = llm.llm_call(
        provider="openai",
        model="gpt-4o",
        input_tokens=0,
        output_tokens=400,
        latency_s=None,
        method="mistral-lca-2025",
    )
    assert ranged.low is not None and ranged.high is not None
    assert ranged.low.co2e_g == pytest.approx(1.14 * 44 / 123, rel=1e-12)
    assert ranged.high.co2e_g == pytest.approx(1.14 * 132 / 123, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"output_tokens": -1}, "output_tokens"),
        ({"input_tokens": float("nan")}, "input_tokens"),
        ({"input_tokens": "12"}, "input_tokens"),
        ({"output_tokens": True}, "output_tokens"),
        ({"output_tokens": float("inf")}, "output_tokens"),
        ({"latency_s": "fast"}, "latency_s"),
        ({"latency_s": -0.5}, "latency_s"),
        ({"latency_s": float("nan")}, "latency_s"),
        ({"method": "ecologits-9"}, "method"),
        ({"zone": "Atlantis"}, "zone"),
        ({"provider": ""}, "provider"),
        ({"model": None}, "model"),
        ({"provider": ["openai"]}, "provider"),
        ({"zone": {"FR": 1}}, "zone"),
        ({"include_embodied": "yes"}, "include_embodied"),
    ],
)
def test_bad_input_names_field_and_value(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 10,
        "output_tokens": 10,
        "latency_s": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        llm.llm_call(**args)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}={kwargs[field]!r}"[: len(field) + 2])


def _random_calls(n: int) -> list[tuple[str, str, int, float | None, str]]:
    """Seeded random names (any Unicode, path-like, versioned) so failures reproduce."""
    rng = random.Random(20251128)
    alphabet = "abcxyz-_./@ 0123456789BÉ語\u0000\t"
    pieces = [
        "gpt",
        "mistral",
        "claude",
        "gemini",
        "nano",
        "mini",
        "large",
        "70b",
        "a3b",
        "2024-05-13",
        "latest",
    ]
    out = []
    for _ in range(n):
        model = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        if rng.random() < 0.5:
            model = "-".join(rng.sample(pieces, rng.randint(1, 4))) + model
        provider = rng.choice(
            ["openai", "mistral_ai", "x", "anthropic", "gcp.gemini", " ?? ", "語"]
        )
        tokens = rng.choice([0, 1, 10, 999, 10**6, 2 * 10**6])
        latency = rng.choice([None, 0.0, 0.001, 3.0, 1e5])
        out.append((provider, model.strip() or "m", tokens, latency, rng.choice(llm.METHODS)))
    return out


@pytest.mark.parametrize(("provider", "model", "tokens", "latency", "method"), _random_calls(200))
def test_any_names_give_a_finite_footprint(
    provider: str, model: str, tokens: int, latency: float | None, method: str
) -> None:
    fp = llm.llm_call(
        provider=provider,
        model=model,
        input_tokens=tokens,
        output_tokens=tokens,
        latency_s=latency,
        method=method,
    )
    for q in ("energy_j", "co2e_g", "water_l"):
        value = getattr(fp.total, q)
        assert math.isfinite(value) and value >= 0
