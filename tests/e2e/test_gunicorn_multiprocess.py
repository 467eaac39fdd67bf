"""gunicorn with 3 workers on 127.0.0.1: /metrics totals equal N x the engine's figures.

Each worker runs configure() (no --preload, so after the fork) and accounts its own requests into
prometheus-client multiprocess files under PROMETHEUS_MULTIPROC_DIR; whichever worker answers
/metrics sums every worker's files, so every scrape shows the same totals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

pytestmark = pytest.mark.e2e

WORKERS = 3
N = 60
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

APP = """
import os
import time

from flask import Flask, make_response

from otel_downstream.agent import WSGIMiddleware, configure
from otel_downstream.agent.pipeline import metrics_wsgi_app

configure("shop", metrics_port=None)  # in each worker, after gunicorn forked it

site = Flask("shop")


@site.get("/items/<int:n>")
def items(n):
    time.sleep(0.01)  # long enough for concurrent requests to spread over the workers
    response = make_response(b"x" * n)
    response.headers["X-Pid"] = str(os.getpid())
    return response


site.wsgi_app = WSGIMiddleware(site.wsgi_app, country_header="CF-IPCountry")
metrics = metrics_wsgi_app()


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/metrics":
        return metrics(environ, start_response)
    return site(environ, start_response)
"""


def _size(i: int) -> int:
    return 137 * i + 11


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "multi_site.py").write_text(APP)
    prom = tmp_path / "prom"
    prom.mkdir()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    fd = sock.fileno()
    os.set_inheritable(fd, True)
    port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind", f"fd://{fd}",
        "--workers", str(WORKERS),
        "--chdir", str(tmp_path),
        "--log-level", "warning",
        "multi_site:app",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, pass_fds=(fd,), env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/metrics", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(base + "/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **match: str
) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all((k, val) in labels for k, val in match.items())
    )


def test_three_workers_sum_to_n_times_the_engine(gunicorn: str) -> None:
    headers = {"User-Agent": IPHONE, "CF-IPCountry": "DE"}

    def get(i: int) -> str:
        response = httpx.get(f"{gunicorn}/items/{_size(i)}", headers=headers, timeout=10)
        assert response.status_code == 200
        assert len(response.content) == _size(i)
        return response.headers["X-Pid"]

    with ThreadPoolExecutor(6) as pool:
        pids = set(pool.map(get, range(N)))
    assert len(pids) >= 2, "the requests did not spread over several workers"

    deadline = time.monotonic() + 10
    samples = _scrape(gunicorn)
    while _total(samples, M.REQUESTS) != N and time.monotonic() < deadline:
        time.sleep(0.05)
        samples = _scrape(gunicorn)

    engine = Engine(EngineConfig())
    want = {"energy_j": 0.0, "co2e_g": 0.0, "water_l": 0.0}
    for i in range(N):
        for fp in engine.http_request(
            request_bytes=0, response_bytes=_size(i), country="DE", device_class="smartphone"
        ):
            for key in want:
                want[key] += getattr(fp.total, key)

    labels = {"service_name": "shop", "geo_country_iso_code": "DE", "device_class": "smartphone"}
    assert _total(samples, M.REQUESTS, **labels) == N
    assert _total(samples, M.ENERGY, **labels) == pytest.approx(want["energy_j"], rel=1e-9)
    assert _total(samples, M.CO2E, **labels) == pytest.approx(want["co2e_g"], rel=1e-9)
    assert _total(samples, M.WATER, **labels) == pytest.approx(want["water_l"], rel=1e-9)
    assert _total(samples, M.TRANSFER_BYTES, direction="response") == sum(map(_size, range(N)))
    assert _total(samples, M.REQUEST_CO2E + "_count", kind="http") == N
    assert _total(samples, M.REQUEST_CO2E + "_sum", kind="http") == pytest.approx(
        want["co2e_g"], rel=1e-9
    )
    # Another scrape, probably answered by another worker, shows the same totals.
    again = _scrape(gunicorn)
    assert _total(again, M.CO2E, **labels) == pytest.approx(want["co2e_g"], rel=1e-12)
    assert _total(again, M.BUILD_INFO) == 1
