"""A SIGKILLed gunicorn worker loses nothing it answered (issue 16): exact counts after respawn.

gunicorn ``-w 3`` with ``configure("shop")`` and nothing else (the worker group switches
multiprocess mode on). /metrics is read every 10 s, as a Prometheus with a slow interval would.
Each round sends requests from 12 countries over the workers, then gives every worker a slow
request (a sync worker serves one at a time, so the victim has ended and accounted every request
it answered) and SIGKILLs one, before the next scrape: a worker in round 0, the one serving
/metrics in round 1 (another takes the port over and must not show a known series at 0 again).
Each worker used to hold the first amounts of every label set new to it (even one another worker
already exposed) until a scrape had shown it at 0, and lost them when killed (this test: 484
answered, about 400 counted). Now every span is in the worker's file as it ends, and the scrape
shows a new label set at 0 itself: requests and CO2e must be exact.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE = 2100
SCRAPE_EVERY_S = 10.0
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
APP = """
import os
import time

from otel_downstream.agent import WSGIMiddleware, configure

configure("shop")


def site(environ, start_response):
    time.sleep(2.0 if environ["PATH_INFO"].startswith("/slow") else 0.005)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"x" * int(environ["PATH_INFO"].rsplit("/", 1)[-1])]


app = WSGIMiddleware(site, country_header="CF-IPCountry")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[tuple[str, str], float] | None:
    """Requests and CO2e per (metric, country) on one page, or ``None`` if none was served."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return None
    page: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in (M.REQUESTS, M.CO2E) and s.labels.get("service_name") == "shop":
                key = (s.name, s.labels["geo_country_iso_code"])
                page[key] = page.get(key, 0.0) + s.value
    return page


def _workers(proc: subprocess.Popen[bytes]) -> list[int]:
    pids = []
    for child in psutil.Process(proc.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "watch" not in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def _serving(proc: subprocess.Popen[bytes], port: int) -> int:
    """The worker listening on the /metrics port."""
    for pid in _workers(proc):
        try:
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return pid
        except psutil.Error:
            continue
    raise AssertionError("no worker serves /metrics")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    (tmp_path / "kill_site.py").write_text(APP)
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o700)
    port, mport = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    env.update(OTEL_DOWNSTREAM_METRICS_PORT=str(mport), TMPDIR=str(tmp), XDG_RUNTIME_DIR=str(tmp))
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", "3",
        "--chdir", str(tmp_path),
        "--log-level", "warning",
        "kill_site:app",
    ]  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    metrics = f"http://127.0.0.1:{mport}/metrics"
    try:
        deadline = time.monotonic() + 60
        while _scrape(metrics) is None or len(_workers(proc)) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield proc, f"http://127.0.0.1:{port}", metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_a_worker_killed_right_after_answering_loses_nothing(
    server: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    proc, base, metrics = server
    sent: dict[str, int] = {}
    answered_by: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def scraper() -> None:  # a Prometheus with a slow interval
        while not stop.wait(SCRAPE_EVERY_S):
            _scrape(metrics)

    def get(country: str, slow: str = "") -> None:
        headers = {"CF-IPCountry": country, "User-Agent": IPHONE}
        response = httpx.get(f"{base}{slow}/{SIZE}", headers=headers, timeout=10)
        assert response.status_code == 200
        with lock:
            sent[country] = sent.get(country, 0) + 1
            pid = int(response.headers["X-Pid"])
            answered_by[pid] = answered_by.get(pid, 0) + 1

    countries = ("DE", "FR", "US", "NO", "SE", "BR", "IN", "JP", "AU", "ZA", "CA", "MX")
    port = int(metrics.rsplit(":", 1)[1].split("/")[0])
    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    try:
        for round_ in range(2):  # a worker, then the one serving /metrics (another takes over)
            answered_by.clear()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(get, [countries[i % len(countries)] for i in range(240)]))
            holder = _serving(proc, port)
            victim = (
                holder
                if round_
                else max((p for p in answered_by if p != holder), key=answered_by.__getitem__)
            )
            # Every worker (sync: one request at a time) takes a slow request, so the victim has
            # finished (and accounted) every request it answered; its slow one is never answered.
            with ThreadPoolExecutor(3) as pool:
                slow = [pool.submit(get, "DE", "/slow") for _ in range(3)]
                time.sleep(0.5)
                os.kill(victim, signal.SIGKILL)  # right after its requests were answered
                for future in slow:
                    future.exception()
            deadline = time.monotonic() + 30
            while victim in _workers(proc) or len(_workers(proc)) < 3 or _scrape(metrics) is None:
                assert time.monotonic() < deadline, f"round {round_}: no respawn"
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join()

    engine = Engine(EngineConfig())
    per_request = {
        country: sum(
            fp.total.co2e_g
            for fp in engine.http_request(
                request_bytes=0, response_bytes=SIZE, country=country, device_class="smartphone"
            )
        )
        for country in sent
    }
    want = {(M.REQUESTS, c): float(n) for c, n in sent.items()}
    page: dict[tuple[str, str], float] | None = None
    deadline = time.monotonic() + 20
    while True:  # a label set first read now shows 0 once, then its value
        page = _scrape(metrics)
        if page is not None and all(page.get(k) == v for k, v in want.items()):
            break
        assert time.monotonic() < deadline, (
            f"answered by {answered_by}, sent {sent}, /metrics shows "
            f"{ {k[1]: v for k, v in (page or {}).items() if k[0] == M.REQUESTS} }"
        )
        time.sleep(0.2)
    assert 484 <= sum(sent.values()) <= 486  # 480, and 2 of 3 slow ones per round
    for country, n in sent.items():
        assert page[(M.REQUESTS, country)] == n
        assert page[(M.CO2E, country)] == pytest.approx(n * per_request[country], rel=1e-9)
