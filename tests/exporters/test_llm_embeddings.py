"""Embedding calls: priced as one forward pass over the input tokens, never as a generative model."""

from __future__ import annotations

import math
from typing import Any

import pytest

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm.embeddings import EMBEDDING_METHOD, embedding_spec
from otel_downstream.exporters.engine.llm.registry import Bounds, registry
from otel_downstream.exporters.footprint import InputError

WH = 3600.0


def _data() -> dict[str, Any]:
    data: dict[str, Any] = registry().methods["embeddings"]
    return data


def _it_wh_per_token(params_billion: float) -> float:
    d = _data()
    per_b = (
        d["reference_input_token_wh"] / d["reference_pue"] / d["reference_active_params_billion"]
    )
    return float(per_b * params_billion)


def _embed(model: str, tokens: int = 10_000, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "provider": "openai",
        "model": model,
        "input_tokens": tokens,
        "output_tokens": 0,
        "latency_s": 0.4,
        "operation": "embeddings",
    }
    args.update(kw)
    return llm.llm_call(**args)


def test_text_embedding_3_large_is_a_forward_pass_not_a_large_chat_model() -> None:
    fp = _embed("text-embedding-3-large")
    chat = llm.llm_call(
        provider="openai", model="gpt-4o", input_tokens=10_000, output_tokens=0, latency_s=0.4
    )
    assert fp.method == EMBEDDING_METHOD
    assert fp.data_version.startswith(EMBEDDING_METHOD)
    assert "embedding_estimated" in fp.flags
    assert "model_estimated" in fp.flags  # OpenAI publishes no size: the range is used
    assert not any(f.startswith("model_size_class") for f in fp.flags)
    assert fp.total.energy_j < chat.total.energy_j / 10
    pue = registry().providers["openai"].pue
    size = _data()["unknown_size_params_billion"]
    assert fp.low is not None and fp.high is not None
    assert math.isclose(fp.low.energy_j / WH, pue.low * 1e4 * _it_wh_per_token(size["min"]))
    assert math.isclose(fp.high.energy_j / WH, pue.high * 1e4 * _it_wh_per_token(size["max"]))
    assert fp.low.energy_j < fp.total.energy_j < fp.high.energy_j


def test_size_words_in_embedding_names_are_not_generative_size_classes() -> None:
    large = _embed("text-embedding-3-large")
    small = _embed("text-embedding-3-small")
    assert large.total == small.total
    assert large.low == small.low


def test_energy_scales_with_input_tokens_only() -> None:
    one = _embed("mistral-embed", tokens=1_000, provider="mistral_ai")
    ten = _embed("mistral-embed", tokens=10_000, provider="mistral_ai")
    with_output = _embed("mistral-embed", tokens=1_000, provider="mistral_ai", output_tokens=500)
    assert math.isclose(ten.total.energy_j, 10 * one.total.energy_j)
    assert with_output.total == one.total
    assert _embed("mistral-embed", tokens=0, provider="mistral_ai").total.energy_j == 0.0


def test_published_model_card_size_gives_a_single_value() -> None:
    fp = _embed("BAAI/bge-large-en-v1.5")
    pue = registry().providers["openai"].pue
    assert fp.low is None or not pue.is_range
    low = fp.low or fp.total
    assert math.isclose(low.energy_j / WH, pue.low * 1e4 * _it_wh_per_token(0.335))
    assert "model_estimated" not in fp.flags


def test_size_written_in_the_name_is_used() -> None:
    seven = _embed("gte-qwen2-7b-instruct")
    small = _embed("my-encoder-110m")
    assert math.isclose(
        (seven.low or seven.total).energy_j, (small.low or small.total).energy_j * 7 / 0.11
    )


@pytest.mark.parametrize("operation", [None, "chat", "text_completion"])
def test_an_embedding_model_name_is_priced_as_one_whatever_the_operation(
    operation: str | None,
) -> None:
    fp = _embed("text-embedding-3-large", operation=operation)
    assert fp.method == EMBEDDING_METHOD
    assert "operation_from_model_name" in fp.flags
    assert fp.total == _embed("text-embedding-3-large").total
    assert "operation_from_model_name" not in _embed("text-embedding-3-large").flags


def _listed() -> list[str]:
    return [m["name"] for m in _data()["models"]]


@pytest.mark.parametrize("model", _listed())
def test_every_model_the_method_lists_is_an_embedding_by_name(model: str) -> None:
    fp = _embed(model, operation=None)
    assert fp.method == EMBEDDING_METHOD
    assert "operation_from_model_name" in fp.flags
    assert "model_estimated" not in fp.flags  # its card's size, not the range
    assert fp.total == _embed(model).total


@pytest.mark.parametrize(
    ("model", "params_billion"),
    [
        ("BAAI/bge-small-en-v1.5", 0.0334),
        ("sentence-transformers/all-MiniLM-L6-v2", 0.023),
        ("all-minilm", 0.023),
        ("all-minilm:latest", 0.023),
        ("thenlper/gte-large", 0.335),
        ("intfloat/e5-mistral-7b-instruct", 7.11),
    ],
)
def test_open_embedders_without_embed_in_the_name_get_their_cards_size(
    model: str, params_billion: float
) -> None:
    fp = _embed(model, operation=None, provider="acme")
    pue = registry().providers["huggingface_hub"].pue
    assert fp.method == EMBEDDING_METHOD
    assert math.isclose(
        (fp.low or fp.total).energy_j / WH, pue.low * 1e4 * _it_wh_per_token(params_billion)
    )


def test_an_ollama_tag_with_another_size_is_not_read_as_the_default() -> None:
    tagged = _embed("all-minilm:33m", operation=None)
    assert tagged.method == EMBEDDING_METHOD
    assert "model_estimated" in tagged.flags  # the size came from the tag, not a card
    low = (tagged.low or tagged.total).energy_j / WH
    pue = registry().providers["openai"].pue
    assert math.isclose(low, pue.low * 1e4 * _it_wh_per_token(0.033))
    other = _embed("all-minilm:l12-v2", operation=None)
    assert other.method == EMBEDDING_METHOD and "model_estimated" in other.flags


def test_the_singular_operation_is_an_embedding_too() -> None:
    fp = _embed("my-encoder", operation="embedding")
    assert fp.method == EMBEDDING_METHOD
    assert "operation_from_model_name" not in fp.flags
    assert fp.total == _embed("my-encoder").total


@pytest.mark.parametrize("model", ["gpt-4o", "llama-3.1-8b", "mistral-large-latest", "gemma-2b"])
def test_generative_names_stay_generative_without_an_operation(model: str) -> None:
    fp = llm.llm_call(
        provider="openai", model=model, input_tokens=100, output_tokens=10, latency_s=None
    )
    assert fp.method == llm.DEFAULT_METHOD


def test_generative_calls_are_unchanged_by_the_operation() -> None:
    def gpt(operation: str | None) -> Any:
        return llm.llm_call(
            provider="openai",
            model="gpt-4o",
            input_tokens=100,
            output_tokens=10,
            latency_s=None,
            operation=operation,
        )

    assert gpt("chat").method == llm.DEFAULT_METHOD
    assert gpt("chat").total == gpt(None).total == gpt("text_completion").total


@pytest.mark.parametrize("method", llm.METHODS)
def test_every_configured_method_prices_embeddings_the_same_way(method: str) -> None:
    fp = _embed("text-embedding-3-small", method=method)
    assert fp.method == EMBEDDING_METHOD
    assert fp.total == _embed("text-embedding-3-small").total
    assert fp.total.co2e_g > 0  # mistral-lca-2025 is per output token: 0 for an embedding


def test_parts_and_embodied_add_up_and_can_be_left_out() -> None:
    fp = _embed("text-embedding-3-large")
    usage, embodied = fp.parts["usage"], fp.parts["embodied"]
    assert embodied.total.co2e_g == pytest.approx(fp.embodied.co2e_g)
    assert fp.embodied.co2e_g > 0
    assert usage.total.co2e_g + embodied.total.co2e_g == pytest.approx(fp.total.co2e_g)
    bare = _embed("text-embedding-3-large", include_embodied=False)
    assert bare.embodied.co2e_g == 0.0
    assert "embodied_excluded" in bare.flags
    assert bare.total.energy_j == fp.total.energy_j


def test_zone_and_provider_apply_as_for_any_call() -> None:
    fra = _embed("text-embedding-3-large", zone="FR")
    usa = _embed("text-embedding-3-large", zone="US")
    assert fra.total.energy_j == usa.total.energy_j
    assert fra.total.co2e_g < usa.total.co2e_g
    assert "provider_unknown" in _embed("text-embedding-3-large", provider="acme").flags


@pytest.mark.parametrize("operation", [3, b"embeddings", ["embeddings"]])
def test_bad_operation_names_the_field(operation: object) -> None:
    with pytest.raises(InputError) as info:
        _embed("text-embedding-3-large", operation=operation)
    assert info.value.field == "operation"


def test_engine_passes_the_operation() -> None:
    fp = Engine(EngineConfig()).llm_call(
        provider="openai",
        model="text-embedding-3-large",
        input_tokens=500,
        output_tokens=0,
        latency_s=None,
        operation="embeddings",
    )
    assert fp.method == EMBEDDING_METHOD


def test_every_number_has_a_unit_year_source_and_licence() -> None:
    d = _data()
    for key in ("source", "year", "licence", "unknown_size_why", "unknown_size_licence"):
        assert d[key]
    assert d["reference_input_token_wh_unit"] and d["reference_gpu_power_unit"]
    assert d["method"] == EMBEDDING_METHOD
    for model in d["models"]:
        assert model["source"].startswith("https://") and model["params_billion"] > 0


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("all-minilm:l6-v2", 0.023),  # a variant the data lists
        ("bge-large-en-v1.5:f16", 0.335),  # number format only
        ("bge-large-en-v1.5:q4_0", 0.335),
        ("all-minilm:latest", 0.023),
    ],
)
def test_ollama_tags_that_keep_the_size_keep_the_card(model: str, params: float) -> None:
    spec = embedding_spec(model)
    assert spec.params_billion == Bounds(params, params)
    assert "model_estimated" not in spec.flags
