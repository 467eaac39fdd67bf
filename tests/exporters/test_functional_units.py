"""downstream.functional_unit on an accounted span counts downstream_functional_units_total{unit}."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import FUNCTIONAL_UNIT_LIMIT, Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M


def _accountant() -> tuple[Accountant, CollectorRegistry]:
    registry = CollectorRegistry()
    acc = Accountant(
        Engine(EngineConfig()),
        registry=registry,
        settings=AccountingSettings.resolve(min_sampling_probability=0.25),
    )
    return acc, registry


def _http(**extra: object) -> dict[str, object]:
    return {
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_RESPONSE_BODY_SIZE: 20_000,
        A.GEO_COUNTRY_ISO_CODE: "FR",
        A.DOWNSTREAM_DEVICE_CLASS: "smartphone",
        **extra,
    }


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_units_are_counted_per_service_and_weighted_by_sampling() -> None:
    acc, registry = _accountant()
    unit = {A.DOWNSTREAM_FUNCTIONAL_UNIT: "user"}
    assert acc.account(_http(**unit), service_name="shop", kind="SERVER")
    assert acc.account(_http(**unit), service_name="shop", kind="SERVER", weight=4.0)
    assert acc.account(_http(), service_name="shop", kind="SERVER")  # a returning user
    order = {A.DOWNSTREAM_FUNCTIONAL_UNIT: "order"}
    assert acc.account(_http(**order), service_name="blog", kind="SERVER")
    assert _value(registry, M.FUNCTIONAL_UNITS, service_name="shop", unit="user") == 5.0
    assert _value(registry, M.FUNCTIONAL_UNITS, service_name="blog", unit="order") == 1.0
    assert _value(registry, M.FUNCTIONAL_UNITS, service_name="shop", unit="order") == 0.0
    assert _value(registry, M.REQUESTS, service_name="shop", geo_country_iso_code="FR",
                  device_class="smartphone") == 6.0  # fmt: skip


def test_a_rejected_span_counts_no_unit() -> None:
    acc, registry = _accountant()
    bad = _http(**{A.DOWNSTREAM_FUNCTIONAL_UNIT: "user", A.HTTP_RESPONSE_BODY_SIZE: -1})
    assert not acc.account(bad, service_name="shop", kind="SERVER")
    assert _value(registry, M.FUNCTIONAL_UNITS, service_name="shop", unit="user") == 0.0


def test_odd_unit_values_are_counted_as_unknown_and_names_are_bounded() -> None:
    acc, registry = _accountant()
    for odd in ("", "  ", 3):
        assert acc.account(_http(**{A.DOWNSTREAM_FUNCTIONAL_UNIT: odd}), service_name="s",
                           kind="SERVER")  # fmt: skip
    assert _value(registry, M.UNKNOWN, kind="functional_unit") == 3.0
    for i in range(FUNCTIONAL_UNIT_LIMIT + 3):
        acc.account(_http(**{A.DOWNSTREAM_FUNCTIONAL_UNIT: f"u{i}"}), service_name="s",
                    kind="SERVER")  # fmt: skip
    assert _value(registry, M.FUNCTIONAL_UNITS, service_name="s", unit="other") == 3.0
    assert _value(registry, M.LABEL_OVERFLOW, label="unit") == 3.0
