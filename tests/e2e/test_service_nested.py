"""Nested spans of one model call, sent by the real OTLP exporter to a real ``serve``, count once:
in one export (the batch is ordered children first) and across exports (child first)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from otel_downstream.agent import attributes as A

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

CALL = {
    A.GEN_AI_OPERATION_NAME: "chat",
    A.GEN_AI_PROVIDER_NAME: "mistral_ai",
    A.GEN_AI_REQUEST_MODEL: "mistral-small-latest",
    A.GEN_AI_USAGE_INPUT_TOKENS: 21,
    A.GEN_AI_USAGE_OUTPUT_TOKENS: 12,
}


@pytest.mark.parametrize("processor", [BatchSpanProcessor, SimpleSpanProcessor])
def test_nested_spans_of_one_call_count_once(processor: type) -> None:
    serve = Serve()
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        provider.add_span_processor(processor(OTLPSpanExporter(endpoint=serve.traces_url)))
        tracer = provider.get_tracer("test")
        for _ in range(3):
            ours = tracer.start_span("chat mistral-small-latest", kind=SpanKind.CLIENT)
            ours.set_attributes(CALL)
            # mistralai's own span inside ours: the SDK ends it first
            sdk = tracer.start_span(
                "chat_completion_v1_chat_completions_post",
                context=set_span_in_context(ours),
                attributes={k: v for k, v in CALL.items() if k != A.GEN_AI_OPERATION_NAME},
            )
            sdk.end()
            ours.end()
        # and a call whose inner span has no usage (it ended before the stream was read)
        ours = tracer.start_span("chat mistral-small-latest", kind=SpanKind.CLIENT)
        ours.set_attributes(CALL)
        tracer.start_span(
            "chat_completion_v1_chat_completions_post",
            context=set_span_in_context(ours),
            attributes={A.GEN_AI_PROVIDER_NAME: "mistral_ai", A.GEN_AI_REQUEST_MODEL: "m"},
        ).end()
        ours.end()
        provider.shutdown()
        samples = scrape(serve.metrics_url)
        assert total(samples, "downstream_gen_ai_calls_total", service_name="shop") == 4.0
        assert total(samples, "downstream_gen_ai_tokens_total", gen_ai_token_type="output") == 48
        assert total(samples, "downstream_spans_accounted_total", type="gen_ai_enclosing") == 3.0
    finally:
        serve.close()


def test_a_batch_with_the_parent_first_still_counts_once() -> None:
    """A sender may order a batch any way: serve puts children first before accounting."""
    import requests
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    framework = tracer.start_span("chat", attributes=CALL)  # INTERNAL, e.g. a LangChain span
    ours = tracer.start_span(
        "chat mistral-small-latest",
        kind=SpanKind.CLIENT,
        context=set_span_in_context(framework),
        attributes=CALL,
    )
    tracer.start_span("sdk", context=set_span_in_context(ours), attributes=CALL).end()
    ours.end()
    framework.end()
    body = encode_spans(list(reversed(memory.get_finished_spans()))).SerializeToString()
    serve = Serve()
    try:
        answer = requests.post(
            serve.traces_url,
            data=body,
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert answer.status_code == 200
        samples = scrape(serve.metrics_url)
        assert total(samples, "downstream_gen_ai_calls_total", service_name="shop") == 1.0
        assert total(samples, "downstream_spans_accounted_total", type="gen_ai_enclosing") == 2.0
    finally:
        serve.close()
