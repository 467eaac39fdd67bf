"""``otel-downstream sample-host`` as a real process: in-process /metrics, and through ``serve``."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "otel-downstream"
HOST_SERIES = "downstream_energy_joules_total{"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(
        [str(BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        pytest.fail(f"{args[0]} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def infra_joules(metrics_url: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(HOST_SERIES) and 'segment="customer_infrastructure"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("condition not met in time")


@pytest.mark.e2e
def test_sample_host_serves_customer_infrastructure_metrics() -> None:
    port = free_port()
    proc, started = start(
        "sample-host",
        "--profile",
        "server_1u",
        "--country",
        "FR",
        "--interval",
        "0.2",
        "--metrics-port",
        str(port),
        "--service-name",
        "onprem",
    )
    try:
        assert started["profile"] == "server_1u" and started["country"] == "FR"
        url = str(started["metrics"])
        wait_for(lambda: infra_joules(url) > 0)
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        assert 'geo_country_iso_code="FR"' in text
        assert 'service_name="onprem"' in text
        # ~47-224 W: a 0.2 s interval is 9-45 J, so a few samples are well above 5 J
        wait_for(lambda: infra_joules(url) > 5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert '"event": "stopped"' in out


@pytest.mark.e2e
def test_sample_host_through_serve() -> None:
    serve, ports = start(
        "serve", "--otlp-http-port", "0", "--otlp-grpc-port", "0", "--metrics-port", "0"
    )
    try:
        http = str(ports["otlp_http"])
        metrics = f"http://{ports['metrics']}/metrics"
        sampler, _ = start(
            "sample-host",
            "--profile",
            "edge_gateway",
            "--country",
            "DE",
            "--interval",
            "0.1",
            "--otlp-endpoint",
            f"http://{http}",
            "--duration",
            "1",
        )
        _, err = sampler.communicate(timeout=30)
        assert sampler.returncode == 0, err
        wait_for(lambda: infra_joules(metrics) > 0)
        # edge gateway: 2.7-6.4 W for ~1 s
        assert 2.0 < infra_joules(metrics) < 10.0
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=15)


def test_sample_host_rejects_misconfiguration_clearly() -> None:
    proc = subprocess.run(
        [str(BIN), "sample-host", "--profile", "mainframe", "--metrics-port", str(free_port())],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown host profile 'mainframe'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_is_installed() -> None:
    assert BIN.exists() or shutil.which("otel-downstream")
