"""The engine facade: configuration, composition of the models, caching and input errors."""

from __future__ import annotations

import math

import pytest

from otel_downstream.agent import environment as env
from otel_downstream.exporters.engine import grid, water
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.footprint import InputError

MB = 1_000_000


def _by_segment(footprints: tuple) -> dict:  # type: ignore[type-arg]
    return {f.segment: f for f in footprints}


# --- configuration -------------------------------------------------------------------------------
def test_defaults_are_documented_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dir(env):
        if name.startswith("OTEL_DOWNSTREAM_"):
            monkeypatch.delenv(getattr(env, name), raising=False)
    cfg = EngineConfig.from_env()
    assert cfg == EngineConfig()
    assert (cfg.network_method, cfg.device_method, cfg.llm_method) == (
        "swd-v4",
        "swd-v4",
        "ecologits-prefill",
    )
    assert cfg.desktop_laptop_share == 0.75
    assert cfg.hydro_evaporation  # as WRI and EcoLogits (the AI segment) count it
    assert not (cfg.include_embodied or cfg.include_datacenter)


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_DEVICE_METHOD, "time")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_DESKTOP_LAPTOP_SHARE, "0.4")
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_INCLUDE_DATACENTER, "true")
    cfg = EngineConfig.from_env(desktop_laptop_share=0.9)
    assert cfg.device_method == "time" and cfg.include_datacenter
    assert cfg.desktop_laptop_share == 0.9


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (env.OTEL_DOWNSTREAM_NETWORK_METHOD, "swd-v9", "network_method='swd-v9'"),
        (env.OTEL_DOWNSTREAM_DEVICE_METHOD, "watts", "device_method='watts'"),
        (env.OTEL_DOWNSTREAM_INCLUDE_EMBODIED, "maybe", env.OTEL_DOWNSTREAM_INCLUDE_EMBODIED),
        (env.OTEL_DOWNSTREAM_DESKTOP_LAPTOP_SHARE, "1.5", "desktop_laptop_share=1.5"),
    ],
)
def test_misconfiguration_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=message):
        EngineConfig.from_env()


def test_from_env_rejects_unknown_override() -> None:
    with pytest.raises(TypeError, match="colour"):
        EngineConfig.from_env(colour="green")


# --- HTTP requests -------------------------------------------------------------------------------
def test_http_request_matches_the_network_model_at_the_customers_grid() -> None:
    fps = _by_segment(
        Engine(EngineConfig()).http_request(
            request_bytes=2_000, response_bytes=MB - 2_000, country="FR", device_class="smartphone"
        )
    )
    assert set(fps) == {"network", "customer_device"}
    # co2.js-exact model with both segments at France's grid gives the same operational figures
    ref = network.transfer(MB, grid_intensity={"network": "FR", "device": "FR"}).segments
    assert fps["network"].total.co2e_g == pytest.approx(ref["network"].operational_co2e_g)
    assert fps["customer_device"].total.co2e_g == pytest.approx(ref["device"].operational_co2e_g)
    assert fps["network"].total.energy_j == pytest.approx(ref["network"].energy_j)
    # water is the same energy at France's water intensity
    l_per_kwh = water.intensity("FR").l_per_kwh
    for fp in fps.values():
        assert fp.total.water_l == pytest.approx(fp.total.energy_j / 3.6e6 * l_per_kwh)
        assert fp.flags == () and fp.category_d and fp.embodied.co2e_g == 0.0


@pytest.mark.parametrize("country", [None, "ZZ", "Atlantis"])
def test_unknown_country_uses_world_averages_and_says_so(country: str | None) -> None:
    fps = _by_segment(
        Engine(EngineConfig()).http_request(
            request_bytes=0, response_bytes=MB, country=country, device_class="desktop"
        )
    )
    net = fps["network"]
    assert "country_unknown" in net.flags and "country_unknown" in fps["customer_device"].flags
    kwh = net.total.energy_j / 3.6e6
    assert net.total.co2e_g == pytest.approx(kwh * grid.intensity(None).g_co2e_per_kwh)
    assert net.total.water_l == pytest.approx(kwh * water.intensity(None).l_per_kwh)


def test_datacenter_only_when_enabled_and_not_category_d() -> None:
    fps = Engine(EngineConfig(include_datacenter=True)).http_request(
        request_bytes=0, response_bytes=MB, country="DE", device_class="tablet"
    )
    assert [f.segment for f in fps] == ["network", "customer_device", "datacenter"]
    dc = fps[2]
    assert not dc.category_d
    ref = network.transfer(MB).segments["data_center"]
    assert dc.total.co2e_g == pytest.approx(ref.operational_co2e_g)


def test_green_hosting_zeroes_datacenter_operational_carbon() -> None:
    fps = Engine(EngineConfig(include_datacenter=True, green_hosting=True)).http_request(
        request_bytes=0, response_bytes=MB, country="DE", device_class="tablet"
    )
    assert fps[2].total.co2e_g == 0.0 and fps[2].total.energy_j > 0


def test_embodied_adds_co2e_only() -> None:
    args = {"request_bytes": 0, "response_bytes": MB, "country": "US", "device_class": "tv"}
    plain = _by_segment(Engine(EngineConfig()).http_request(**args))
    embodied = _by_segment(Engine(EngineConfig(include_embodied=True)).http_request(**args))
    ref = network.transfer(MB).segments
    for seg, ref_name in (("network", "network"), ("customer_device", "device")):
        assert embodied[seg].embodied.co2e_g == pytest.approx(ref[ref_name].embodied_co2e_g)
        assert embodied[seg].total.energy_j == plain[seg].total.energy_j
        assert embodied[seg].total.water_l == plain[seg].total.water_l
        assert embodied[seg].operational.co2e_g == pytest.approx(plain[seg].total.co2e_g)


def test_time_method_uses_engagement_and_falls_back_with_a_flag() -> None:
    engine = Engine(EngineConfig(device_method="time"))
    timed = _by_segment(
        engine.http_request(
            request_bytes=0, response_bytes=MB, country="GB", device_class="tv", engagement_s=60
        )
    )["customer_device"]
    assert timed.method == "time-v1"
    assert timed.total.energy_j == pytest.approx(100.0 * 60)  # 100 W TV for a minute
    assert timed.low is not None and timed.high is not None
    assert timed.low.energy_j < timed.total.energy_j < timed.high.energy_j
    # Without engagement the request counts network only: the beacon's span brings the device.
    untimed = _by_segment(
        engine.http_request(request_bytes=0, response_bytes=MB, country="GB", device_class="tv")
    )
    assert set(untimed) == {"network"}


def test_swd_method_ignores_engagement_and_bots_have_no_device() -> None:
    engine = Engine(EngineConfig())
    a = engine.http_request(
        request_bytes=0, response_bytes=MB, country="FR", device_class="console", engagement_s=999
    )
    b = engine.http_request(
        request_bytes=0, response_bytes=MB, country="FR", device_class="console"
    )
    assert a == b
    bot = _by_segment(
        engine.http_request(request_bytes=0, response_bytes=MB, country="FR", device_class="bot")
    )
    assert bot["customer_device"].total.energy_j == 0.0 and bot["network"].total.energy_j > 0


def test_cached_rates_give_identical_answers_and_scale_linearly() -> None:
    engine = Engine(EngineConfig())
    one = engine.http_request(request_bytes=0, response_bytes=MB, country="BR", device_class="tv")
    again = engine.http_request(request_bytes=0, response_bytes=MB, country="BR", device_class="tv")
    double = engine.http_request(
        request_bytes=MB, response_bytes=MB, country="BR", device_class="tv"
    )
    assert one == again
    assert double[0].total.co2e_g == pytest.approx(2 * one[0].total.co2e_g)
    lower = engine.http_request(request_bytes=0, response_bytes=MB, country="br", device_class="tv")
    assert lower[0].total == one[0].total


def test_hydro_evaporation_switch_changes_water_only() -> None:
    args = {"request_bytes": 0, "response_bytes": MB, "country": "NO", "device_class": "tablet"}
    off = Engine(EngineConfig(hydro_evaporation=False)).http_request(**args)[0]
    on = Engine(EngineConfig()).http_request(**args)[0]
    assert on.total.water_l > 10 * off.total.water_l
    assert on.total.co2e_g == off.total.co2e_g


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"request_bytes": -1}, "request_bytes"),
        ({"response_bytes": math.nan}, "response_bytes"),
        ({"response_bytes": "10"}, "response_bytes"),
        ({"device_class": "fridge"}, "device_class"),
        ({"country": 250}, "country"),
    ],
)
def test_invalid_http_input_names_the_field(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    args = {"request_bytes": 0, "response_bytes": 10, "country": "FR", "device_class": "tv"}
    with pytest.raises(InputError) as info:
        Engine(EngineConfig()).http_request(**{**args, **kwargs})
    assert info.value.field == field


def test_invalid_engagement_with_time_method() -> None:
    with pytest.raises(InputError, match="engagement_s="):
        Engine(EngineConfig(device_method="time")).http_request(
            request_bytes=0, response_bytes=1, country="FR", device_class="tv", engagement_s=-3
        )


# --- LLM and hosts -------------------------------------------------------------------------------
def test_llm_call_is_the_llm_model_with_the_configured_method() -> None:
    engine = Engine(EngineConfig(llm_method="ecologits"))
    got = engine.llm_call(
        provider="openai", model="gpt-4o-mini", input_tokens=100, output_tokens=300, latency_s=3.0
    )
    want = llm.llm_call(
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=100,
        output_tokens=300,
        latency_s=3.0,
        method="ecologits",
        include_embodied=False,
    )
    assert got == want and got.segment == "ai_inference" and got.total.co2e_g > 0


def test_host_interval_applies_pue_share_and_the_hosts_grid() -> None:
    fp = Engine(EngineConfig()).host_interval(
        energy_j=3.6e6, country="DE", pue=1.5, share=0.5, embodied_co2e_g=8.0
    )
    kwh = 1.0 * 1.5 * 0.5
    assert fp.segment == "customer_infrastructure" and fp.category_d
    assert fp.total.energy_j == pytest.approx(kwh * 3.6e6)
    assert fp.operational.co2e_g == pytest.approx(kwh * grid.intensity("DE").g_co2e_per_kwh)
    assert fp.total.water_l == pytest.approx(kwh * water.intensity("DE").l_per_kwh)
    assert fp.embodied.co2e_g == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"pue": 0.9}, "pue"), ({"share": 1.2}, "share"), ({"energy_j": -5}, "energy_j")],
)
def test_host_interval_input_errors(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as info:
        Engine(EngineConfig()).host_interval(**{"energy_j": 1.0, "country": "FR", **kwargs})
    assert info.value.field == field


def test_versions_name_methods_and_data() -> None:
    v = Engine(EngineConfig(device_method="time", hydro_evaporation=True)).versions()
    assert v["network_method"] == "swd-v4" and v["device_method"] == "time-v1"
    assert v["water_data"] == "water-v1+hydro-evaporation"
    assert v["embedding_method"] == "embedding-encoder-v1"
    assert v["grid_data"] == grid.DATA_VERSION
    assert all(isinstance(x, str) and x for x in v.values())
