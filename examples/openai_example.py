"""One OpenAI chat call and one streamed call, and the footprint otel-downstream accounted for them.

Run it:   python examples/openai_example.py
              -> against a LOCAL FAKE OpenAI-compatible API started here (no key, no cost, filler
                 text; token counts and the footprint maths are real)
          OPENAI_API_KEY=sk-... python examples/openai_example.py --real
              -> against api.openai.com (costs a fraction of a cent)
          python examples/openai_example.py --base-url http://127.0.0.1:11434/v1 --model llama3.2
              -> any OpenAI-compatible server (vLLM, Ollama, LiteLLM...); OPENAI_API_KEY if it
                 needs one, else a placeholder key is sent

``instrument_openai(client)`` traces that client only; ``instrument_openai()`` traces every client.
Each call becomes one CLIENT span with model, provider and token usage; the footprint processor
turns it into energy, CO2e and water of the ``ai_inference`` segment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from otel_downstream.agent import configure, instrument_openai
from otel_downstream.exporters.demo import FakeLLMAPI
from otel_downstream.exporters.metrics import CO2E, ENERGY, WATER

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "In one sentence: why does grid intensity vary by country?"}
]


def ai_footprint(registry: Any) -> dict[str, float]:
    """Energy (J), CO2e (g) and water (L) of the ai_inference segment, read from the registry."""
    totals = {ENERGY: 0.0, CO2E: 0.0, WATER: 0.0}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name in totals and sample.labels.get("segment") == "ai_inference":
                totals[sample.name] += sample.value
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", action="store_true", help="call api.openai.com (OPENAI_API_KEY)")
    parser.add_argument("--base-url", help="an OpenAI-compatible base URL")
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args(argv)

    handle = configure(service_name="openai-example", metrics_port=None)
    with contextlib.ExitStack() as stack:
        key = os.environ.get("OPENAI_API_KEY")
        if args.base_url:
            # Local servers (Ollama, vLLM) ignore the key, but the SDK wants one.
            client = OpenAI(base_url=args.base_url, api_key=key or "not-needed")
        elif args.real:
            if not key:
                print("--real needs OPENAI_API_KEY", file=sys.stderr)
                return 2
            client = OpenAI(api_key=key)
        else:
            fake = stack.enter_context(FakeLLMAPI())
            print(
                f"Using a local fake OpenAI-compatible API at {fake.openai_base_url} (not a model)."
            )
            client = OpenAI(base_url=fake.openai_base_url, api_key="sk-fake", max_retries=0)
        instrument_openai(client, tracer_provider=handle.tracer_provider)

        answer = client.chat.completions.create(model=args.model, messages=QUESTION)
        print("answer:", (answer.choices[0].message.content or "")[:80])
        stream = client.chat.completions.create(
            model=args.model,
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},  # exact token counts, not estimates
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print("streamed:", streamed[:80])

    handle.processor.force_flush()
    totals = ai_footprint(handle.registry)
    print(
        f"AI inference footprint of 2 calls to {args.model}: {totals[ENERGY] / 3600:.4f} Wh, "
        f"{totals[CO2E]:.4f} g CO2e, {totals[WATER] * 1000:.3f} mL water"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
