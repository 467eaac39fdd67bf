"""Model identity: a name is priced as its own generation, and every supplement card is cited.

The rules are in docs/methodology-llm.md (Models); the cards in exporters/data/llm_model_cards.json.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from importlib import resources
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm.registry import ModelSpec, registry, resolve_model
from otel_downstream.exporters.metrics import families as M


def _json(name: str) -> Any:
    text = resources.files("otel_downstream.exporters.data").joinpath(name).read_text("utf-8")
    return json.loads(text)


CARDS: list[dict[str, Any]] = _json("llm_model_cards.json")["cards"]
ECOLOGITS: list[dict[str, Any]] = _json("llm_models.json")["models"]


def _resolve(provider: str, model: str) -> ModelSpec:
    key = registry().provider_names.get(provider, provider)
    return resolve_model(key, model)


# (provider, name as called, card it must be priced as, active parameters low end)
IDENTITY = [
    # OpenAI: each dated gpt-4o is gpt-4o, never gpt-4o-mini; older generations have cards
    ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13", 44.0),
    ("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06", 44.0),
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", 8.0),
    ("openai", "gpt-4o-2024-09-01", "gpt-4o-2024-08-06", 44.0),  # between two releases
    ("openai", "gpt-4-turbo-2024-04-09", "gpt-4-turbo-2024-04-09", 88.0),
    ("openai", "gpt-4-0613", "gpt-4-0613", 176.0),
    ("openai", "gpt-4-0314", "gpt-4-0314", 176.0),
    ("openai", "gpt-4-1106-preview", "gpt-4-1106-preview", 176.0),
    ("openai", "gpt-3.5-turbo-0613", "gpt-3.5-turbo-0613", 20.0),
    ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-0125", 20.0),
    ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini-2025-04-14", 40.0),
    ("openai", "o1-2024-12-17", "o1-2024-12-17", 44.0),
    ("openai", "o1-preview-2024-09-12", "o1-preview-2024-09-12", 55.0),
    ("openai", "o1-mini-2024-09-12", "o1-mini-2024-09-12", 8.0),
    ("openai", "o3-2025-04-16", "o3-2025-04-16", 44.0),
    ("openai", "o3-mini-2025-01-31", "o3-mini-2025-01-31", 8.0),
    ("openai", "gpt-5-2025-08-07", "gpt-5-2025-08-07", 30.0),
    ("azure.ai.openai", "openai/gpt-4o-2024-11-20", "gpt-4o-2024-11-20", 44.0),
    # Mistral AI: Mistral Large 2 is not Mistral Large 3, Small 2 is not Small 4
    ("mistral_ai", "mistral-large-2402", "mistral-large-2402", 123.0),
    ("mistral_ai", "mistral-large-2407", "mistral-large-2407", 123.0),
    ("mistral_ai", "mistral-large-2411", "mistral-large-2411", 123.0),
    ("mistral_ai", "mistral-large-2409", "mistral-large-2407", 123.0),
    ("mistral_ai", "mistral-large-2512", "mistral-large-2512", 41.0),
    ("mistral_ai", "mistral-large-latest", "mistral-large-latest", 41.0),
    ("mistral_ai", "mistral-large", "mistral-large-latest", 41.0),  # undated: the alias
    ("aws.bedrock", "mistral.mistral-large-2407-v1:0", "mistral-large-2407", 123.0),
    ("aws.bedrock", "mistral.mixtral-8x7b-instruct-v0:1", "open-mixtral-8x7b", 12.9),
    ("mistral_ai", "mistral-small-2402", "mistral-small-2402", 23.6),
    ("mistral_ai", "mistral-small-2409", "mistral-small-2409", 22.2),
    ("mistral_ai", "mistral-small-2501", "mistral-small-2501", 23.6),
    ("mistral_ai", "mistral-small-2503", "mistral-small-2503", 24.0),
    ("mistral_ai", "mistral-small-2603", "mistral-small-2603", 8.0),
    ("mistral_ai", "mistral-medium-2312", "mistral-medium-2312", 70.0),
    ("mistral_ai", "mistral-medium-2505", "mistral-medium-2505", 70.0),
    ("mistral_ai", "mistral-medium-2604", "mistral-medium-2604", 128.0),
    ("mistral_ai", "open-mistral-nemo", "open-mistral-nemo", 12.2),
    ("mistral_ai", "open-mistral-nemo-2407", "open-mistral-nemo-2407", 12.2),
    ("mistral_ai", "open-mistral-7b", "open-mistral-7b", 7.3),
    ("mistral_ai", "open-mixtral-8x7b", "open-mixtral-8x7b", 12.9),
    ("mistral_ai", "open-mixtral-8x22b-2404", "open-mixtral-8x22b-2404", 39.1),
    ("mistral_ai", "codestral-2405", "codestral-2405", 22.2),
    ("mistral_ai", "codestral-2501", "codestral-2501", 22.2),
    ("mistral_ai", "codestral-2508", "codestral-2508", 22.2),
    ("mistral_ai", "ministral-3b-2410", "ministral-3b-2410", 3.0),
    ("mistral_ai", "ministral-8b-2410", "ministral-8b-2410", 8.02),
    ("mistral_ai", "ministral-8b-2512", "ministral-8b-2512", 8.02),
    ("mistral_ai", "pixtral-12b-2409", "pixtral-12b-2409", 12.4),
    ("mistral_ai", "pixtral-large-2411", "pixtral-large-2411", 124.0),
    ("mistral_ai", "pixtral-large-latest", "pixtral-large-2411", 124.0),
    # Anthropic: each Claude generation its own card, Bedrock ids included
    ("anthropic", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620", 55.0),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022", 55.0),
    ("anthropic", "anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620", 55.0),
    ("gcp.vertex_ai", "claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620", 55.0),
    ("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-20241022", 55.0),
    ("anthropic", "anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022", 55.0),
    ("anthropic", "claude-3-5-sonnet", "claude-3-5-sonnet-latest", 55.0),  # undated: the alias
    ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-20250219", 44.0),
    ("anthropic", "claude-3-haiku-20240307", "claude-3-haiku-20240307", 30.0),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022", 8.0),
    ("anthropic", "claude-3-opus-20240229", "claude-3-opus-20240229", 250.0),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514", 44.0),
    ("anthropic", "claude-opus-4-20250514", "claude-opus-4-20250514", 200.0),
    ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1-20250805", 200.0),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", 44.0),
    ("anthropic", "us.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5-20251101", 67.0),
    ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", 10.0),
    # Google, Cohere
    ("gcp.gemini", "gemini-1.5-pro-002", "gemini-1.5-pro-002", 55.0),
    ("gcp.gemini", "gemini-1.5-flash-001", "gemini-1.5-flash-001", 20.0),
    ("gcp.gemini", "gemini-2.0-flash-001", "gemini-2.0-flash-001", 44.0),
    ("gcp.gemini", "gemini-2.5-pro-preview-06-05", "gemini-2.5-pro-preview-06-05", 250.0),
    ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", 44.0),
    ("cohere", "command-r-03-2024", "command-r-03-2024", 32.3),
    ("cohere", "command-r-08-2024", "command-r-08-2024", 32.3),
    ("cohere", "command-r-plus-04-2024", "command-r-plus-04-2024", 104.0),
    ("cohere", "command-a-03-2025", "command-a-03-2025", 111.0),
    # open-weight families through OpenAI-compatible APIs (any provider)
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama-3.3-70b-instruct", 70.6),
    ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-instruct", 70.6),
    ("aws.bedrock", "meta.llama3-1-70b-instruct-v1:0", "meta-llama/Meta-Llama-3.1-70B", 70.55),
    ("azure.ai.openai", "gpt-35-turbo-0613", "gpt-35-turbo", 20.0),
    ("ollama", "llama3.1:70b", "meta-llama/Meta-Llama-3.1-70B", 70.55),
    ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "meta-llama/Meta-Llama-3.1-8B", 8.03),
    ("ollama", "llama3:8b", "meta-llama/Meta-Llama-3-8B", 8.03),
    ("ollama", "mistral:7b", "open-mistral-7b", 7.3),
    ("ollama", "llama2:13b", "meta-llama/Llama-2-13b", 13.0),
    ("ollama", "llama3.2:3b", "llama-3.2-3b-instruct", 3.21),
    ("groq", "meta-llama/llama-4-scout-17b-16e-instruct", "llama-4-scout-17b-16e-instruct", 17.0),
    ("together", "Llama-4-Maverick-17B-128E-Instruct-FP8", "llama-4-maverick-17b-128e-instruct", 17.0),
    ("openrouter", "qwen/qwen-2.5-72b-instruct", "qwen2.5-72b-instruct", 72.7),
    ("ollama", "qwen2.5:7b", "qwen2.5-7b-instruct", 7.61),
    ("fireworks", "Qwen/Qwen3-235B-A22B", "qwen3-235b-a22b", 22.0),
    ("ollama", "qwen3:30b", "qwen3-30b-a3b", 3.3),
    ("deepseek", "deepseek-chat", "deepseek-v3", 37.0),
    ("deepseek", "deepseek-reasoner", "deepseek-r1", 37.0),
    ("together", "deepseek-ai/DeepSeek-V3", "deepseek-v3", 37.0),
    ("together", "deepseek-ai/DeepSeek-R1-0528", "deepseek-r1", 37.0),
    ("openrouter", "deepseek/deepseek-v2.5", "deepseek-v2.5", 21.0),
    ("ollama", "gemma2:9b", "google/gemma-2-9b", 9.24),
    ("gcp.gemini", "gemma-3-27b-it", "gemma-3-27b-it", 27.4),
    ("groq", "mixtral-8x7b-32768", "open-mixtral-8x7b", 12.9),
    ("ollama", "mistral-nemo", "open-mistral-nemo", 12.2),
    ("hf", "mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", 7.25),
    # audited spellings (issue 14 review): each is its own generation, by pattern, not by string
    ("openai", "gpt-4.1-2025-04-14", "gpt-4.1-2025-04-14", 35.0),
    ("openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano-2025-04-14", 10.0),
    ("openai", "o4-mini-2025-04-16", "o4-mini-2025-04-16", 8.0),
    ("openai", "gpt-5-mini-2025-08-07", "gpt-5-mini-2025-08-07", 25.0),
    ("openai", "gpt-4.1-2025-06-01", "gpt-4.1-2025-04-14", 35.0),  # after the last known release
    ("openai", "ft:gpt-3.5-turbo-0613:acme::7qTVM5AR", "gpt-3.5-turbo-0613", 20.0),  # fine-tune
    ("openai", "ft:gpt-4o-mini-2024-07-18:my-org::abc123", "gpt-4o-mini-2024-07-18", 8.0),
    ("openai", "ＧＰＴ-４ｏ", "gpt-4o", 44.0),  # full-width
    ("openai", "gpt\u200b-4o\x00", "gpt-4o", 44.0),  # zero-width space, NUL
    ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4-20250514", 44.0),  # Anthropic's aliases
    ("anthropic", "claude-opus-4-0", "claude-opus-4-20250514", 200.0),
    ("anthropic", "claude-opus-4-1", "claude-opus-4-1-20250805", 200.0),
    ("anthropic", "claude-3-haiku", "claude-3-haiku-20240307", 30.0),
    ("openrouter", "anthropic/claude-opus-4.1", "claude-opus-4-1-20250805", 200.0),
    ("openrouter", "anthropic/claude-sonnet-4", "claude-sonnet-4-20250514", 44.0),
    ("openrouter", "anthropic/claude-3.7-sonnet:thinking", "claude-3-7-sonnet-latest", 44.0),
    ("aws.bedrock", "apac.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620", 55.0),
    ("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929", 44.0),
    ("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0:48k", "claude-3-haiku-20240307", 30.0),
    ("aws.bedrock", "anthropic.claude-v2:1", "claude-2.1", 130.0),
    ("aws.bedrock", "anthropic.claude-instant-v1", "claude-instant-1.2", 20.0),
    ("aws.bedrock", "us.meta.llama4-maverick-17b-instruct-v1:0", "llama-4-maverick-17b-128e-instruct", 17.0),
    ("gcp.vertex_ai", "claude-opus-4-1@20250805", "claude-opus-4-1-20250805", 200.0),
    ("gcp.vertex_ai", "publishers/anthropic/models/claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-20241022", 55.0),
    ("gcp.gemini", "gemini-1.5-pro-exp-0801", "gemini-1.5-pro", 55.0),  # experimental snapshots
    ("gcp.gemini", "gemini-2.5-pro-exp-03-25", "gemini-2.5-pro", 200.0),
    ("gcp.gemini", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash", 44.0),
    ("gcp.gemini", "gemini-2.5-flash-lite-preview-09-2025", "gemini-2.5-flash-lite", 8.0),
    ("gcp.gemini", "gemini-pro", "gemini-1.0-pro", 20.0),  # the 2023 alias, not gemini-pro-latest
    ("gcp.gemini", "models/gemini-1.5-pro-002", "gemini-1.5-pro-002", 55.0),
    ("openrouter", "google/gemini-2.0-flash-exp:free", "gemini-2.0-flash-exp", 55.0),
    ("azure.ai.inference", "Cohere-command-r-plus-08-2024", "command-r-plus-08-2024", 104.0),
    ("groq", "llama3-8b-8192", "meta-llama/Meta-Llama-3-8B", 8.03),  # Groq's context length
    ("groq", "llama3-70b-8192", "meta-llama/Meta-Llama-3-70B", 70.55),
    ("groq", "llama-3.1-8b-instant", "meta-llama/Meta-Llama-3.1-8B", 8.03),
    ("groq", "llama-3.3-70b-specdec", "llama-3.3-70b-instruct", 70.6),
    ("groq", "gemma2-9b-it", "google/gemma-2-9b", 9.24),
    ("groq", "moonshotai/kimi-k2-instruct", "kimi-k2-instruct", 32.0),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-70b-instruct", "meta-llama/Meta-Llama-3.1-70B", 70.55),
    ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct", "llama-3.3-70b-instruct", 70.6),
    ("fireworks", "accounts/fireworks/models/qwen2p5-72b-instruct", "qwen2.5-72b-instruct", 72.7),
    ("fireworks", "accounts/fireworks/models/llama4-scout-instruct-basic", "llama-4-scout-17b-16e-instruct", 17.0),
    ("fireworks", "accounts/fireworks/models/deepseek-r1-0528", "deepseek-r1", 37.0),
    ("together", "Qwen/Qwen3-235B-A22B-fp8-tput", "qwen3-235b-a22b", 22.0),
    ("together", "mistralai/Mixtral-8x22B-Instruct-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1", 39.1),
    ("together", "google/gemma-2-9b-it", "google/gemma-2-9b-it", 9.24),
    ("ollama", "qwen2.5:72b", "qwen2.5-72b-instruct", 72.7),
    ("ollama", "qwen2.5:72b-instruct-q4_K_M", "qwen2.5-72b-instruct", 72.7),  # quantisations
    ("ollama", "llama3.1:70b-instruct-q4_0", "meta-llama/Meta-Llama-3.1-70B", 70.55),
    ("vllm", "Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", "qwen2.5-72b-instruct", 72.7),
    ("vllm", "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", "llama-3.2-3b-instruct", 3.21),
    ("openrouter", "meta-llama/llama-3.1-8b-instruct:free", "meta-llama/Meta-Llama-3.1-8B", 8.03),
    ("openrouter", "deepseek/deepseek-chat-v3-0324:free", "deepseek-v3", 37.0),
    ("deepinfra", "microsoft/phi-4", "phi-4", 14.7),
    ("ollama", "phi4", "phi-4", 14.7),
    ("deepseek", "deepseek-v2", "deepseek-v2", 21.0),  # "-v2" is a generation, not an API version
]  # fmt: skip


# (provider, name as called, the size class it must be estimated from): a name without a card is
# estimated, and the flag says from which class; never a newer generation's or another family's card
ESTIMATED = [
    ("gcp.gemini", "gemini-2.0-pro-exp-02-05", "large"),  # "gemini" is no "mini"
    ("gcp.gemini", "gemini-exp-1206", "default"),
    ("openai", "gpt-4.5-preview-2025-02-27", "default"),
    ("openai", "gpt-4o-2024-05-01", "default"),  # older than every gpt-4o release
    ("openai", "gpt-4-9999", "default"),  # not a date: no family card
    ("anthropic", "claude-3-5-sonnet-20240101", "large"),  # older than Claude 3.5 Sonnet
    ("mistral_ai", "mistral-large-2312", "large"),
    ("mistral_ai", "codestral-2402", "default"),
    ("deepseek", "deepseek-v4", "default"),  # a newer generation is not deepseek-v3
    ("deepseek", "deepseek-v3.5", "default"),
    ("together", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "explicit_dense"),  # not DeepSeek-R1
    ("groq", "deepseek-r1-distill-llama-70b", "explicit_dense"),
    ("ollama", "deepseek-r1:7b", "explicit_dense"),
    ("groq", "llama3-groq-70b-8192-tool-use-preview", "explicit_dense"),
    ("ollama", "mistral-small3.1", "mini"),
    ("ollama", "tinyllama", "nano"),
    ("aws.bedrock", "amazon.nova-micro-v1:0", "mini"),
    ("openai", "", "default"),  # an empty or variant-only name is no model's card
    ("openai", "   ", "default"),
    ("openai", "instruct", "default"),
    ("openai", "::::", "default"),
    ("openai", "模型", "default"),
    ("openai", "x" * 10_000, "default"),
    ("openai", "q4_" * 100_000, "default"),
    ("openai", "-2407" * 20_000, "default"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "size_class"), ESTIMATED)
def test_a_name_without_a_card_is_estimated_and_says_from_which_class(
    provider: str, model: str, size_class: str
) -> None:
    registry()  # loaded once per process: not part of the time a name takes
    start = time.perf_counter()
    spec = _resolve(provider, model)
    assert time.perf_counter() - start < 0.05
    assert spec.name == model
    assert spec.flags == ("model_estimated", f"model_size_class_{size_class}")


def test_hostile_names_never_raise_and_stay_fast() -> None:
    names = ["", "\x00", "\u200b", "-latest", ":0", "ft:", "ft::", "@", "-v1:0" * 5000,
             "a" * 1_000_000, "gemini" * 100_000, "_q4" * 300_000, "70b-a" * 50_000,
             "Mistral-Large-2407" + " " * 10_000, "\ud800", "é" * 50_000]  # fmt: skip
    registry()
    for name in names:
        start = time.perf_counter()
        spec = _resolve("openai", name)
        assert time.perf_counter() - start < 0.05, name[:20]
        assert spec.active_params_billion.low > 0


@pytest.mark.parametrize(("provider", "model", "card", "active_low"), IDENTITY)
def test_a_name_is_priced_as_its_own_generation(
    provider: str, model: str, card: str, active_low: float
) -> None:
    spec = _resolve(provider, model)
    assert spec.name == card
    assert spec.active_params_billion.low == pytest.approx(active_low)
    assert "model_estimated" not in spec.flags
    if spec.name != model:
        assert "model_name_normalised" in spec.flags
        assert f"model_card_{re.sub('[^a-z0-9]+', '_', card.lower()).strip('_')}" in spec.flags


def test_mistral_large_2_is_not_priced_as_mistral_large_3() -> None:
    """The issue's case: 1.14 g and 45 mL, not 1.14 x 41/123 = 0.38 g."""
    fp = llm.llm_call(
        provider="mistral_ai",
        model="mistral-large-2407",
        input_tokens=0,
        output_tokens=400,
        latency_s=None,
        method="mistral-lca-2025",
    )
    assert fp.total.co2e_g == pytest.approx(1.14, rel=0.01)
    assert fp.total.water_l == pytest.approx(0.045, rel=0.01)
    assert "model_arch_multimodal" not in fp.flags and "model_name_normalised" not in fp.flags
    assert {"model_card_supplement", "model_card_mistral_large_2407"} <= set(fp.flags)


# Every dated name in the registry and the cards, by family: (date, name) oldest first.
_DATE = re.compile(
    r"^(?P<stem>.+?)[-@](?:(?P<y>20\d\d)-?(?P<m>\d\d)-?(?P<d>\d\d)|(?P<mm>\d\d)-(?P<yyyy>20\d\d)"
    r"|(?P<yy>2[2-9]|3\d)(?P<m2>0[1-9]|1[0-2]))$"
)


Release = tuple[tuple[int, int, int], str, str, str]  # date, name, card priced, provider


def _short(name: str) -> str:
    return name.lower().rsplit("/", 1)[-1]


def _dated_names() -> dict[str, list[Release]]:
    families: dict[str, list[Release]] = {}
    rows = [(m["provider"], n, m["name"]) for m in ECOLOGITS for n in (m["name"], *m["aliases"])]
    rows += [(c["provider"], n, c["name"]) for c in CARDS for n in (c["name"], *c["aliases"])]
    for provider, name, card in rows:
        m = _DATE.match(name.lower().rsplit("/", 1)[-1])
        if m is None:
            continue
        if m["y"]:
            when = (int(m["y"]), int(m["m"]), int(m["d"]))
        elif m["yyyy"]:
            when = (int(m["yyyy"]), int(m["mm"]), 0)
        else:
            when = (2000 + int(m["yy"]), int(m["m2"]), 0)
        families.setdefault(m["stem"], []).append((when, name, card, provider))
    return {k: sorted(v) for k, v in families.items()}


DATED = _dated_names()


def _later(name: str) -> str | None:
    """The same name one day (or month, for YYMM) later, in the same format."""
    m = _DATE.match(name)
    if m is None:
        return None
    if m["y"]:
        day = dt.date(int(m["y"]), int(m["m"]), int(m["d"])) + dt.timedelta(days=1)
        sep = "-" if re.search(r"\d{4}-\d\d-\d\d$", name) else ""
        return f"{m['stem']}-{day.year}{sep}{day.month:02d}{sep}{day.day:02d}"
    if m["yy"]:
        yy, mo = int(m["yy"]), int(m["m2"]) + 1
        yy, mo = (yy + 1, 1) if mo > 12 else (yy, mo)
        return f"{m['stem']}-{yy:02d}{mo:02d}"
    return None


@pytest.mark.parametrize("family", sorted(DATED))
def test_every_dated_family_resolves_each_date_to_its_own_generation(family: str) -> None:
    releases = DATED[family]
    latest_aliases = {n for n in registry().lower if n.endswith("-latest")}
    for _, name, card, provider in releases:
        assert _resolve(provider, name).name == card
        later = _later(_short(name))
        if later is None or any(_short(n) == later for _, n, _, _ in releases):
            continue
        spec = _resolve(provider, later)
        # its own generation: the card of the newest release dated at or before it
        expected = [c for w, _, c, _ in releases if w <= _key(later)][-1]
        assert spec.name == expected, later
        assert spec.name not in latest_aliases
    # older than every release: estimated, never the family's undated or -latest card
    first = _short(releases[0][1])
    older = re.sub(r"(\d)$", lambda d: str(int(d[1]) - 1) if d[1] != "0" else "0", first)
    if older != first and _DATE.match(older) and _key(older) < releases[0][0]:
        spec = _resolve(releases[0][3], older)
        assert not spec.name.endswith("-latest")
        assert _short(spec.name) != family


def _key(name: str) -> tuple[int, int, int]:
    m = _DATE.match(name)
    assert m is not None
    if m["y"]:
        return (int(m["y"]), int(m["m"]), int(m["d"]))
    if m["yyyy"]:
        return (int(m["yyyy"]), int(m["mm"]), 0)
    return (2000 + int(m["yy"]), int(m["m2"]), 0)


def test_a_name_older_than_its_family_is_estimated_not_the_latest_card() -> None:
    spec = _resolve("mistral_ai", "mistral-large-2312")
    assert "model_estimated" in spec.flags
    assert spec.name == "mistral-large-2312"
    fp = llm.llm_call(
        provider="mistral_ai",
        model="gpt-4o-2024-05-01",
        input_tokens=0,
        output_tokens=10,
        latency_s=None,
    )
    assert "model_estimated" in fp.flags


# ---- the cards ---------------------------------------------------------------------------------

_URL = re.compile(r"^https://[a-z0-9.-]+\.[a-z]{2,}/\S*$")


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c["name"])
def test_each_card_is_loaded_and_cited(card: dict[str, Any]) -> None:
    assert _URL.match(card["source"]), card["source"]
    date = dt.date.fromisoformat(card["source_date"])
    assert dt.date(2023, 1, 1) <= date <= dt.date(2026, 12, 31)
    assert len(card["licence"]) > 10
    assert card["architecture"] in ("dense", "moe")
    assert isinstance(card["estimated"], bool)
    if card.get("via"):
        assert (
            "EcoLogits" in card["via"]
            and "https://github.com/genai-impact/ecologits" in card["via"]
        )
    total, active = card["total_params_billion"], card["active_params_billion"]
    lo = lambda b: b["min"] if isinstance(b, dict) else b  # noqa: E731
    hi = lambda b: b["max"] if isinstance(b, dict) else b  # noqa: E731
    assert 0 < lo(active) <= hi(active) <= hi(total) < 10_000
    if card["architecture"] == "dense":
        assert total == active
    else:
        assert hi(active) < lo(total)
    if card["estimated"]:
        assert "model-arch-not-released" in card["warnings"]
    else:
        assert not isinstance(active, dict)  # a published figure is one number
    for name in (card["name"], *card["aliases"]):
        assert (card["provider"], name) in registry().cards
        spec = _resolve(card["provider"], name)
        assert spec.name == card["name"]
        assert spec.active_params_billion.low == lo(active)
        assert spec.total_params_billion.high == hi(total)
        assert "model_card_supplement" in spec.flags


def test_no_card_shadows_a_model_ecologits_lists() -> None:
    """EcoLogits first: its models price exactly as EcoLogits, so no card may take their name."""
    theirs = set()
    for m in ECOLOGITS:
        for n in (m["name"], *m["aliases"]):
            theirs |= {n.lower(), n.lower().rsplit("/", 1)[-1]}
    names = [n.lower() for c in CARDS for n in (c["name"], *c["aliases"])]
    assert len(names) == len(set(names)), "a name on two cards"
    assert not theirs & set(names)


def test_published_mistral_sizes() -> None:
    by_name = {c["name"]: c for c in CARDS}
    assert by_name["mistral-large-2407"]["total_params_billion"] == 123.0
    assert by_name["mistral-large-2407"]["source"] == "https://mistral.ai/news/mistral-large-2407"
    assert by_name["open-mistral-nemo"]["active_params_billion"] == 12.2
    assert not by_name["open-mistral-nemo"]["estimated"]


# ---- the same identity in serve and in process ---------------------------------------------------


def test_the_accounting_keeps_the_reported_name_and_prices_the_resolved_card() -> None:
    registry_ = CollectorRegistry()
    acc = Accountant(Engine(EngineConfig()), registry=registry_)
    attrs = {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "mistral_ai",
        A.GEN_AI_REQUEST_MODEL: "Mistral-Large-2407",
        A.GEN_AI_USAGE_INPUT_TOKENS: 100,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 400,
    }
    assert acc.account(attrs, service_name="s", kind="CLIENT")
    labels = {
        s.labels.get("gen_ai_request_model")
        for f in registry_.collect()
        for s in f.samples
        if s.name == M.GEN_AI_CALLS
    }
    assert labels == {"Mistral-Large-2407"}
    co2e = sum(s.value for f in registry_.collect() for s in f.samples if s.name == M.CO2E)
    expected = Engine(EngineConfig()).llm_call(
        provider="mistral_ai",
        model="mistral-large-2407",
        input_tokens=100,
        output_tokens=400,
        latency_s=None,
    )
    assert co2e == pytest.approx(expected.total.co2e_g, rel=1e-9)
    unknown = [s for f in registry_.collect() for s in f.samples if s.name == M.UNKNOWN]
    assert not any(s.labels.get("kind") == "model" and s.value for s in unknown)


# ---- speed ---------------------------------------------------------------------------------------


def test_loading_stays_fast() -> None:
    """Registry and cards load once per process, lazily; resolution is cached per name."""
    code = (
        "import time; t0 = time.perf_counter();"
        "from otel_downstream.exporters.engine.llm.call import llm_call;"
        "t1 = time.perf_counter();"
        "llm_call(provider='mistral_ai', model='mistral-large-2407', input_tokens=1,"
        " output_tokens=1, latency_s=None);"
        "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    import_s, first_call_s = float(out[0]), float(out[1])
    assert import_s < 1.0 and first_call_s < 0.5, (import_s, first_call_s)
    start = time.perf_counter()
    for _ in range(1000):
        _resolve("mistral_ai", "mistral-large-2409")
    assert (time.perf_counter() - start) / 1000 < 5e-5
