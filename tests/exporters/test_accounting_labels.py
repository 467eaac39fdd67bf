"""The accountant's label bounds: closed sets, a cap on label combinations, edge services.

Each test feeds what a careless or hostile sender could send and checks two things: the series stay
bounded, and the footprint totals still equal the engine's figures for the real inputs.
"""

from __future__ import annotations

import itertools

import pytest
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.agent import environment as env
from otel_downstream.agent.countries import ISO_COUNTRIES
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

_HOST = A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME


def _series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [s.labels for f in registry.collect() for s in f.samples if s.name == name]


def _sum(registry: CollectorRegistry, name: str, **match: str) -> float:
    return sum(
        s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


def _request(country: str, device: str, resp: int = 1000) -> dict[str, object]:
    return {
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_RESPONSE_BODY_SIZE: resp,
        A.GEO_COUNTRY_ISO_CODE: country,
        A.DOWNSTREAM_DEVICE_CLASS: device,
    }


def _chat(model: str, provider: str = "openai") -> dict[str, object]:
    return {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: 100,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
    }


def test_host_method_is_a_closed_set_and_anything_else_is_counted() -> None:
    reg = CollectorRegistry()
    acc = Accountant(registry=reg)
    for i in range(300):  # hostcard.py: a new kilobyte-long method string in every span
        attrs = {A.DOWNSTREAM_HOST_ENERGY_JOULES: 1.0, A.DOWNSTREAM_HOST_ENERGY_METHOD: f"m{i}x"}
        assert acc.account(attrs, service_name="host", name=_HOST)
    for method in ("measured", "modelled", "mixed"):
        acc.account(
            {A.DOWNSTREAM_HOST_ENERGY_JOULES: 1.0, A.DOWNSTREAM_HOST_ENERGY_METHOD: method},
            service_name="host",
            name=_HOST,
        )
    acc.account({A.DOWNSTREAM_HOST_ENERGY_JOULES: 1.0}, service_name="host", name=_HOST)
    methods = {labels["method"] for labels in _series(reg, M.HOST_SAMPLES)}
    assert methods == {"measured", "modelled", "mixed", "unknown"}
    assert _sum(reg, M.HOST_SAMPLES, method="unknown") == 301
    assert _sum(reg, M.UNKNOWN, kind="host_method") == 300  # a missing method is not bad input


def test_label_combinations_are_capped_and_totals_stay_exact() -> None:
    """card.py, smaller: every service x country x device class, from many services."""
    limit = 60
    reg = CollectorRegistry()
    acc = Accountant(registry=reg, settings=AccountingSettings.resolve(label_set_limit=limit))
    engine = Engine(EngineConfig())
    countries = sorted(ISO_COUNTRIES)[:25]
    devices = A.DEVICE_CLASSES
    services = [f"attacker-{i}" for i in range(4)]
    expected_co2e = 0.0
    n = 0
    for service, country, device in itertools.product(services, countries, devices):
        resp = 1000 + 37 * n
        assert acc.account(_request(country, device, resp), service_name=service, kind="SERVER")
        fps = engine.http_request(
            request_bytes=0, response_bytes=resp, country=country, device_class=device
        )
        expected_co2e += sum(fp.total.co2e_g for fp in fps)
        n += 1
    assert n > 10 * limit
    request_series = _series(reg, M.REQUESTS)
    # the cap, plus one fold set per service
    assert limit < len(request_series) <= limit + len(services)
    folded = [s for s in request_series if s["device_class"] == "other"]
    assert {s["geo_country_iso_code"] for s in folded} == {"ZZ"}
    co2e_sets = {
        (s["service_name"], s["geo_country_iso_code"], s["device_class"])
        for s in _series(reg, M.CO2E)
    }
    assert len(co2e_sets) <= limit + len(services)
    assert _sum(reg, M.REQUESTS) == n
    assert _sum(reg, M.CO2E) == pytest.approx(expected_co2e, rel=1e-9)  # priced where they were
    assert _sum(reg, M.LABEL_OVERFLOW, label="request_labels") == n - limit


def test_gen_ai_label_combinations_are_capped_and_totals_stay_exact() -> None:
    reg = CollectorRegistry()
    acc = Accountant(
        registry=reg, settings=AccountingSettings.resolve(label_set_limit=5, model_limit=100)
    )
    engine = Engine(EngineConfig())
    expected = 0.0
    for i in range(40):
        acc.account(_chat(f"acme-13b-v{i}"), service_name="s", kind="CLIENT")
        expected += engine.llm_call(
            provider="openai",
            model=f"acme-13b-v{i}",
            input_tokens=100,
            output_tokens=10,
            latency_s=None,
        ).total.co2e_g
    calls = _series(reg, M.GEN_AI_CALLS)
    assert len(calls) == 6  # five sets, then (s, other, other)
    assert _sum(reg, M.GEN_AI_CALLS, gen_ai_request_model="other") == 35
    assert _sum(reg, M.CO2E, segment="ai_inference") == pytest.approx(expected, rel=1e-9)
    assert _sum(reg, M.GEN_AI_TOKENS) == 40 * 110
    assert _sum(reg, M.LABEL_OVERFLOW, label="gen_ai_labels") == 35


def test_host_label_combinations_are_capped() -> None:
    reg = CollectorRegistry()
    acc = Accountant(registry=reg, settings=AccountingSettings.resolve(label_set_limit=3))
    for country in sorted(ISO_COUNTRIES)[:20]:
        attrs = {A.DOWNSTREAM_HOST_ENERGY_JOULES: 3600.0, A.GEO_COUNTRY_ISO_CODE: country}
        acc.account(attrs, service_name="h", name=_HOST)
    countries = {s["geo_country_iso_code"] for s in _series(reg, M.CO2E)}
    assert len(countries) == 4 and "ZZ" in countries
    assert _sum(reg, M.LABEL_OVERFLOW, label="host_labels") == 17


def test_known_models_keep_their_label_whatever_else_arrives() -> None:
    reg = CollectorRegistry()
    acc = Accountant(registry=reg, settings=AccountingSettings.resolve(model_limit=3))
    for i in range(20):  # fine-tune ids fill the model slots first
        acc.account(_chat(f"ft:gpt-4o:acme:{i}"), service_name="s", kind="CLIENT")
    acc.account(_chat("gpt-4o-mini"), service_name="s", kind="CLIENT")
    acc.account(_chat("mistral-large-latest", "mistral_ai"), service_name="s", kind="CLIENT")
    models = {labels["gen_ai_request_model"] for labels in _series(reg, M.GEN_AI_CALLS)}
    assert {"gpt-4o-mini", "mistral-large-latest", "other"} <= models
    assert len(models) == 3 + 3


def test_model_label_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MODEL_LABELS, "acme-1, acme-2")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT, "0")
    reg = CollectorRegistry()
    acc = Accountant(registry=reg)
    for model in ("acme-1", "acme-2", "acme-3"):
        acc.account(_chat(model), service_name="s", kind="CLIENT")
    models = {labels["gen_ai_request_model"] for labels in _series(reg, M.GEN_AI_CALLS)}
    assert models == {"acme-1", "acme-2", "other"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT, "-1"),
        (env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT, "0"),
        (env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT, "many"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        Accountant(registry=CollectorRegistry())


def _nested_request(acc: Accountant) -> None:
    """nest.py: a customer's request to frontend, which calls catalog over HTTP."""
    acc.account(_request("US", "smartphone", 1_000_000), service_name="frontend", kind="SERVER")
    hop = {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: 900_000}
    acc.account({**hop, "client.address": "10.0.0.5"}, service_name="catalog", kind="SERVER")


def test_without_edge_services_every_server_span_is_a_customer_request() -> None:
    reg = CollectorRegistry()
    _nested_request(Accountant(registry=reg))
    assert _sum(reg, M.REQUESTS) == 2  # today's rule, and why the setting exists


@pytest.mark.parametrize("from_env", [False, True])
def test_server_spans_of_internal_services_add_no_footprint(
    monkeypatch: pytest.MonkeyPatch, from_env: bool
) -> None:
    reg = CollectorRegistry()
    if from_env:
        monkeypatch.setenv(env.OTEL_DOWNSTREAM_EDGE_SERVICES, "frontend, shop")
        acc = Accountant(registry=reg)
    else:
        acc = Accountant(
            registry=reg, settings=AccountingSettings.resolve(edge_services=("frontend", "shop"))
        )
    _nested_request(acc)
    fps = Engine(EngineConfig()).http_request(
        request_bytes=0, response_bytes=1_000_000, country="US", device_class="smartphone"
    )
    assert _sum(reg, M.REQUESTS) == 1
    assert _sum(reg, M.REQUESTS, service_name="catalog") == 0
    assert _sum(reg, M.CO2E) == pytest.approx(sum(fp.total.co2e_g for fp in fps), rel=1e-9)
    assert _sum(reg, M.TRANSFER_BYTES) == 1_000_000
    assert _sum(reg, M.SPANS_ACCOUNTED, type="internal_request") == 1
    assert _sum(reg, M.SPANS_ACCOUNTED, type="http") == 1
    # LLM calls and host samples of a non-edge service are still its footprint
    assert acc.account(_chat("gpt-4o"), service_name="catalog", kind="CLIENT")
    assert _sum(reg, M.GEN_AI_CALLS, service_name="catalog") == 1


def test_functional_units_of_internal_services_still_count() -> None:
    """An order completed by the checkout service's (internal) span is still an order: the
    per-order intensity keeps its denominator when edge services are set."""
    reg = CollectorRegistry()
    acc = Accountant(registry=reg, settings=AccountingSettings.resolve(edge_services=("frontend",)))
    order = {**_request("FR", "desktop"), A.DOWNSTREAM_FUNCTIONAL_UNIT: "order"}
    assert acc.account(order, service_name="checkout", kind="SERVER")
    assert _sum(reg, M.FUNCTIONAL_UNITS, service_name="checkout", unit="order") == 1
    assert _sum(reg, M.REQUESTS) == 0


def test_rejected_spans_do_not_use_up_service_name_slots() -> None:
    reg = CollectorRegistry()
    acc = Accountant(registry=reg, settings=AccountingSettings.resolve(service_limit=5))
    bad = {A.HTTP_REQUEST_METHOD: "GET", A.HTTP_RESPONSE_BODY_SIZE: -1}
    for i in range(20):
        assert not acc.account(bad, service_name=f"junk{i}", kind="SERVER")
        assert not acc.account(
            {**_chat("gpt-4o"), A.GEN_AI_USAGE_INPUT_TOKENS: "lots"},
            service_name=f"junk-ai{i}",
            kind="CLIENT",
        )
        assert not acc.account(
            {A.DOWNSTREAM_HOST_ENERGY_JOULES: -5.0}, service_name=f"junk-host{i}", name=_HOST
        )
    assert acc.account(_request("FR", "desktop"), service_name="checkout", kind="SERVER")
    assert _sum(reg, M.REQUESTS, service_name="checkout") == 1
    assert _sum(reg, M.LABEL_OVERFLOW, label="service_name") == 0
    assert _sum(reg, M.SPANS_REJECTED) == 60


def test_alpha3_country_is_priced_as_its_alpha2_country() -> None:
    reg = CollectorRegistry()
    acc = Accountant(registry=reg)
    acc.account(_request("FRA", "desktop", 1_000_000), service_name="s", kind="SERVER")
    acc.account(_request("FR", "desktop", 1_000_000), service_name="s", kind="SERVER")
    assert _sum(reg, M.REQUESTS, geo_country_iso_code="FR") == 2
    assert _sum(reg, M.CO2E, geo_country_iso_code="ZZ") == 0
    assert _sum(reg, M.UNKNOWN, kind="invalid_country") == 0
