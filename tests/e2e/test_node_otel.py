"""A real Node.js app, instrumented with the official OpenTelemetry JS SDK exactly as docs/service.md
says, exporting OTLP/proto to a real ``otel-downstream serve``: the right counts, bytes, labels and
the engine's CO2e.

The app (``node_app/``: ``@opentelemetry/sdk-trace-node``, ``instrumentation-http`` with
``headersToSpanAttributes``, ``exporter-trace-otlp-proto``, pinned by its ``package-lock.json``)
records no body size by default (stable HTTP conventions); the captured ``Content-Length`` headers
are what gives serve the bytes, ``user_agent.original`` the device class and ``client.address``
(the ``X-Forwarded-For`` client, as the instrumentation reads it) the country. ``make node-deps``
installs the packages (``npm ci``); the test also tries once, and skips only where node/npm is
absent or the install fails.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from otel_downstream.exporters.engine.engine import Engine, EngineConfig

from .test_service import Serve, scrape, total

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parent / "node_app"
TOKEN = "node-e2e-token"
SERVICE = "node-shop"
REQUESTS = 20
RESPONSE_BYTES = 50_000
REQUEST_BYTES = 300
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CLIENT_IP = "81.2.69.142"  # a GB address in the built-in offline lookup (iptocc)
COUNTRY = "GB"


def _node_app() -> Path:
    """The app's directory with its packages installed, or a skip saying why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not found: the Node.js recipe is not checked")
    if not (APP / "node_modules" / "@opentelemetry" / "instrumentation-http").is_dir():
        try:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=APP,
                check=True,
                timeout=300,
                capture_output=True,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"npm ci in {APP} failed ({exc}): the Node.js recipe is not checked")
    return APP


class NodeApp:
    """``node --require ./tracing.js server.js`` exporting to ``serve``; the port from its line."""

    def __init__(self, serve: Serve) -> None:
        env = {
            **os.environ,
            "PORT": "0",
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": serve.traces_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{TOKEN}",
        }
        self.proc = subprocess.Popen(
            ["node", "--require", "./tracing.js", "server.js"],
            cwd=_node_app(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the Node app did not start: {err.decode(errors='replace')}")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def stop(self) -> None:
        """SIGTERM: the app closes, flushes its batched spans to serve, and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        assert self.proc.returncode == 0, err.decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def serve() -> Iterator[Serve]:
    _node_app()  # skip before starting anything when Node is not there
    server = Serve(env={"OTEL_DOWNSTREAM_SERVE_TOKEN": TOKEN})
    try:
        yield server
    finally:
        server.close()


def test_node_http_instrumentation_gives_bytes_device_and_country(serve: Serve) -> None:
    app = NodeApp(serve)
    try:
        with requests.Session() as session:
            for _ in range(REQUESTS):
                answer = session.post(
                    f"{app.url}/page?bytes={RESPONSE_BYTES}",
                    data=b"q" * REQUEST_BYTES,
                    headers={"User-Agent": IPHONE, "X-Forwarded-For": CLIENT_IP},
                    timeout=10,
                )
                assert answer.status_code == 200
                assert len(answer.content) == RESPONSE_BYTES
        app.stop()
    finally:
        app.close()

    scrape(serve.metrics_url)  # a new series is shown at 0 first, its value from the next scrape
    samples = scrape(serve.metrics_url)
    requests_total = total(samples, "downstream_requests_total", service_name=SERVICE)
    assert requests_total == REQUESTS
    labelled = total(
        samples,
        "downstream_requests_total",
        service_name=SERVICE,
        geo_country_iso_code=COUNTRY,
        device_class="smartphone",
    )
    assert labelled == REQUESTS
    bytes_out = total(
        samples, "downstream_transfer_bytes_total", service_name=SERVICE, direction="response"
    )
    bytes_in = total(
        samples, "downstream_transfer_bytes_total", service_name=SERVICE, direction="request"
    )
    assert (bytes_in, bytes_out) == (REQUESTS * REQUEST_BYTES, REQUESTS * RESPONSE_BYTES)
    assert total(samples, "downstream_unknown_total", kind="response_size") == 0
    assert total(samples, "downstream_spans_rejected_total") == 0

    engine = Engine(EngineConfig.from_env())
    footprints = engine.http_request(
        request_bytes=REQUEST_BYTES,
        response_bytes=RESPONSE_BYTES,
        country=COUNTRY,
        device_class="smartphone",
    )
    for fp in footprints:
        got = total(
            samples,
            "downstream_co2e_grams_total",
            service_name=SERVICE,
            segment=fp.segment,
            geo_country_iso_code=COUNTRY,
            device_class="smartphone",
        )
        assert got == pytest.approx(REQUESTS * fp.total.co2e_g, rel=1e-9), fp.segment
    expected = REQUESTS * sum(fp.total.co2e_g for fp in footprints)
    got_total = total(samples, "downstream_co2e_grams_total", service_name=SERVICE)
    assert got_total == pytest.approx(expected, rel=1e-9)
    assert got_total > 0
