"""Our ai_inference figures against what providers published, with the bounds the docs explain.

The table in docs/methodology-llm.md (between the ``sanity-table`` markers) is generated here;
regenerate it with ``python -m tests.exporters.test_llm_sanity`` after a data or method change,
and re-read the explanations in the doc if a ratio moves.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from otel_downstream.exporters.engine.llm import call as llm

DOC = Path(__file__).resolve().parents[2] / "docs" / "methodology-llm.md"
START, END = "<!-- sanity-table:start -->", "<!-- sanity-table:end -->"
INPUT_TOKENS, OUTPUT_TOKENS = 100, 400  # one chat turn; none of the publications gives tokens


class Row(NamedTuple):
    reference: str
    provider: str
    model: str
    method: str
    quantity: str  # "energy_wh", "co2e_g" or "water_ml"
    published: float
    low_bound: float  # documented bounds for ours / published
    high_bound: float


ROWS = (
    Row(
        "Mistral LCA 2025, Mistral Large 2",
        "mistral_ai",
        "mistral-large-123b",
        llm.DEFAULT_METHOD,
        "co2e_g",
        1.14,
        0.02,
        0.1,
    ),
    Row(
        "Mistral LCA 2025, Mistral Large 2",
        "mistral_ai",
        "mistral-large-123b",
        llm.DEFAULT_METHOD,
        "water_ml",
        45.0,
        0.02,
        0.1,
    ),
    Row(
        "Mistral LCA 2025, Mistral Large 2",
        "mistral_ai",
        "mistral-large-123b",
        "mistral-lca-2025",
        "co2e_g",
        1.14,
        0.999,
        1.001,
    ),
    Row(
        "Mistral LCA 2025, Mistral Large 2",
        "mistral_ai",
        "mistral-large-123b",
        "mistral-lca-2025",
        "water_ml",
        45.0,
        0.999,
        1.001,
    ),
    Row(
        "Google 2025, median Gemini Apps text prompt",
        "gcp.gemini",
        "gemini-2.5-flash",
        llm.DEFAULT_METHOD,
        "energy_wh",
        0.24,
        1.5,
        6.0,
    ),
    Row(
        "Google 2025, median Gemini Apps text prompt",
        "gcp.gemini",
        "gemini-2.5-flash",
        llm.DEFAULT_METHOD,
        "co2e_g",
        0.03,
        4.0,
        20.0,
    ),
    Row(
        "Google 2025, median Gemini Apps text prompt",
        "gcp.gemini",
        "gemini-2.5-flash",
        llm.DEFAULT_METHOD,
        "water_ml",
        0.26,
        4.0,
        20.0,
    ),
    Row(
        "OpenAI 2025, average ChatGPT query",
        "openai",
        "gpt-4o",
        llm.DEFAULT_METHOD,
        "energy_wh",
        0.34,
        1.2,
        5.0,
    ),
)

_SCALE = {
    "energy_wh": ("energy_j", 1 / 3600),
    "co2e_g": ("co2e_g", 1.0),
    "water_ml": ("water_l", 1000.0),
}


def ours(row: Row) -> tuple[float, float | None, float | None]:
    fp = llm.llm_call(
        provider=row.provider,
        model=row.model,
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
        latency_s=None,
        method=row.method,
    )
    name, k = _SCALE[row.quantity]
    low = getattr(fp.low, name) * k if fp.low is not None else None
    high = getattr(fp.high, name) * k if fp.high is not None else None
    return getattr(fp.total, name) * k, low, high


def table() -> str:
    lines = [
        f"Computed for {INPUT_TOKENS} input and {OUTPUT_TOKENS} output tokens, latency unknown, "
        "provider's default zone.",
        "",
        "| reference | our model (method) | quantity | published | ours [low–high] | ours / published | accepted ratio |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        value, low, high = ours(row)
        shown = (
            f"{value:.3g}" if low is None or high is None else f"{value:.3g} [{low:.3g}–{high:.3g}]"
        )
        lines.append(
            f"| {row.reference} | {row.provider}/{row.model} ({row.method}) | {row.quantity} "
            f"| {row.published:g} | {shown} | {value / row.published:.3g} "
            f"| {row.low_bound:g}–{row.high_bound:g} |"
        )
    return "\n".join(lines)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.model}-{r.method}-{r.quantity}")
def test_ratio_stays_within_documented_bounds(row: Row) -> None:
    value, _, _ = ours(row)
    assert row.low_bound <= value / row.published <= row.high_bound


def test_doc_table_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} lacks the sanity-table markers"
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == table(), (
        "docs/methodology-llm.md is stale: run python -m tests.exporters.test_llm_sanity"
    )


if __name__ == "__main__":
    print(table())
