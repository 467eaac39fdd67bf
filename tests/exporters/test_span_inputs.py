"""Span attributes -> input records: current and deprecated names, validation, sampling weight."""

from __future__ import annotations

import math

import pytest

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.sampling_weight import (
    adjusted_count,
    adjusted_count_from_ot,
)
from otel_downstream.exporters.accounting.span_inputs import (
    ENGAGEMENT_SPAN_NAME,
    SpanRejected,
    classify,
    gen_ai_input,
    host_input,
    http_input,
    normalize_kind,
)

HTTP = {
    A.HTTP_REQUEST_METHOD: "GET",
    A.HTTP_REQUEST_BODY_SIZE: 120,
    A.HTTP_RESPONSE_BODY_SIZE: 4000,
}
GEN_AI = {
    A.GEN_AI_OPERATION_NAME: "chat",
    A.GEN_AI_PROVIDER_NAME: "openai",
    A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    A.GEN_AI_USAGE_INPUT_TOKENS: 10,
    A.GEN_AI_USAGE_OUTPUT_TOKENS: 20,
}


@pytest.mark.parametrize(
    ("attrs", "name", "kind", "expected"),
    [
        (HTTP, "GET /", "SERVER", "http"),
        ({A.HTTP_METHOD_OLD: "GET"}, "GET", "SPAN_KIND_SERVER", "http"),
        (HTTP, "GET", "CLIENT", None),  # outgoing calls are not served requests
        (GEN_AI, "chat gpt-4o-mini", "CLIENT", "gen_ai"),
        ({A.GEN_AI_SYSTEM: "openai"}, "openai.chat", "CLIENT", "gen_ai"),  # pre-1.37 marking
        # the Vercel AI SDK's doGenerate span: INTERNAL, gen_ai.system and usage, no operation
        (
            {A.GEN_AI_SYSTEM: "openai", A.GEN_AI_USAGE_INPUT_TOKENS: 9},
            "doGenerate",
            "INTERNAL",
            "gen_ai",
        ),
        (
            {A.GEN_AI_SYSTEM: "openai", A.GEN_AI_USAGE_OUTPUT_TOKENS: 9},
            "chat",
            "",
            "gen_ai",
        ),  # no kind
        ({A.GEN_AI_SYSTEM: "crewai"}, "crewai.workflow", "INTERNAL", None),  # decoration only
        ({**GEN_AI, A.GEN_AI_OPERATION_NAME: "invoke_agent"}, "agent", "INTERNAL", None),
        ({}, A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME, "INTERNAL", "host"),
        ({}, ENGAGEMENT_SPAN_NAME, "INTERNAL", "engagement"),
        ({"db.system": "postgresql"}, "SELECT", "CLIENT", None),
    ],
)
def test_classify(attrs: dict[str, object], name: str, kind: str, expected: str | None) -> None:
    assert classify(attrs, name, kind) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["SERVER", "server", "SPAN_KIND_SERVER", "SpanKind.SERVER"])
def test_kind_spellings(kind: str) -> None:
    assert normalize_kind(kind) == "SERVER"


def test_http_current_and_deprecated_sizes() -> None:
    rec = http_input({**HTTP, A.GEO_COUNTRY_ISO_CODE: "FR", A.DOWNSTREAM_DEVICE_CLASS: "tablet"})
    assert (rec.request_bytes, rec.response_bytes, rec.country, rec.device_class) == (
        120.0,
        4000.0,
        "FR",
        "tablet",
    )
    old = http_input(
        {
            A.HTTP_METHOD_OLD: "POST",
            A.HTTP_REQUEST_CONTENT_LENGTH_OLD: 7,
            A.HTTP_RESPONSE_CONTENT_LENGTH_OLD: "9",
        }
    )
    assert (old.request_bytes, old.response_bytes, old.engagement_s) == (7.0, 9.0, None)
    assert old.counts_request


def test_missing_sizes_are_zero_and_synthetic_agents_are_bots() -> None:
    rec = http_input({A.HTTP_REQUEST_METHOD: "GET", A.USER_AGENT_SYNTHETIC_TYPE: "bot"})
    assert (rec.request_bytes, rec.response_bytes, rec.device_class) == (0.0, 0.0, "bot")
    assert not rec.response_size_known
    assert http_input({A.HTTP_RESPONSE_BODY_SIZE: 0}).response_size_known


@pytest.mark.parametrize("bad", [-1, 1e15, math.nan, math.inf, "12kB", True, [1, 2]])
def test_absurd_sizes_reject_the_span(bad: object) -> None:
    with pytest.raises(SpanRejected) as info:
        http_input({**HTTP, A.HTTP_RESPONSE_BODY_SIZE: bad})  # type: ignore[dict-item]
    assert info.value.reason == "invalid_bytes"
    assert info.value.field == A.HTTP_RESPONSE_BODY_SIZE
    assert A.HTTP_RESPONSE_BODY_SIZE in str(info.value)


def test_engagement_span_needs_seconds() -> None:
    rec = http_input({A.DOWNSTREAM_ENGAGEMENT_SECONDS: 42.5}, engagement_only=True)
    assert (rec.engagement_s, rec.counts_request, rec.request_bytes) == (42.5, False, 0.0)
    with pytest.raises(SpanRejected, match="engagement"):
        http_input({}, engagement_only=True)
    with pytest.raises(SpanRejected):
        http_input({A.DOWNSTREAM_ENGAGEMENT_SECONDS: 1e9}, engagement_only=True)


def test_gen_ai_current_names() -> None:
    rec = gen_ai_input({**GEN_AI, A.DOWNSTREAM_GEN_AI_ZONE: "FRA"}, duration_s=1.5)
    assert rec == ("openai", "gpt-4o-mini", 10, 20, 1.5, "FRA", "chat")


def test_gen_ai_deprecated_names() -> None:
    rec = gen_ai_input(
        {
            A.GEN_AI_SYSTEM: "mistral_ai",
            A.GEN_AI_RESPONSE_MODEL: "mistral-small-2409",
            A.GEN_AI_USAGE_PROMPT_TOKENS: 5,
            A.GEN_AI_USAGE_COMPLETION_TOKENS: 7.0,
        }
    )
    assert rec == ("mistral_ai", "mistral-small-2409", 5, 7, None, None, None)


def test_current_names_win_over_deprecated() -> None:
    rec = gen_ai_input({**GEN_AI, A.GEN_AI_SYSTEM: "other", A.GEN_AI_USAGE_PROMPT_TOKENS: 999})
    assert (rec.provider, rec.input_tokens) == ("openai", 10)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({A.GEN_AI_USAGE_INPUT_TOKENS: math.nan}, "invalid_tokens"),
        ({A.GEN_AI_USAGE_OUTPUT_TOKENS: -3}, "invalid_tokens"),
        ({A.GEN_AI_USAGE_OUTPUT_TOKENS: 1e12}, "invalid_tokens"),
        ({A.GEN_AI_PROVIDER_NAME: ""}, "missing_provider"),
        ({A.GEN_AI_REQUEST_MODEL: ""}, "missing_model"),
        ({A.GEN_AI_USAGE_INPUT_TOKENS: None, A.GEN_AI_USAGE_OUTPUT_TOKENS: None}, "missing_usage"),
    ],
)
def test_gen_ai_rejections(change: dict[str, object], reason: str) -> None:
    attrs = {k: v for k, v in {**GEN_AI, **change}.items() if v is not None}
    with pytest.raises(SpanRejected) as info:
        gen_ai_input(attrs)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_implausible_duration_is_not_a_latency() -> None:
    assert gen_ai_input(GEN_AI, duration_s=-1.0).latency_s is None
    assert gen_ai_input(GEN_AI, duration_s=0.0).latency_s is None


def test_host_sample() -> None:
    rec = host_input(
        {
            A.DOWNSTREAM_HOST_ENERGY_JOULES: 1500.0,
            A.DOWNSTREAM_HOST_ENERGY_METHOD: "measured",
            A.DOWNSTREAM_HOST_PUE: 1.2,
            A.DOWNSTREAM_HOST_SHARE: 0.5,
            A.DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS: 0.3,
            A.GEO_COUNTRY_ISO_CODE: "DE",
        }
    )
    assert rec == (1500.0, "DE", 1.2, 0.5, 0.3, "measured")
    assert host_input({A.DOWNSTREAM_HOST_ENERGY_JOULES: 1}) == (1.0, None, 1.0, 1.0, 0.0, "")


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {A.DOWNSTREAM_HOST_ENERGY_JOULES: -5},
        {A.DOWNSTREAM_HOST_ENERGY_JOULES: 5, A.DOWNSTREAM_HOST_PUE: 0.5},
        {A.DOWNSTREAM_HOST_ENERGY_JOULES: 5, A.DOWNSTREAM_HOST_SHARE: 1.5},
    ],
)
def test_host_rejections(attrs: dict[str, object]) -> None:
    with pytest.raises(SpanRejected):
        host_input(attrs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tracestate", "expected"),
    [
        (None, 1.0),
        ("", 1.0),
        ("vendor=x", 1.0),
        ("ot=rv:abcdef", 1.0),
        ("ot=th:0", 1.0),
        ("ot=th:8", 2.0),  # 50 %
        ("ot=th:c", 4.0),  # 25 %
        ("ot=th:e666666666666", 10.000000000000036),  # ~10 %, as the spec's examples spell it
        ("a=1, ot=rv:0123;th:fd70a4 ,b=2", 2**56 / (2**56 - 0xFD70A400000000)),
        ({"ot": "th:8"}, 2.0),
        # The largest valid threshold: 2**56 - (2**56 - 1) is 0 in floats (a ZeroDivisionError
        # that lost a whole OTLP batch); in integers it is 1.
        ("ot=th:ffffffffffffff", float(2**56)),
        ("ot=th:fffffffffffff0", 2**56 / 16),
    ],
)
def test_adjusted_count(tracestate: object, expected: float) -> None:
    assert adjusted_count(tracestate) == pytest.approx(expected, rel=1e-12)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["th:", "th:123456789abcdef", "th:XY", "th:8G"])
def test_malformed_threshold_raises_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="th="):
        adjusted_count_from_ot(bad)


def test_gen_ai_input_carries_the_operation() -> None:
    """The engine prices embeddings apart from generation: the operation must reach it."""
    embeddings = {**GEN_AI, A.GEN_AI_OPERATION_NAME: "embeddings", A.GEN_AI_USAGE_OUTPUT_TOKENS: 0}
    assert gen_ai_input(embeddings).operation == "embeddings"
    assert gen_ai_input(GEN_AI).operation == "chat"
    openllmetry = {k: v for k, v in embeddings.items() if k != A.GEN_AI_OPERATION_NAME}
    assert gen_ai_input({**openllmetry, A.LLM_REQUEST_TYPE: "embedding"}).operation == "embeddings"
