"""End to end through configure(): one SDK call is one accounted call, on every supported SDK.

Run in a child process because configure() installs the global TracerProvider, which is what makes
mistralai 1.x switch on its own tracing (3.x with ``MISTRAL_SDK_TELEMETRY=global``): an INTERNAL span
that repeats the call's provider, model and usage inside ours, which must not count a second time.
A global provider cannot be undone inside the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI

_CHILD = """
import sys
from prometheus_client import CollectorRegistry
from otel_downstream.agent.pipeline import configure
from otel_downstream.agent.genai.mistral_client import instrument_mistral
from otel_downstream.agent.genai.openai_client import instrument_openai
try:
    from mistralai.client import Mistral
except ImportError:  # mistralai 1.x/2.x
    from mistralai import Mistral

provider_name, base = sys.argv[1], sys.argv[2]
registry = CollectorRegistry()
configure("shop", registry=registry, metrics_port=None)
messages = [{"role": "user", "content": "How much water does a token take?"}]
if provider_name == "mistral":
    client = instrument_mistral(Mistral(api_key="fake", server_url=base))
    client.chat.complete(model="mistral-small-latest", messages=messages)
    for _ in client.chat.stream(model="mistral-small-latest", messages=messages):
        pass
else:
    import openai
    client = instrument_openai(openai.OpenAI(base_url=base, api_key="sk-fake", max_retries=0))
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
        pass
calls = registry.get_sample_value(
    "downstream_gen_ai_calls_total",
    {
        "service_name": "shop",
        "gen_ai_provider_name": "mistral_ai" if provider_name == "mistral" else "openai",
        "gen_ai_request_model": "mistral-small-latest" if provider_name == "mistral" else "gpt-4o-mini",
    },
)
print(calls)
"""


@pytest.mark.parametrize(
    ("provider", "env"),
    [
        ("openai", {}),
        ("mistral", {}),
        # mistralai 3.x's own tracing, opt-in: its INTERNAL chat span inside ours
        ("mistral", {"MISTRAL_SDK_TELEMETRY": "global"}),
    ],
)
def test_one_call_is_accounted_once_through_configure(
    api: FakeLLMAPI, provider: str, env: dict[str, str]
) -> None:
    base = api.mistral_server_url if provider == "mistral" else api.openai_base_url
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, provider, base],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.strip().splitlines()[-1]) == 2.0, done.stdout  # a call and a stream
