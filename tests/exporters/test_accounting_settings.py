"""AccountingSettings: every accountant setting, resolved once and passed whole to the Accountant."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.agent import environment as env
from otel_downstream.exporters.accounting import settings as settings_module
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import (
    DEFAULT_LABEL_SET_LIMIT,
    DEFAULT_MODEL_LIMIT,
    DEFAULT_PROVIDER_LIMIT,
    DEFAULT_SERVICE_LIMIT,
    AccountingSettings,
)
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.exporter import FootprintExporter
from otel_downstream.exporters.metrics import families as M

_VARIABLES = (
    env.OTEL_DOWNSTREAM_MODEL_LABELS,
    env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT,
    env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT,
    env.OTEL_DOWNSTREAM_EDGE_SERVICES,
    env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in _VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MODEL_LABELS, "acme-1, ,acme-2")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT, "7")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT, "9")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_EDGE_SERVICES, " shop,front ")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY, "0.5")


def test_defaults_are_the_documented_ones() -> None:
    assert (
        AccountingSettings.resolve()
        == AccountingSettings()
        == AccountingSettings(
            allowed_models=(),
            model_limit=DEFAULT_MODEL_LIMIT,
            provider_limit=DEFAULT_PROVIDER_LIMIT,
            service_limit=DEFAULT_SERVICE_LIMIT,
            label_set_limit=DEFAULT_LABEL_SET_LIMIT,
            edge_services=frozenset(),
            min_sampling_probability=1.0,
        )
    )
    assert (DEFAULT_MODEL_LIMIT, DEFAULT_PROVIDER_LIMIT, DEFAULT_SERVICE_LIMIT) == (200, 32, 100)
    assert DEFAULT_LABEL_SET_LIMIT == 5000


def test_resolve_reads_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch)
    assert AccountingSettings.resolve() == AccountingSettings(
        allowed_models=("acme-1", "acme-2"),
        model_limit=7,
        label_set_limit=9,
        edge_services=frozenset({"shop", "front"}),
        min_sampling_probability=0.5,
    )


def test_arguments_win_over_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch)
    got = AccountingSettings.resolve(
        allowed_models=["m"],
        model_limit=1,
        provider_limit=2,
        service_limit=3,
        label_set_limit=4,
        edge_services=["a", " "],
        min_sampling_probability=0.25,
    )
    assert got == AccountingSettings(("m",), 1, 2, 3, 4, frozenset({"a"}), 0.25)
    assert got.max_weight == 4.0


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("min_sampling_probability", 0.0, env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY),
        ("min_sampling_probability", 1.5, env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY),
        ("model_limit", -1, env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT),
        ("label_set_limit", 0, env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT),
    ],
)
def test_resolve_and_the_constructor_reject_bad_values_alike(
    field: str, value: float, variable: str
) -> None:
    with pytest.raises(ValueError, match=variable):
        AccountingSettings.resolve(**{field: value})
    with pytest.raises(ValueError, match=variable):
        AccountingSettings(**{field: value})


def test_bad_provider_and_service_limits_fail_when_the_accountant_is_built() -> None:
    for field in ("provider_limit", "service_limit"):
        with pytest.raises(ValueError, match="label limit=-1"):
            Accountant(
                registry=CollectorRegistry(), settings=AccountingSettings.resolve(**{field: -1})
            )


def _counting_resolve(monkeypatch: pytest.MonkeyPatch) -> list[AccountingSettings]:
    """Make ``AccountingSettings.resolve`` record what it returns."""
    resolved: list[AccountingSettings] = []
    original = AccountingSettings.resolve

    def resolve(**kwargs: Any) -> AccountingSettings:
        resolved.append(original(**kwargs))
        return resolved[-1]

    monkeypatch.setattr(settings_module.AccountingSettings, "resolve", resolve)
    return resolved


def test_an_accountant_without_settings_resolves_them_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _environment(monkeypatch)
    resolved = _counting_resolve(monkeypatch)
    acc = Accountant(Engine(EngineConfig()), registry=CollectorRegistry())
    assert len(resolved) == 1 and acc.settings is resolved[0]
    assert acc.settings.edge_services == {"shop", "front"}


def test_given_settings_are_used_and_the_environment_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY, "not a number")
    chosen = AccountingSettings(service_limit=1, provider_limit=1, min_sampling_probability=0.5)
    registry = CollectorRegistry()
    acc = Accountant(Engine(EngineConfig()), registry=registry, settings=chosen)
    assert acc.settings is chosen
    http = {A.HTTP_REQUEST_METHOD: "GET", A.GEO_COUNTRY_ISO_CODE: "FR"}
    for service in ("a", "b"):
        assert acc.account(http, service_name=service, kind="SERVER", weight=8.0)
    for provider in ("openai", "mistral_ai"):
        call = {
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: provider,
            A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            A.GEN_AI_USAGE_INPUT_TOKENS: 10,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
        }
        assert acc.account(call, service_name="a", kind="CLIENT")
    acc.flush()

    def requests(service: str) -> float | None:
        return registry.get_sample_value(
            M.REQUESTS,
            {"service_name": service, "geo_country_iso_code": "FR", "device_class": "unknown"},
        )

    assert (requests("a"), requests("other")) == (2.0, 2.0)  # weight 8 capped at 1 / 0.5
    calls = {
        s.labels["gen_ai_provider_name"]
        for f in registry.collect()
        for s in f.samples
        if s.name == M.GEN_AI_CALLS
    }
    assert calls == {"openai", "other"}


def test_the_exporter_builds_its_accountant_from_the_settings_given() -> None:
    chosen = AccountingSettings.resolve(min_sampling_probability=0.5)
    exporter = FootprintExporter(registry=CollectorRegistry(), settings=chosen)
    assert exporter.accountant.settings is chosen
    with pytest.raises(ValueError, match="not both"):
        FootprintExporter(accountant=exporter.accountant, settings=chosen)
    assert FootprintExporter(accountant=exporter.accountant).accountant is exporter.accountant


def test_configure_resolves_the_settings_once_and_passes_them_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_downstream.agent.pipeline import configure

    _environment(monkeypatch)
    resolved = _counting_resolve(monkeypatch)
    handle = configure(
        "shop",
        tracer_provider=TracerProvider(),
        registry=CollectorRegistry(),
        metrics_port=None,
        model_limit=3,
    )
    try:
        assert len(resolved) == 1 and handle.accountant.settings is resolved[0]
        assert handle.accountant.settings.model_limit == 3  # the argument
        assert handle.accountant.settings.min_sampling_probability == 0.5  # the variable
    finally:
        handle.shutdown()
