"""A label value UTF-8 cannot encode must cost its own characters, never the whole ``/metrics``."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.labels import BoundedLabel
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M
from otel_downstream.exporters.metrics.exposition import safe_label_value, safe_registry

LONE = "\ud800"  # what OTLP/JSON's "\ud800" escape decodes to


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("shop", "shop"),
        ("caf\u00e9", "caf\u00e9"),
        (LONE, "\ufffd"),
        (f"a{LONE}b\udfffc", "a\ufffdb\ufffdc"),
        ("\U0001f600", "\U0001f600"),  # a real astral character stays
    ],
)
def test_safe_label_value(raw: str, safe: str) -> None:
    assert safe_label_value(raw) == safe
    safe_label_value(raw).encode("utf-8")


def test_bounded_label_admits_the_safe_spelling_once() -> None:
    label = BoundedLabel("service_name", limit=2)
    assert label.admit(f"x{LONE}") == "x\ufffd"
    assert label.admit(f"x{LONE}") == "x\ufffd"
    assert label.admit("x\udbff") == "x\ufffd"  # the same safe value: no second slot
    assert label.size == 1


@pytest.mark.parametrize("field", ["service", "model", "provider", "unit"])
def test_a_lone_surrogate_from_any_span_field_leaves_the_exposition_whole(field: str) -> None:
    registry = CollectorRegistry()
    acc = Accountant(Engine(EngineConfig()), registry=registry)
    http = {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: 1000}
    service = f"svc{LONE}" if field == "service" else "svc"
    if field == "unit":
        http[A.DOWNSTREAM_FUNCTIONAL_UNIT] = f"user{LONE}"
    assert acc.account(http, service_name=service, kind="SERVER")
    gen_ai = {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: f"openai{LONE}" if field == "provider" else "openai",
        A.GEN_AI_REQUEST_MODEL: f"gpt-4o{LONE}" if field == "model" else "gpt-4o",
        A.GEN_AI_USAGE_INPUT_TOKENS: 10,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 20,
    }
    acc.account(gen_ai, service_name=service, kind="CLIENT")
    for page in (generate_latest(registry), generate_openmetrics(registry)):
        families = list(text_string_to_metric_families(page.decode()))
        assert any(f.name == M.CO2E.removesuffix("_total") for f in families)


def test_the_view_makes_any_registry_encodable() -> None:
    """The second wall: a value that reached a label some other way is rewritten at scrape."""
    registry = CollectorRegistry()
    counter = Counter("raw_total", "raw", ("name",), registry=registry)
    counter.labels(f"bad{LONE}").inc(2)
    counter.labels("good").inc(3)
    with pytest.raises(UnicodeEncodeError):
        generate_latest(registry)
    page = generate_latest(safe_registry(registry)).decode()
    samples = {
        s.labels["name"]: s.value
        for f in text_string_to_metric_families(page)
        for s in f.samples
        if s.name == "raw_total"
    }
    assert samples == {"bad\ufffd": 2.0, "good": 3.0}
