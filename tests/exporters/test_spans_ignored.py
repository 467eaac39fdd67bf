"""Spans the footprint does not cover are counted by reason in process too (not errors)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.accounting.span_inputs import (
    IGNORED_REASONS,
    classify,
    ignored_reason,
)
from otel_downstream.exporters.exporter import FootprintSpanProcessor
from otel_downstream.exporters.metrics import families as M


@pytest.mark.parametrize(
    ("kind", "attributes", "reason"),
    [
        ("CLIENT", {"db.system": "postgresql"}, "not_footprint_kind"),
        ("INTERNAL", {}, "not_footprint_kind"),
        ("PRODUCER", {"messaging.system": "kafka"}, "not_footprint_kind"),
        ("CONSUMER", {}, "not_footprint_kind"),
        ("", {}, "not_footprint_kind"),
        ("SERVER", {"rpc.system": "grpc"}, "server_without_http_method"),
        ("SPAN_KIND_SERVER", {"url.path": "/"}, "server_without_http_method"),
        ("SERVER", {"gen_ai.system": "openai"}, "server_without_http_method"),
        ("INTERNAL", {"gen_ai.operation.name": "invoke_agent"}, "gen_ai_not_a_call"),
        ("CLIENT", {"gen_ai.operation.name": "execute_tool"}, "gen_ai_not_a_call"),
        ("INTERNAL", {"gen_ai.system": "openai"}, "gen_ai_not_a_call"),
    ],
)
def test_every_span_classify_does_not_take_has_one_reason(
    kind: str, attributes: dict[str, str], reason: str
) -> None:
    assert classify(attributes, "span", kind) is None
    assert ignored_reason(attributes, kind) == reason
    assert reason in IGNORED_REASONS


def test_the_processor_counts_ignored_spans_weighted_and_apart_from_rejections() -> None:
    registry = CollectorRegistry()
    accountant = Accountant(registry=registry, settings=AccountingSettings.resolve())
    provider = TracerProvider()
    provider.add_span_processor(FootprintSpanProcessor(accountant))
    tracer = provider.get_tracer("test")
    try:
        for _ in range(3):
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as span:
                span.set_attribute("db.system", "postgresql")
        with tracer.start_as_current_span("Pay", kind=SpanKind.SERVER) as span:
            span.set_attribute("rpc.system", "grpc")
        with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.response.body.size", -5)  # rejected, not ignored
    finally:
        provider.shutdown()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value(M.SPANS_IGNORED, reason="not_footprint_kind") == 3
    assert value(M.SPANS_IGNORED, reason="server_without_http_method") == 1
    assert value(M.SPANS_IGNORED, reason="gen_ai_not_a_call") is None
    assert value(M.SPANS_REJECTED, reason="invalid_bytes") == 1
    assert accountant.take_rejection() == "invalid_bytes"  # then read once
    assert accountant.take_rejection() == ""


def test_a_callers_dict_gathers_ignored_spans_for_one_count_per_batch() -> None:
    registry = CollectorRegistry()
    settings = AccountingSettings.resolve(min_sampling_probability=0.25)
    accountant = Accountant(registry=registry, settings=settings)
    gathered: dict[str, float] = {}
    for weight in (1.0, 4.0, 1e9):  # a weight above the trusted floor counts at the floor
        assert not accountant.account(
            {"db.system": "redis"}, service_name="s", kind="CLIENT", weight=weight, ignored=gathered
        )
    assert gathered == {"not_footprint_kind": 9.0}
    assert registry.get_sample_value(M.SPANS_IGNORED, {"reason": "not_footprint_kind"}) is None
    accountant.count_ignored(gathered)
    assert registry.get_sample_value(M.SPANS_IGNORED, {"reason": "not_footprint_kind"}) == 9.0
