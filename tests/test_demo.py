"""`otel-downstream demo` for real: a subprocess with its own servers on 127.0.0.1, read like a user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import iptocc
import pytest

from otel_downstream.agent.client.device_class import classify
from otel_downstream.exporters.demo.traffic import plan_visits
from otel_downstream.exporters.demo.visitors import COUNTRIES, DEVICES
from otel_downstream.exporters.metrics.totals import energy_text, summarize, water_text

SEGMENTS = ("network", "customer_device", "ai_inference", "customer_infrastructure")


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("otel-downstream")
    if script.exists():
        return [str(script), "demo", *args]
    return [sys.executable, "-m", "otel_downstream.exporters.cli.main", "demo", *args]


def _section(text: str, title: str) -> dict[str, list[str]]:
    """Rows of one summary table: first column -> the other cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        rows[name] = cells
    return rows


def _number(cell: str) -> float:
    return float(cell.split(maxsplit=1)[0])


@pytest.mark.e2e
def test_demo_runs_end_to_end_and_prints_every_breakdown() -> None:
    started = time.monotonic()
    done = subprocess.run(
        _command("--requests", "160", "--metrics-port", "0", "--host-interval", "0.5"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert elapsed < 60
    out = done.stdout
    assert "LOCAL STAND-IN" in out  # the fake provider is announced as such
    assert "traffic: 160/160 requests (100%)" in out

    segments = _section(out, "By segment")
    assert set(SEGMENTS) <= set(segments)
    for name in SEGMENTS:
        energy, co2e, water, _share = segments[name]
        assert _number(energy) > 0 and _number(co2e) > 0 and _number(water) > 0, name

    countries = _section(out, "By client country")
    assert len(set(countries) - {"ZZ"}) >= 5
    assert set(countries) <= {*COUNTRIES, "ZZ"}
    devices = _section(out, "By device class")
    assert set(DEVICES) <= set(devices)  # the first visitors cycle through every class
    models = _section(out, "By model")
    assert any(m.startswith("openai / gpt-4o") for m in models)
    assert any(m.startswith("mistral_ai / mistral-") for m in models)
    assert all(_number(cells[1]) > 0 for cells in models.values())

    intensities = _section(out, "Intensities")
    per_1k = next(cells for name, cells in intensities.items() if name.startswith("per 1,000"))
    assert _number(per_1k[1]) > 0
    # downstream.functional_unit="user" on each person's first request (crawlers are not users)
    per_user = next(name for name in intensities if name.startswith("per user"))
    assert int(re.search(r"\((\d+)\)", per_user).group(1)) >= 3
    assert re.search(r"Total: [0-9.]+ k?Wh, [0-9.e-]+ g CO2e, [0-9.]+ m?L water", out)
    assert "network_method=swd-v4" in out and "llm_method=" in out
    assert re.search(r"Metrics: http://127\.0\.0\.1:\d+/metrics", out)


@pytest.mark.e2e
def test_keep_serving_exposes_metrics_until_sigint() -> None:
    process = subprocess.Popen(
        _command("--requests", "40", "--metrics-port", "0", "--keep-serving"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        url = None
        seen = []
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"Keep serving: shop (\S+), /metrics (\S+);", line)
            if found:
                url = found.group(2)
        assert url is not None, "".join(seen)
        body = httpx.get(url, timeout=10).text
        assert "downstream_co2e_grams_total{" in body
        # The printed total is what /metrics holds (nothing is sent after the summary).
        printed = re.search(r"Total: \S+ \S+, (\S+) g CO2e", "".join(seen))
        assert printed is not None
        assert summarize(body).total.co2e_g == pytest.approx(float(printed.group(1)), rel=1e-3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "Stopped." in out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_traffic_plan_is_bounded_and_repeatable() -> None:
    visits = plan_visits(500, seed=3)
    assert sum(len(v.steps) for v in visits) == 500
    assert plan_visits(500, seed=3) == visits
    assert plan_visits(500, seed=4) != visits
    kinds = {step.kind for v in visits for step in v.steps}
    assert {"page", "asset", "api", "upload", "beacon", "robots"} <= kinds
    assert {"llm-openai", "llm-openai-stream", "llm-mistral", "llm-mistral-stream"} <= kinds
    with pytest.raises(ValueError, match="requests=0"):
        plan_visits(0, seed=1)


@pytest.mark.parametrize("country", sorted(COUNTRIES))
def test_each_demo_address_geolocates_to_its_country(country: str) -> None:
    assert iptocc.country_code(COUNTRIES[country][1]) == country


@pytest.mark.parametrize("device_class", sorted(DEVICES))
def test_each_demo_user_agent_is_classified_as_its_device(device_class: str) -> None:
    for user_agent in DEVICES[device_class][1]:
        assert classify(user_agent).device_class == device_class, user_agent


def test_summary_units() -> None:
    assert energy_text(36.0) == "0.01 Wh"
    assert energy_text(3.6e6 * 2.5) == "2.500 kWh"
    assert water_text(0.0125) == "12.5 mL"
    assert water_text(3.25) == "3.250 L"


def test_summary_sums_a_real_exposition() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from otel_downstream.exporters.metrics.families import FootprintMetrics

    metrics = FootprintMetrics(CollectorRegistry(), build_info={"network_method": "swd-v4"})
    web = ("shop", "network", "operational", "FR", "smartphone", "", "")
    ai = ("shop", "ai_inference", "operational", "", "", "openai", "gpt-4o")
    for labels, (joules, grams, litres) in ((web, (36.0, 0.5, 0.01)), (ai, (72.0, 2.0, 0.03))):
        metrics.energy.labels(*labels).inc(joules)
        metrics.co2e.labels(*labels).inc(grams)
        metrics.water.labels(*labels).inc(litres)
    metrics.requests.labels("shop", "FR", "smartphone").inc(4)
    metrics.tokens.labels("shop", "openai", "gpt-4o", "output").inc(500)
    summary = summarize(generate_latest(metrics.registry).decode())
    assert summary.total.co2e_g == pytest.approx(2.5)
    assert summary.by_segment["network"].energy_j == pytest.approx(36.0)
    assert set(summary.by_country) == {"FR"} and set(summary.by_device) == {"smartphone"}
    assert set(summary.by_model) == {"openai / gpt-4o"}
    assert summary.requests == 4 and summary.tokens == {"output": 500}
    assert summary.versions["network_method"] == "swd-v4"


@pytest.mark.e2e
def test_demo_uses_given_provider_endpoints_instead_of_its_fake() -> None:
    from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI

    with FakeLLMAPI() as provider:  # stands for api.openai.com and api.mistral.ai
        done = subprocess.run(
            _command(
                "--requests",
                "40",
                "--metrics-port",
                "0",
                "--openai-base-url",
                provider.openai_base_url,
                "--openai-api-key",
                "sk-test",
                "--mistral-server-url",
                provider.mistral_server_url,
                "--mistral-api-key",
                "test",
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        paths = {r.path for r in provider.received}
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "LOCAL STAND-IN" not in done.stdout
    assert f"OpenAI: {provider.openai_base_url} (real calls)" in done.stdout
    assert {"/v1/chat/completions", "/mistral/v1/chat/completions"} <= paths
    assert any(m.startswith("mistral_ai / ") for m in _section(done.stdout, "By model"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--requests", "0"], "--requests and --concurrency must be positive"),
        (["--host-interval", "0"], "--host-interval > 0"),
        (["--metrics-port", "70000"], "ports must be 0-65535"),
        (
            ["--mistral-server-url", "http://127.0.0.1:9/mistral"],
            "needs --mistral-api-key or MISTRAL_API_KEY",
        ),
    ],
)
def test_demo_rejects_bad_settings(args: list[str], message: str) -> None:
    # (a keyless --openai-base-url is fine: local servers get a placeholder, tests/exporters/
    # test_demo_servers.py)
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    command = _command("--metrics-port", "0", *args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2
    assert message in done.stderr
