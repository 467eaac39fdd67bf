"""The demo's provider clients: keys checked before anything starts, and a local OpenAI-compatible
server (Ollama, vLLM) reachable without a key, through the real SDK against a real local server."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_downstream.exporters.demo import servers as demo_servers
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI
from otel_downstream.exporters.demo.servers import OPENAI_PLACEHOLDER_KEY, Stack, llm_clients


class RecordingStack(Stack):
    """A Stack that remembers how many things were started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    def push(self, stop: Callable[[], None]) -> None:
        self.started += 1
        super().push(stop)


def _args(**given: Any) -> argparse.Namespace:
    fields = ("openai_base_url", "openai_api_key", "mistral_server_url", "mistral_api_key")
    return argparse.Namespace(**{name: given.get(name) for name in fields})


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)


@pytest.fixture
def local_server() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as api:
        yield api


def test_a_missing_mistral_key_is_reported_before_anything_starts(no_keys: None) -> None:
    stack = RecordingStack()
    with pytest.raises(ValueError, match="--mistral-server-url needs --mistral-api-key"):
        llm_clients(_args(mistral_server_url="http://127.0.0.1:9/mistral"), stack, TracerProvider())
    assert stack.started == 0  # the fake API was not started only to be stopped again
    stack.close()


def test_a_keyless_openai_base_url_gets_a_placeholder_key_and_works(
    no_keys: None, local_server: FakeLLMAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = RecordingStack()
    try:
        clients = llm_clients(
            _args(openai_base_url=local_server.openai_base_url), stack, TracerProvider()
        )
        assert clients.openai.api_key == OPENAI_PLACEHOLDER_KEY
        answer = asyncio.run(
            clients.openai.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}]
            )
        )
        assert answer.usage.completion_tokens > 0
        assert local_server.last().path == "/v1/chat/completions"
    finally:
        stack.close()
    out = capsys.readouterr().out
    assert f"sending {OPENAI_PLACEHOLDER_KEY!r}" in out and "a hosted API will answer 401" in out


def test_a_given_openai_key_is_used_as_is(no_keys: None, local_server: FakeLLMAPI) -> None:
    stack = Stack()
    try:
        clients = llm_clients(
            _args(openai_base_url=local_server.openai_base_url, openai_api_key="sk-mine"),
            stack,
            TracerProvider(),
        )
        assert clients.openai.api_key == "sk-mine"
    finally:
        stack.close()


def test_the_mistral_client_class_is_the_installed_sdks() -> None:
    cls = demo_servers._mistral_class()
    assert cls.__name__ == "Mistral"
    assert cls.__module__.startswith("mistralai")
