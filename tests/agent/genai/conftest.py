"""Fixtures: the fake LLM API on 127.0.0.1 (one per session) and a fresh tracer per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent.faults import reset_faults
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI


class Spans:
    """A fresh SDK TracerProvider with an in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def one(self) -> ReadableSpan:
        spans = self.finished()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]


@pytest.fixture(scope="session")
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


@pytest.fixture
def spans() -> Iterator[Spans]:
    reset_faults()
    recorder = Spans()
    yield recorder
    recorder.provider.shutdown()


@pytest.fixture(autouse=True)
def _no_global_patches() -> Iterator[None]:
    """Every test starts and ends with the SDK classes unpatched."""
    from otel_downstream.agent.genai.mistral_client import uninstrument_mistral
    from otel_downstream.agent.genai.openai_client import uninstrument_openai

    uninstrument_openai()
    uninstrument_mistral()
    yield
    uninstrument_openai()
    uninstrument_mistral()
