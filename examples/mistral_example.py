"""One Mistral chat call and one streamed call, and the footprint otel-downstream accounted for them.

Run it:   python examples/mistral_example.py
              -> against a LOCAL FAKE Mistral-compatible API started here (no key, no cost, filler
                 text; token counts and the footprint maths are real)
          MISTRAL_API_KEY=... python examples/mistral_example.py --real
              -> against api.mistral.ai (costs a fraction of a cent)

``instrument_mistral(client)`` traces that client only; ``instrument_mistral()`` traces every
client. Mistral reports token usage on the last stream event, so streamed calls are exact too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

try:  # newer mistralai releases keep the SDK in mistralai.client, 1.x at the top level
    from mistralai.client import Mistral
    from mistralai.client.models import UserMessageTypedDict
except ImportError:
    from mistralai import Mistral  # type: ignore[no-redef,attr-defined]
    from mistralai.models import UserMessageTypedDict  # type: ignore[no-redef]

from otel_downstream.agent import configure, instrument_mistral
from otel_downstream.exporters.demo import FakeLLMAPI
from otel_downstream.exporters.metrics import CO2E, ENERGY, WATER

QUESTION: list[UserMessageTypedDict] = [
    {"role": "user", "content": "In one sentence: why do data centres use water?"}
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
    parser.add_argument("--real", action="store_true", help="call api.mistral.ai (MISTRAL_API_KEY)")
    parser.add_argument("--model", default="mistral-small-latest")
    args = parser.parse_args(argv)

    handle = configure(service_name="mistral-example", metrics_port=None)
    with contextlib.ExitStack() as stack:
        if args.real:
            client = Mistral(api_key=os.environ.get("MISTRAL_API_KEY", ""))
        else:
            fake = stack.enter_context(FakeLLMAPI())
            print(
                f"Using a local fake Mistral-compatible API at {fake.mistral_server_url} (not a model)."
            )
            client = Mistral(api_key="fake", server_url=fake.mistral_server_url)
        instrument_mistral(client, tracer_provider=handle.tracer_provider)

        answer = client.chat.complete(model=args.model, messages=QUESTION)
        message = answer.choices[0].message
        print("answer:", str(message.content if message else "")[:80])
        streamed = "".join(
            str(event.data.choices[0].delta.content or "")
            for event in client.chat.stream(model=args.model, messages=QUESTION)
            if event.data.choices
        )
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
