"""``otel-downstream estimate``: the real console script for a few cases, cli.main for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_downstream.exporters.cli import main as cli
from otel_downstream.exporters.engine.network import transfer as network

SCRIPT = Path(sys.executable).parent / "otel-downstream"


def _script(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "estimate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the installed console script ------------------------------------------------------------------
def test_console_script_transfer_json_is_the_runtime_then_the_whole_co2js_model() -> None:
    done = _script("transfer", "--bytes", "1000000", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # What the middleware records (tests/exporters/test_estimate_parity.py holds it equal)
    assert set(out["segments"]) == {"network", "customer_device"}
    assert out["co2e_g"]["value"] == pytest.approx(
        sum(s["co2e_g"]["value"] for s in out["segments"].values())
    )
    # ... and co2.js's whole model, bit for bit
    co2js = out["co2js"]
    ref = network.transfer(1_000_000)
    assert co2js["co2e_g"]["value"] == ref.co2e_g == co2js["output"]["total"]
    assert co2js["rating"] == ref.rating
    segs = co2js["segments"]
    assert {k: v["category_d"] for k, v in segs.items()} == {
        "data_center": False,
        "network": True,
        "device": True,
    }
    assert co2js["category_d"]["co2e_g"]["value"] == pytest.approx(
        segs["network"]["co2e_g"]["value"] + segs["device"]["co2e_g"]["value"]
    )
    assert co2js["water_l"]["value"] == pytest.approx(
        sum(s["water_l"]["value"] for s in segs.values())
    )


def test_console_script_batch_keeps_going_after_a_bad_line() -> None:
    lines = [
        {"kind": "transfer", "bytes": 5e5, "method": "swd-v3", "per_visit": True},
        {"kind": "device", "device_class": "phone", "bytes": 10},
        "{not json",
        {"kind": "device", "device_class": "tv", "method": "time", "seconds": 60, "country": "FR"},
        {"kind": "transfer", "bytes": 1e6, "colour": "red"},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    done = _script("--batch", stdin=text)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == 5
    assert results[0]["method"] == "swd-v3" and results[0]["co2js"]["per_visit"] is True
    assert (
        results[1]
        == {
            "line": 2,
            "error": results[1]["error"],
        }
        and "device_class='phone'" in results[1]["error"]
    )
    assert results[2]["line"] == 3 and "invalid JSON" in results[2]["error"]
    assert results[3]["method"] == "time-v1"
    assert results[3]["energy_j"]["value"] == pytest.approx(6000.0)
    assert results[4]["line"] == 5 and "colour='red'" in results[4]["error"]


def test_console_script_bad_input_is_one_line_no_traceback() -> None:
    done = _script("transfer", "--bytes", "-3")
    assert done.returncode == 2
    assert "bytes=" in done.stderr and "Traceback" not in done.stderr


# --- in process ---------------------------------------------------------------------------------
def test_transfer_flags_reach_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "estimate",
            "transfer",
            "--bytes",
            "2000000",
            "--per-visit",
            "--green-hosting-factor",
            "0.5",
            "--grid-intensity",
            "device=FRA",
            "--grid-intensity",
            "network=350",
            "--first-visit",
            "0.6",
            "--return-visit",
            "0.4",
            "--reload-ratio",
            "0.1",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    ref = network.transfer(
        2e6,
        per_visit=True,
        green_hosting_factor=0.5,
        grid_intensity={"device": "FRA", "network": 350.0},
        first_visit=0.6,
        return_visit=0.4,
        reload_ratio=0.1,
    )
    co2js = out["co2js"]
    assert co2js["co2e_g"]["value"] == ref.co2e_g
    assert co2js["segments"]["network"]["g_co2e_per_kwh"] == 350.0
    # France's water for the device segment; a bare number has no place: world water, flagged
    assert "flags" not in co2js["segments"]["device"]
    assert co2js["segments"]["network"]["flags"] == ["water_world_average"]


def test_transfer_green_and_onebyte(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(
            ["estimate", "transfer", "--bytes", "1e6", "--method", "onebyte", "--green", "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    co2js = out["co2js"]
    assert co2js["co2e_g"]["value"] == network.transfer(1e6, method="onebyte", green=True).co2e_g
    assert "device" not in co2js["segments"]
    # the runtime with network_method=onebyte still prices the device by SWD v4
    assert set(out["segments"]) == {"network", "customer_device"}
    assert out["segments"]["network"]["method"] == "onebyte"


def test_human_output_for_transfer(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["estimate", "transfer", "--bytes", "1000000"]) == 0
    text = capsys.readouterr().out
    assert "Category D (network + device)" in text
    assert "data_center (not Category D)" in text and "device (Category D)" in text
    assert "rating" in text


def test_device_time_human_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "device", "--device-class", "desktop", "--method", "time"]
    args += ["--seconds", "3600", "--country", "DE", "--desktop-laptop-share", "1"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["segment"] == "customer_device" and out["method"] == "time-v1"
    assert out["power_w"]["value"] == 20.0  # all laptops
    assert out["energy_j"]["value"] == pytest.approx(20.0 * 3600)
    assert cli.main([*args, "--embodied"]) == 0
    text = capsys.readouterr().out
    assert "customer_device (time-v1, Category D)" in text and "embodied" in text


def test_device_swd_needs_bytes_and_time_needs_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["estimate", "device", "--device-class", "tv"]) == 2
    assert "bytes=None" in capsys.readouterr().err
    assert cli.main(["estimate", "device", "--device-class", "tv", "--method", "time"]) == 2
    assert "seconds=None" in capsys.readouterr().err
    assert cli.main(["estimate", "device", "--device-class", "tv", "--bytes", "1e6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "swd-v4"


def test_llm_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "llm", "--provider", "mistral_ai", "--model", "mistral-small-latest"]
    args += ["--input-tokens", "500", "--output-tokens", "200", "--latency", "2.5", "--json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["segment"] == "ai_inference" and out["method"] == "ecologits-prefill"
    assert cli.main([*args, "--method", "guess"]) == 2
    assert "method='guess'" in capsys.readouterr().err


def test_estimate_needs_a_kind_and_batch_takes_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["estimate"]) == 2
    assert "choose transfer, device or llm" in capsys.readouterr().err
    assert cli.main(["estimate", "--batch", "device", "--device-class", "tv"]) == 2


def test_batch_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    cases = [
        {
            "kind": "llm",
            "provider": "openai",
            "model": "gpt-4o",
            "input_tokens": 10,
            "output_tokens": 20,
            "latency_s": 1.0,
            "embodied": True,
        },
        {
            "kind": "llm",
            "provider": "openai",
            "model": "gpt-4o",
            "input_tokens": -1,
            "output_tokens": 20,
        },
        {
            "kind": "transfer",
            "bytes": 1e6,
            "grid_intensity": {"device": {"country": "DEU"}, "network": 100},
        },
        {"kind": "transfer", "bytes": 1e6, "grid_intensity": {"device": True}},
        [1, 2],
        {"kind": "nope"},
    ]
    stdin = "\n".join(json.dumps(c) for c in cases) + "\n\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert cli.main(["estimate", "--batch"]) == 1
    results = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(results) == 6
    assert results[0]["embodied_co2e_g"] > 0
    assert results[1]["line"] == 2 and "input_tokens=-1" in results[1]["error"]
    assert (
        results[2]["co2js"]["segments"]["device"]["g_co2e_per_kwh"]
        == network.transfer(1e6, grid_intensity={"device": "DEU"}).g_co2e_per_kwh[2]
    )
    assert "grid_intensity.device=True" in results[3]["error"]
    assert results[4]["line"] == 5 and "case=" in results[4]["error"]
    assert "kind='nope'" in results[5]["error"]


def test_hydro_evaporation_flag(capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "estimate",
        "device",
        "--device-class",
        "smartphone",
        "--bytes",
        "1e6",
        "--country",
        "NO",
    ]
    assert cli.main([*base, "--json"]) == 0
    on = json.loads(capsys.readouterr().out)["water_l"]["value"]
    assert cli.main([*base, "--no-hydro-evaporation", "--json"]) == 0
    off = json.loads(capsys.readouterr().out)["water_l"]["value"]
    assert on > 10 * off > 0
    assert (
        cli.main(["estimate", "transfer", "--bytes", "1e6", "--no-hydro-evaporation", "--json"])
        == 0
    )
    transfer_off = json.loads(capsys.readouterr().out)["water_l"]["value"]
    assert cli.main(["estimate", "transfer", "--bytes", "1e6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["water_l"]["value"] > transfer_off


@pytest.mark.parametrize("country", ["Narnia", "12", "QQ"])
def test_device_country_typo_is_an_error_not_a_world_average(
    country: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", "device", "--device-class", "tv", "--bytes", "10", "--country", country]
    assert cli.main(args) == 2
    assert f"country={country!r}" in capsys.readouterr().err
