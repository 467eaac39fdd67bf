"""The accounting core: totals equal the engine's figures for the same inputs, whatever the path."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.agent.faults import report_fault, reset_faults
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.footprint import Footprint
from otel_downstream.exporters.metrics import families as M


def _accountant(
    min_sampling_probability: float = 0.01, **config: object
) -> tuple[Accountant, CollectorRegistry]:
    """An accountant that believes sampling weights up to 100 (tests of weighting need them)."""
    registry = CollectorRegistry()
    engine = Engine(EngineConfig(**config))  # type: ignore[arg-type]
    acc = Accountant(
        engine,
        registry=registry,
        settings=AccountingSettings.resolve(min_sampling_probability=min_sampling_probability),
    )
    return acc, registry


def _http(req: int, resp: int, country: str | None = "FR", device: str | None = "desktop") -> dict:
    attrs: dict[str, object] = {
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_REQUEST_BODY_SIZE: req,
        A.HTTP_RESPONSE_BODY_SIZE: resp,
    }
    if country is not None:
        attrs[A.GEO_COUNTRY_ISO_CODE] = country
    if device is not None:
        attrs[A.DOWNSTREAM_DEVICE_CLASS] = device
    return attrs


def _gen_ai(model: str = "gpt-4o-mini", inp: int = 300, out: int = 500) -> dict:
    return {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: inp,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: out,
    }


def _sum(registry: CollectorRegistry, name: str, **match: str) -> float:
    """Sum of a metric's samples whose labels include ``match``."""
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
                total += sample.value
    return total


def _expected(footprints: list[Footprint], segment: str, attr: str = "co2e_g") -> float:
    return sum(getattr(fp.total, attr) for fp in footprints if fp.segment == segment)


def test_http_totals_equal_the_engine_per_segment_country_and_device() -> None:
    acc, reg = _accountant()
    engine = Engine(EngineConfig())
    cases = [
        (0, 512, "FR", "desktop"),
        (2_000, 150_000, "FR", "desktop"),
        (10, 3_000_000, "US", "smartphone"),
        (70, 800, "in", "tablet"),
        (1, 1, None, None),
        (55, 66, "FR", "bot"),
    ]
    expected: list[Footprint] = []
    for _ in range(3):
        for req, resp, country, device in cases:
            assert acc.account(
                _http(req, resp, country, device), service_name="shop", kind="SERVER"
            )
            expected += engine.http_request(
                request_bytes=req,
                response_bytes=resp,
                country=country.upper() if country else None,
                device_class=device or "unknown",
            )
    for segment in ("network", "customer_device"):
        for attr, metric in (("energy_j", M.ENERGY), ("co2e_g", M.CO2E), ("water_l", M.WATER)):
            got = _sum(reg, metric, segment=segment)
            assert got == pytest.approx(_expected(expected, segment, attr), rel=1e-9)
            assert got > 0
    us = engine.http_request(
        request_bytes=10, response_bytes=3_000_000, country="US", device_class="smartphone"
    )
    got_us = _sum(reg, M.CO2E, geo_country_iso_code="US", device_class="smartphone")
    assert got_us == pytest.approx(3 * sum(fp.total.co2e_g for fp in us), rel=1e-9)
    assert _sum(reg, M.REQUESTS) == 3 * len(cases)
    assert _sum(reg, M.REQUESTS, geo_country_iso_code="ZZ", device_class="unknown") == 3
    assert _sum(reg, M.TRANSFER_BYTES, direction="request") == 3 * sum(c[0] for c in cases)
    assert _sum(reg, M.TRANSFER_BYTES, direction="response") == 3 * sum(c[1] for c in cases)
    assert _sum(reg, M.UNKNOWN, kind="country") == 3  # the request without a country
    assert _sum(reg, M.SPANS_ACCOUNTED, type="http") == 3 * len(cases)
    # Not-applicable labels are empty, as documented.
    assert _sum(reg, M.CO2E, gen_ai_provider_name="", gen_ai_request_model="") == pytest.approx(
        sum(fp.total.co2e_g for fp in expected), rel=1e-9
    )


def test_weight_scales_every_figure() -> None:
    acc, reg = _accountant()
    once, _ = _accountant()
    for _ in range(10):
        once.account(_http(100, 20_000), service_name="s", kind="SERVER")
    acc.account(_http(100, 20_000), service_name="s", kind="SERVER", weight=10.0)
    once_reg = once.metrics.registry
    for metric in (M.CO2E, M.ENERGY, M.WATER, M.REQUESTS, M.TRANSFER_BYTES):
        assert _sum(reg, metric) == pytest.approx(_sum(once_reg, metric), rel=1e-12)
    assert _sum(reg, M.REQUEST_CO2E + "_count") == 10
    assert _sum(reg, M.REQUEST_CO2E + "_sum") == pytest.approx(_sum(reg, M.CO2E), rel=1e-12)


def test_a_weight_above_the_sampling_floor_is_capped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client writes any ``ot=th`` it likes into the context it sends: 4.5e15 requests from one
    must not reach the counters, which never go down."""
    acc, reg = _accountant(min_sampling_probability=0.1)
    assert acc.account(_http(100, 20_000), service_name="s", kind="SERVER", weight=4.5e15)
    assert acc.account(_http(100, 20_000), service_name="s", kind="SERVER", weight=2.0**56)
    assert acc.account(_http(100, 20_000), service_name="s", kind="SERVER", weight=4.0)
    assert _sum(reg, M.REQUESTS) == 24.0  # 10 + 10 + 4
    assert _sum(reg, M.UNKNOWN, kind="sampling_weight") == 2
    assert sum("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY" in r.message for r in caplog.records) == 1


def test_rejections_are_capped_by_the_sampling_floor_too() -> None:
    acc, reg = _accountant(min_sampling_probability=0.5)
    acc.reject("invalid_span_kind", weight=4.5e15)
    bad = _http(1, 2)
    bad[A.HTTP_RESPONSE_BODY_SIZE] = -1
    assert not acc.account(bad, service_name="s", kind="SERVER", weight=4.5e15)
    assert _sum(reg, M.SPANS_REJECTED) == 4.0


def test_by_default_no_sampling_weight_is_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY", raising=False)
    registry = CollectorRegistry()
    acc = Accountant(Engine(EngineConfig()), registry=registry)
    assert acc.account(_http(1, 2), service_name="s", kind="SERVER", weight=10.0)
    assert _sum(registry, M.REQUESTS) == 1.0
    monkeypatch.setenv("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY", "0.5")
    acc = Accountant(Engine(EngineConfig()), registry=(registry := CollectorRegistry()))
    assert acc.account(_http(1, 2), service_name="s", kind="SERVER", weight=10.0)
    assert _sum(registry, M.REQUESTS) == 2.0


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.1", "nan", "x"])
def test_a_bad_sampling_floor_names_the_setting(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY", bad)
    with pytest.raises(ValueError, match="OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY"):
        Accountant(Engine(EngineConfig()), registry=CollectorRegistry())


@pytest.mark.parametrize("weight", [0.0, -1.0, math.nan, math.inf])
def test_unusable_weight_is_a_counted_rejection(weight: float) -> None:
    acc, reg = _accountant()
    assert not acc.account(_http(1, 2), service_name="s", kind="SERVER", weight=weight)
    assert _sum(reg, M.SPANS_REJECTED, reason="invalid_weight") == 1
    assert _sum(reg, M.REQUESTS) == 0


def test_histogram_buckets_hold_each_request_co2e() -> None:
    acc, reg = _accountant()
    engine = Engine(EngineConfig())
    sizes = [0, 1_000, 100_000, 10_000_000, 500_000_000]
    per_request = []
    for size in sizes:
        acc.account(_http(0, size, "DE", "desktop"), service_name="s", kind="SERVER")
        fps = engine.http_request(
            request_bytes=0, response_bytes=size, country="DE", device_class="desktop"
        )
        per_request.append(sum(fp.total.co2e_g for fp in fps))
    for bound in M.CO2E_BUCKETS_G:
        got = reg.get_sample_value(
            M.REQUEST_CO2E + "_bucket", {"service_name": "s", "kind": "http", "le": str(bound)}
        )
        assert got == sum(1 for x in per_request if x <= bound), bound
    assert reg.get_sample_value(
        M.REQUEST_CO2E + "_sum", {"service_name": "s", "kind": "http"}
    ) == pytest.approx(sum(per_request), rel=1e-9)


def test_engagement_time_uses_the_engine_per_span() -> None:
    acc, reg = _accountant(device_method="time")
    engine = Engine(EngineConfig(device_method="time"))
    attrs = {**_http(300, 40_000, "FR", "smartphone"), A.DOWNSTREAM_ENGAGEMENT_SECONDS: 95.0}
    acc.account(attrs, service_name="s", kind="SERVER")
    acc.account(
        {
            A.DOWNSTREAM_ENGAGEMENT_SECONDS: 30.0,
            A.GEO_COUNTRY_ISO_CODE: "FR",
            A.DOWNSTREAM_DEVICE_CLASS: "smartphone",
        },
        service_name="s",
        name="downstream.engagement",
        kind="INTERNAL",
    )
    fps = list(
        engine.http_request(
            request_bytes=300,
            response_bytes=40_000,
            country="FR",
            device_class="smartphone",
            engagement_s=95.0,
        )
    )
    fps += engine.http_request(
        request_bytes=0,
        response_bytes=0,
        country="FR",
        device_class="smartphone",
        engagement_s=30.0,
    )
    assert _sum(reg, M.CO2E, segment="customer_device") == pytest.approx(
        _expected(fps, "customer_device"), rel=1e-9
    )
    assert _sum(reg, M.CO2E, segment="network") == pytest.approx(
        _expected(fps, "network"), rel=1e-9
    )
    assert _sum(reg, M.REQUESTS) == 1  # the beacon is not a request
    assert _sum(reg, M.SPANS_ACCOUNTED, type="engagement") == 1


def test_time_method_counts_a_page_once_request_plus_beacon() -> None:
    """The page's request (bytes, no seconds) and its beacon (seconds) give one device figure."""
    acc, reg = _accountant(device_method="time")
    engine = Engine(EngineConfig(device_method="time"))
    acc.account(_http(300, 40_000, "FR", "smartphone"), service_name="s", kind="SERVER")
    beacon = {
        A.DOWNSTREAM_ENGAGEMENT_SECONDS: 30.0,
        A.GEO_COUNTRY_ISO_CODE: "FR",
        A.DOWNSTREAM_DEVICE_CLASS: "smartphone",
    }
    acc.account(beacon, service_name="s", name="downstream.engagement", kind="INTERNAL")
    only_time = engine.http_request(
        request_bytes=0,
        response_bytes=0,
        country="FR",
        device_class="smartphone",
        engagement_s=30.0,
    )
    assert _sum(reg, M.ENERGY, segment="customer_device") == pytest.approx(
        _expected(list(only_time), "customer_device", "energy_j"), rel=1e-12
    )
    assert _sum(reg, M.ENERGY, segment="customer_device") == pytest.approx(1.0 * 30.0)  # 1 W phone
    assert _sum(reg, M.ENERGY, segment="network") > 0


def test_gen_ai_totals_tokens_and_deprecated_names() -> None:
    acc, reg = _accountant()
    engine = Engine(EngineConfig())
    acc.account(_gen_ai(), service_name="s", kind="CLIENT", duration_s=2.5)
    old = {
        A.GEN_AI_SYSTEM: "openai",
        A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        A.GEN_AI_USAGE_PROMPT_TOKENS: 300,
        A.GEN_AI_USAGE_COMPLETION_TOKENS: 500,
    }
    acc.account(old, service_name="s", kind="CLIENT", duration_s=2.5)
    fp = engine.llm_call(
        provider="openai", model="gpt-4o-mini", input_tokens=300, output_tokens=500, latency_s=2.5
    )
    labels = {
        "segment": "ai_inference",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
    }
    assert _sum(reg, M.CO2E, **labels) == pytest.approx(2 * fp.total.co2e_g, rel=1e-9)
    assert _sum(reg, M.ENERGY, **labels) == pytest.approx(2 * fp.total.energy_j, rel=1e-9)
    assert _sum(reg, M.WATER, **labels) == pytest.approx(2 * fp.total.water_l, rel=1e-9)
    assert fp.total.co2e_g > 0
    assert _sum(reg, M.GEN_AI_TOKENS, gen_ai_token_type="input") == 600
    assert _sum(reg, M.GEN_AI_TOKENS, gen_ai_token_type="output") == 1000
    assert _sum(reg, M.GEN_AI_CALLS) == 2
    assert _sum(reg, M.REQUEST_CO2E + "_count", kind="gen_ai") == 2


def test_host_samples_count_as_customer_infrastructure() -> None:
    acc, reg = _accountant()
    engine = Engine(EngineConfig())
    attrs = {
        A.DOWNSTREAM_HOST_ENERGY_JOULES: 36_000.0,
        A.DOWNSTREAM_HOST_ENERGY_METHOD: "modelled",
        A.DOWNSTREAM_HOST_PUE: 1.5,
        A.DOWNSTREAM_HOST_SHARE: 0.5,
        A.GEO_COUNTRY_ISO_CODE: "PL",
    }
    assert acc.account(attrs, service_name="edge", name=A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME)
    fp = engine.host_interval(energy_j=36_000.0, country="PL", pue=1.5, share=0.5)
    assert _sum(reg, M.CO2E, segment="customer_infrastructure", geo_country_iso_code="PL") == (
        pytest.approx(fp.total.co2e_g, rel=1e-12)
    )
    assert _sum(reg, M.HOST_SAMPLES, method="modelled") == 1


def test_embodied_is_its_own_scope_and_scopes_add_up_to_the_total() -> None:
    acc, reg = _accountant(include_embodied=True, include_datacenter=True)
    engine = Engine(EngineConfig(include_embodied=True, include_datacenter=True))
    acc.account(_http(500, 90_000, "SE", "smartphone"), service_name="s", kind="SERVER")
    fps = engine.http_request(
        request_bytes=500, response_bytes=90_000, country="SE", device_class="smartphone"
    )
    assert {fp.segment for fp in fps} >= {"network", "customer_device", "datacenter"}
    embodied = sum(fp.embodied.co2e_g for fp in fps)
    assert embodied > 0
    assert _sum(reg, M.CO2E, scope="embodied") == pytest.approx(embodied, rel=1e-9)
    assert _sum(reg, M.CO2E) == pytest.approx(sum(fp.total.co2e_g for fp in fps), rel=1e-9)
    assert _sum(reg, M.CO2E, segment="datacenter") > 0


def test_bad_spans_are_counted_and_the_rest_still_accounted() -> None:
    acc, reg = _accountant()
    good = _http(100, 5_000)
    spans = [
        good,
        _http(-1, 5_000),
        _http(100, int(1e15)),
        {**_gen_ai(), A.GEN_AI_USAGE_INPUT_TOKENS: math.nan},
        {**_gen_ai(), A.GEN_AI_USAGE_OUTPUT_TOKENS: "lots"},
        good,
        _http(100, 5_000, country="Atlantis", device="fridge"),
    ]
    kinds = ["SERVER", "SERVER", "SERVER", "CLIENT", "CLIENT", "SERVER", "SERVER"]
    results = [acc.account(s, service_name="s", kind=k) for s, k in zip(spans, kinds)]
    assert results == [True, False, False, False, False, True, True]
    assert _sum(reg, M.SPANS_REJECTED, reason="invalid_bytes") == 2
    assert _sum(reg, M.SPANS_REJECTED, reason="invalid_tokens") == 2
    assert _sum(reg, M.REQUESTS) == 3
    assert _sum(reg, M.REQUESTS, geo_country_iso_code="ZZ", device_class="unknown") == 1
    assert _sum(reg, M.UNKNOWN, kind="invalid_country") == 1
    assert _sum(reg, M.UNKNOWN, kind="device_class") == 1
    assert _sum(reg, M.GEN_AI_CALLS) == 0


def test_a_request_without_a_response_size_is_counted_as_unknown() -> None:
    acc, reg = _accountant()
    assert acc.account({A.HTTP_REQUEST_METHOD: "GET"}, service_name="s", kind="SERVER")
    assert acc.account(_http(0, 0), service_name="s", kind="SERVER")
    assert _sum(reg, M.UNKNOWN, kind="response_size") == 1
    assert _sum(reg, M.REQUESTS) == 2


def test_spans_that_are_not_ours_are_ignored_not_rejected() -> None:
    acc, reg = _accountant()
    assert not acc.account({"db.system": "postgresql"}, service_name="s", kind="CLIENT")
    assert not acc.account(_http(1, 1), service_name="s", kind="CLIENT")
    assert _sum(reg, M.SPANS_REJECTED) == 0


def test_unknown_model_is_accounted_and_counted_and_many_models_fold_into_other() -> None:
    registry = CollectorRegistry()
    acc = Accountant(
        Engine(EngineConfig()),
        registry=registry,
        settings=AccountingSettings.resolve(model_limit=5, allowed_models=("gpt-4o",)),
    )
    for i in range(50):
        assert acc.account(_gen_ai(f"acme-13b-v{i}"), service_name="s", kind="CLIENT")
    acc.account(_gen_ai("gpt-4o"), service_name="s", kind="CLIENT")
    models = {
        s.labels["gen_ai_request_model"]
        for f in registry.collect()
        for s in f.samples
        if s.name == M.GEN_AI_CALLS
    }
    assert models == {*(f"acme-13b-v{i}" for i in range(5)), "other", "gpt-4o"}
    assert _sum(registry, M.GEN_AI_CALLS, gen_ai_request_model="other") == 45
    assert _sum(registry, M.LABEL_OVERFLOW, label="gen_ai_request_model") == 45
    assert _sum(registry, M.UNKNOWN, kind="model") >= 50


def test_faults_are_published_as_instrumentation_errors() -> None:
    reset_faults()
    _acc, reg = _accountant()
    report_fault("agent.wsgi", RuntimeError("boom"))
    report_fault("agent.wsgi", RuntimeError("boom"))
    assert _sum(reg, M.INSTRUMENTATION_ERRORS, component="agent.wsgi") == 2
    report_fault("agent.wsgi", RuntimeError("boom"))
    assert _sum(reg, M.INSTRUMENTATION_ERRORS, component="agent.wsgi") == 3
    reset_faults()


def test_build_info_carries_engine_versions() -> None:
    acc, reg = _accountant()
    versions = acc.engine.versions()
    info = [s for f in reg.collect() for s in f.samples if s.name == M.BUILD_INFO]
    assert len(info) == 1 and info[0].value == 1
    assert {k: info[0].labels[k] for k in versions} == versions
    assert info[0].labels["version"]


def test_concurrent_accounting_loses_nothing() -> None:
    acc, reg = _accountant()

    def work() -> None:
        for i in range(2_000):
            acc.account(_http(10, 1_000 + i % 7), service_name="s", kind="SERVER")
            if i % 500 == 0:
                acc.flush()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _sum(reg, M.REQUESTS) == 8_000
    assert _sum(reg, M.TRANSFER_BYTES, direction="request") == 80_000


def test_metrics_can_be_unregistered_and_built_again_on_one_registry() -> None:
    registry = CollectorRegistry()
    first = Accountant(Engine(EngineConfig()), registry=registry)
    first.metrics.unregister()
    second = Accountant(Engine(EngineConfig()), registry=registry)
    second.account(_http(1, 2), service_name="s", kind="SERVER")
    assert _sum(registry, M.REQUESTS) == 1


@pytest.mark.parametrize("network_method", ["swd-v4", "swd-v3", "onebyte"])
@pytest.mark.parametrize("device_method", ["swd-v4", "time"])
@pytest.mark.parametrize("green", [False, True])
def test_every_method_matches_the_engine(
    network_method: str, device_method: str, green: bool
) -> None:
    config = {
        "network_method": network_method,
        "device_method": device_method,
        "green_hosting": green,
        "include_datacenter": True,
    }
    acc, reg = _accountant(**config)
    engine = Engine(EngineConfig(**config))  # type: ignore[arg-type]
    expected: list[Footprint] = []
    for req, resp, country in [(0, 1_000, "FR"), (300, 70_000, "US"), (9, 9, "BR")]:
        acc.account(_http(req, resp, country, "tablet"), service_name="s", kind="SERVER")
        expected += engine.http_request(
            request_bytes=req, response_bytes=resp, country=country, device_class="tablet"
        )
    for segment in ("network", "customer_device", "datacenter"):
        assert _sum(reg, M.WATER, segment=segment) == pytest.approx(
            _expected(expected, segment, "water_l"), rel=1e-9
        )
        assert _sum(reg, M.CO2E, segment=segment) == pytest.approx(
            _expected(expected, segment), rel=1e-9
        )


_ENGINE = Engine(EngineConfig())
_span = st.tuples(
    st.integers(0, 10**9),  # request bytes
    st.integers(0, 10**9),  # response bytes
    st.sampled_from(["FR", "US", "IN", "ZZ", "xx", None]),
    st.sampled_from(["smartphone", "desktop", "bot", "toaster", None]),
    st.sampled_from([1.0, 2.0, 10.0, 1.0000000000000036, 4.5]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_span, min_size=1, max_size=30))
def test_any_batch_totals_equal_the_weighted_engine_sum(spans: list) -> None:
    registry = CollectorRegistry()
    acc = Accountant(
        _ENGINE,
        registry=registry,
        settings=AccountingSettings.resolve(min_sampling_probability=0.1),
    )
    want = 0.0
    for req, resp, country, device, weight in spans:
        assert acc.account(
            _http(req, resp, country, device), service_name="s", kind="SERVER", weight=weight
        )
        ok_country = country if country in {"FR", "US", "IN"} else None
        ok_device = device if device in {"smartphone", "desktop", "bot"} else "unknown"
        fps = _ENGINE.http_request(
            request_bytes=req, response_bytes=resp, country=ok_country, device_class=ok_device
        )
        want += weight * sum(fp.total.co2e_g for fp in fps)
    assert _sum(registry, M.CO2E) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert _sum(registry, M.REQUESTS) == pytest.approx(sum(s[4] for s in spans), rel=1e-12)
    assert _sum(registry, M.REQUEST_CO2E + "_sum") == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_an_unusable_zone_falls_back_to_the_providers_zone_and_is_counted() -> None:
    acc, reg = _accountant()
    engine = Engine(EngineConfig())
    assert acc.account(
        {**_gen_ai(), A.DOWNSTREAM_GEN_AI_ZONE: "Mars-1"}, service_name="s", kind="CLIENT"
    )
    fp = engine.llm_call(
        provider="openai", model="gpt-4o-mini", input_tokens=300, output_tokens=500, latency_s=None
    )
    assert _sum(reg, M.CO2E, segment="ai_inference") == pytest.approx(fp.total.co2e_g, rel=1e-12)
    assert _sum(reg, M.UNKNOWN, kind="invalid_zone") == 1
    assert acc.account(
        {**_gen_ai(), A.DOWNSTREAM_GEN_AI_ZONE: "FRA"}, service_name="s", kind="CLIENT"
    )
    fra = engine.llm_call(
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=300,
        output_tokens=500,
        latency_s=None,
        zone="FRA",
    )
    assert fra.total.co2e_g < fp.total.co2e_g  # French grid: the zone was used
    assert _sum(reg, M.CO2E, segment="ai_inference") == pytest.approx(
        fp.total.co2e_g + fra.total.co2e_g, rel=1e-12
    )


_MULTIPROCESS_SCRIPT = """
import os, sys
import prometheus_client  # imported before the variable is set, as an app might
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import CollectorRegistry, multiprocess
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
acc = Accountant(Engine(EngineConfig()), registry=CollectorRegistry())
from otel_downstream.agent.faults import report_fault
for i in range(4):
    if i == 3:
        report_fault("agent.wsgi", RuntimeError("boom"))
    acc.account({"http.request.method": "GET", "http.response.body.size": 5000,
                 "geo.country.iso_code": "FR"}, service_name="s", kind="SERVER")
summed = CollectorRegistry()
multiprocess.MultiProcessCollector(summed)  # reads the files only: no flush hook runs here
print(summed.get_sample_value("downstream_requests_total",
      {"service_name": "s", "geo_country_iso_code": "FR", "device_class": "unknown"}))
print(summed.get_sample_value("downstream_instrumentation_errors_total",
      {"component": "agent.wsgi"}))
"""


def test_multiprocess_dir_set_after_import_is_honoured_at_construction(tmp_path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["4.0", "1.0"]
    assert list(tmp_path.glob("counter_*.db"))


def test_missing_multiprocess_dir_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR"):
        M.FootprintMetrics(CollectorRegistry())


def test_embeddings_are_priced_as_embeddings_whatever_the_model_name() -> None:
    """gen_ai.operation.name reaches the engine: an encoder without "embed" in its name, called
    for embeddings, is priced as one forward pass, not as a generative model."""
    engine = Engine(EngineConfig())
    figures = {}
    for operation in ("chat", "embeddings"):
        acc, registry = _accountant()
        attrs = {**_gen_ai("acme-encoder", inp=10_000, out=0), A.GEN_AI_OPERATION_NAME: operation}
        assert acc.account(attrs, service_name="s", kind="CLIENT")
        figures[operation] = _sum(registry, M.CO2E)
        expected = engine.llm_call(
            provider="openai",
            model="acme-encoder",
            input_tokens=10_000,
            output_tokens=0,
            latency_s=None,
            operation=operation,
        )
        assert figures[operation] == pytest.approx(expected.total.co2e_g, rel=1e-9)
    assert figures["embeddings"] < figures["chat"] / 10
