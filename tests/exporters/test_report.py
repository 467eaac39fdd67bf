"""``otel-downstream report`` over a real /metrics endpoint and a saved exposition."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app

from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.cli import main as cli
from otel_downstream.exporters.engine.engine import Engine


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    accountant = Accountant(Engine(), registry=reg)
    accountant.account(
        {
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "http.request.body.size": 1000,
            "http.response.body.size": 2_000_000,
            "geo.country.iso_code": "FR",
            "downstream.device.class": "smartphone",
        },
        service_name="shop",
        kind="SERVER",
    )
    accountant.account(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 400,
            "gen_ai.usage.output_tokens": 300,
        },
        service_name="shop",
        kind="CLIENT",
    )
    return reg


def serve(reg: CollectorRegistry) -> tuple[WSGIServer, str]:
    server = make_server("127.0.0.1", 0, make_wsgi_app(reg))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/metrics"


def test_report_scrapes_a_live_endpoint(registry, capsys) -> None:
    server, url = serve(registry)
    try:
        assert cli.main(["report", "--url", url]) == 0
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert f"Downstream footprint from {url}" in out
    for expected in (
        "network",
        "customer_device",
        "ai_inference",
        "FR",
        "smartphone",
        "gpt-4o-mini",
    ):
        assert expected in out


def test_report_json_from_a_saved_file_matches_the_counters(
    registry, tmp_path: Path, capsys
) -> None:
    from prometheus_client import generate_latest

    saved = tmp_path / "scrape.txt"
    saved.write_bytes(generate_latest(registry))
    assert cli.main(["report", "--file", str(saved), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    co2e = sum(
        s.value
        for metric in registry.collect()
        if metric.name == "downstream_co2e_grams"
        for s in metric.samples
        if s.name == "downstream_co2e_grams_total"
    )
    assert data["total"]["co2e_g"] == pytest.approx(co2e)
    assert data["requests"] == 1
    assert data["llm_calls"] == 1


def test_report_says_what_is_wrong(tmp_path: Path, capsys) -> None:
    assert cli.main(["report", "--url", "http://127.0.0.1:9/metrics"]) == 1
    assert "otel-downstream report:" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n")
    assert cli.main(["report", "--file", str(empty)]) == 1
    assert "no downstream_* footprint metrics" in capsys.readouterr().err
    assert cli.main(["report", "--url", "file:///etc/passwd"]) == 1
    assert "expected an http(s) URL" in capsys.readouterr().err


def test_console_script_exists() -> None:
    assert (Path(sys.executable).parent / "otel-downstream").exists()
