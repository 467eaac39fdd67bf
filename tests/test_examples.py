"""Every example under examples/ runs: built and driven in-process, or started for real on 127.0.0.1.

In-process tests wire ``configure()`` to a fresh provider and registry first; the examples call
``configure()`` themselves and get that same handle back (it is idempotent), so what they
measured is read from this test's registry and span list.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from otel_downstream.agent import attributes as A
from otel_downstream.agent import configure
from otel_downstream.agent.pipeline import Configured
from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI
from otel_downstream.exporters.metrics.totals import Summary, summarize

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36"
)
GB_IP, DE_IP = "81.2.69.142", "217.160.0.1"
_OUR_ENV = ("OTEL_DOWNSTREAM_", "PROMETHEUS_MULTIPROC_DIR", "OTEL_EXPORTER_OTLP")


@dataclass
class Wired:
    handle: Configured
    spans: InMemorySpanExporter

    def summary(self) -> Summary:
        self.handle.processor.force_flush()
        return summarize(generate_latest(self.handle.registry).decode())

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.SERVER]


@pytest.fixture
def wired() -> Iterator[Wired]:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "examples-test"}))
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    handle = configure(
        "examples-test", tracer_provider=provider, registry=CollectorRegistry(), metrics_port=None
    )
    try:
        yield Wired(handle, spans)
    finally:
        handle.shutdown()
        provider.shutdown()


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _released(url: str, settle: float = 1.0) -> Summary:
    """/metrics once what was accounted is released. A new series shows 0 on its first scrape (so
    Prometheus counts its first increment) and its value once that scrape has completed: from the
    next scrape in process, within half a second in multiprocess mode, where each worker releases
    its own (docs/metrics.md, "Totals over time")."""
    httpx.get(url, timeout=5).raise_for_status()
    time.sleep(settle)
    return summarize(httpx.get(url, timeout=5).text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_ENV)}
    return {**env, **extra}


def _wait_for(url: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def test_flask_example_measures_pages_uploads_and_streams(wired: Wired) -> None:
    app = _load(EXAMPLES / "flask_app.py", "example_flask_app").create_app(trusted_proxies=1)
    client = app.test_client()  # buffered=True: the response is read and closed, as servers do
    assert (
        client.get(
            "/", headers={"User-Agent": IPHONE, "X-Forwarded-For": GB_IP}, buffered=True
        ).status_code
        == 200
    )
    upload = client.post(
        "/api/upload", data=b"u" * 50_000, headers={"User-Agent": DESKTOP}, buffered=True
    )
    assert upload.get_json() == {"received_bytes": 50_000}
    download = client.get(
        "/download", headers={"X-Forwarded-For": f"10.0.0.1, {DE_IP}"}, buffered=True
    )
    assert len(download.data) == 1 << 20

    page, posted, streamed = wired.server_spans()
    assert page.attributes[A.DOWNSTREAM_DEVICE_CLASS] == "smartphone"
    assert page.attributes[A.GEO_COUNTRY_ISO_CODE] == "GB"
    assert posted.attributes[A.HTTP_ROUTE] == "/api/upload"
    assert posted.attributes[A.HTTP_REQUEST_BODY_SIZE] == 50_000
    assert streamed.attributes[A.GEO_COUNTRY_ISO_CODE] == "DE"  # the trusted hop, not 10.0.0.1
    assert streamed.attributes[A.HTTP_RESPONSE_BODY_SIZE] == 1 << 20
    summary = wired.summary()
    assert summary.requests == 3
    assert summary.transfer_bytes["request"] == 50_000
    assert summary.by_segment["network"].nonzero and summary.by_segment["customer_device"].nonzero
    assert {"GB", "DE"} <= set(summary.by_country)


async def test_fastapi_example_serves_its_own_metrics(wired: Wired) -> None:
    app = _load(EXAMPLES / "fastapi_app.py", "example_fastapi_app").create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        item = await client.get("/api/items/3", headers={"X-Forwarded-For": GB_IP})
        assert item.json()["id"] == 3
        posted = await client.post("/api/upload", content=b"x" * 12_345)
        assert posted.json() == {"received_bytes": 12_345}
        streamed = await client.get("/api/stream", headers={"User-Agent": IPHONE})
        assert streamed.text.count("data: update") == 20
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "downstream_requests_total{" in metrics.text

    names = sorted(s.name for s in wired.server_spans())
    assert names == ["GET /api/items/{item_id}", "GET /api/stream", "POST /api/upload"]
    summary = wired.summary()
    assert summary.requests == 3  # the scrape itself is excluded
    assert summary.transfer_bytes["request"] == 12_345
    assert "GB" in summary.by_country and "smartphone" in summary.by_device


def test_django_example_wsgi_application(wired: Wired, monkeypatch: pytest.MonkeyPatch) -> None:
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    monkeypatch.syspath_prepend(str(EXAMPLES / "django_app"))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "shop.settings")
    project = importlib.import_module("shop.settings")
    if not settings.configured:
        # Django is configured once per process and other tests share it: start neutral and
        # apply the project's own settings only inside override_settings below.
        settings.configure(
            SECRET_KEY=project.SECRET_KEY,
            ROOT_URLCONF="shop.urls",
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
            LOGGING_CONFIG=None,
        )
        django.setup()
    with override_settings(
        ROOT_URLCONF="shop.urls",
        ALLOWED_HOSTS=project.ALLOWED_HOSTS,
        MIDDLEWARE=project.MIDDLEWARE,
    ):
        sys.modules.pop("shop.wsgi", None)
        application = importlib.import_module("shop.wsgi").application
        transport = httpx.WSGITransport(app=application)
        with httpx.Client(transport=transport, base_url="http://127.0.0.1") as client:
            assert client.get("/", headers={"User-Agent": IPHONE}).status_code == 200
            assert client.get("/products/4/").json()["id"] == 4
            assert client.get("/products/99/").status_code == 404
            posted = client.post("/api/upload/", content=b"d" * 4096)
            assert posted.json() == {"received_bytes": 4096}
    spans = {s.name: s for s in wired.server_spans()}
    assert {"GET /products/<int:product_id>/", "POST /api/upload/"} < set(spans)  # and the index
    assert spans["POST /api/upload/"].attributes[A.HTTP_REQUEST_BODY_SIZE] == 4096
    summary = wired.summary()
    assert summary.requests == 4
    assert summary.by_segment["network"].nonzero


@pytest.mark.parametrize(
    ("script", "provider", "model"),
    [
        ("openai_example.py", "openai", "gpt-4o-mini"),
        ("mistral_example.py", "mistral_ai", "mistral-small-latest"),
    ],
)
def test_llm_examples_account_both_calls(
    wired: Wired, capsys: pytest.CaptureFixture[str], script: str, provider: str, model: str
) -> None:
    module = _load(EXAMPLES / script, f"example_{script[:-3]}")
    assert module.main([]) == 0
    out = capsys.readouterr().out
    assert "local fake" in out and "(not a model)" in out
    found = re.search(r"footprint of 2 calls to (\S+): ([0-9.]+) Wh, ([0-9.]+) g CO2e", out)
    assert found is not None, out
    assert found.group(1) == model and float(found.group(2)) > 0 and float(found.group(3)) > 0
    calls = [s for s in wired.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.attributes[A.GEN_AI_REQUEST_STREAM] for s in calls] == [False, True]
    for span in calls:
        assert span.attributes[A.GEN_AI_PROVIDER_NAME] == provider
        assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
        assert A.DOWNSTREAM_TOKENS_ESTIMATED not in span.attributes  # exact usage, streams too
    summary = wired.summary()
    assert summary.llm_calls == 2
    assert set(summary.by_model) == {f"{provider} / {model}"}


def test_openai_example_reaches_a_keyless_local_server(
    wired: Wired, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--base-url (Ollama, vLLM) without OPENAI_API_KEY: a placeholder key, not an SDK error."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    module = _load(EXAMPLES / "openai_example.py", "example_openai_keyless")
    with FakeLLMAPI() as server:
        assert module.main(["--base-url", server.openai_base_url, "--model", "llama3.2"]) == 0
        assert server.last().path == "/v1/chat/completions"
    assert "footprint of 2 calls to llama3.2" in capsys.readouterr().out
    assert wired.summary().llm_calls == 2


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("command", "metrics_on_app"),
    [
        (["examples/flask_app.py"], False),
        (["examples/fastapi_app.py"], True),
        (["examples/django_app/manage.py", "runserver", "--noreload", "127.0.0.1:{port}"], False),
    ],
    ids=["flask", "fastapi", "django"],
)
def test_web_examples_run_as_scripts(command: list[str], metrics_on_app: bool) -> None:
    port, metrics_port = _free_port(), _free_port()
    args = [a.format(port=port) for a in command]
    env = _clean_env(PORT=str(port), OTEL_DOWNSTREAM_METRICS_PORT=str(metrics_port))
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process)
        for _ in range(3):
            httpx.get(f"http://127.0.0.1:{port}/", headers={"User-Agent": IPHONE})
        where = port if metrics_on_app else metrics_port
        summary = _released(f"http://127.0.0.1:{where}/metrics")
        assert summary.requests >= 4  # the readiness probe and three page loads
        assert summary.by_device["smartphone"].nonzero
    finally:
        out, _err = _stop(process)
    if command[0] == "examples/flask_app.py":  # it prints where its metrics really are
        assert f"footprint metrics: http://127.0.0.1:{metrics_port}/metrics" in out


@pytest.mark.e2e
def test_gunicorn_example_sums_two_workers(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus-multiproc"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            str(EXAMPLES / "gunicorn_multiworker" / "gunicorn.conf.py"),
            "--bind",
            "127.0.0.1:0",
        ],
        cwd=REPO,
        env=_clean_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", process.stderr.readline())
            url = found.group(1) if found else None
        assert url is not None
        deadline = time.monotonic() + 30
        while len(list(metrics_dir.glob("gauge_max_*.db"))) < 2:  # both workers configured
            assert time.monotonic() < deadline, "two workers did not start"
            time.sleep(0.1)
        pids = set()
        for n in range(30):
            with httpx.Client() as client:  # a new connection each time, as separate visitors
                if n % 3 == 0:
                    pids.add(client.get(f"{url}/api/worker").json()["pid"])
                else:
                    client.post(
                        f"{url}/api/upload", content=b"g" * 1000, headers={"User-Agent": DESKTOP}
                    )
        totals = []
        _released(f"{url}/metrics")
        for _ in range(4):  # whichever worker answers, /metrics sums both
            summary = summarize(httpx.get(f"{url}/metrics", timeout=5).text)
            totals.append((summary.requests, summary.transfer_bytes.get("request")))
        assert set(totals) == {(30.0, 20_000.0)}
        assert summary.by_device["desktop"].nonzero
        assert len(pids) <= 2
    finally:
        _out, err = _stop(process)
    assert process.returncode == 0, err[-2000:]


def _start_gunicorn(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """The example's master on a free port; returns it and the URL it listens at."""
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            str(EXAMPLES / "gunicorn_multiworker" / "gunicorn.conf.py"),
            "--bind",
            "127.0.0.1:0",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", process.stderr.readline())
        if found:
            return process, found.group(1)
    _stop(process)
    raise AssertionError("gunicorn did not start")


@pytest.mark.e2e
def test_two_gunicorn_masters_count_apart_and_clean_up(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR each master makes its own directory and removes it on exit:
    a second master neither wipes nor adds to the first one's counts."""
    env = _clean_env(TMPDIR=str(tmp_path))
    first, first_url = _start_gunicorn(env)
    second, second_url = None, ""
    try:
        second, second_url = _start_gunicorn(env)
        deadline = time.monotonic() + 30
        while True:  # both masters' two workers configured, each in its own directory
            dirs = sorted(tmp_path.glob("otel-downstream-gunicorn-*"))
            if len(dirs) == 2 and all(len(list(d.glob("gauge_max_*.db"))) >= 2 for d in dirs):
                break
            assert time.monotonic() < deadline, dirs
            time.sleep(0.1)
        for url, visits in ((first_url, 3), (second_url, 5)):
            for _ in range(visits):
                with httpx.Client() as client:
                    client.get(f"{url}/", headers={"User-Agent": DESKTOP})
        assert _released(f"{first_url}/metrics").requests == 3
        assert _released(f"{second_url}/metrics").requests == 5
    finally:
        _out, first_err = _stop(first)
        second_err = _stop(second)[1] if second is not None else ""
    assert first.returncode == 0, first_err[-2000:]
    assert second is not None and second.returncode == 0, second_err[-2000:]
    assert not list(tmp_path.glob("otel-downstream-gunicorn-*"))


@pytest.mark.e2e
def test_gunicorn_reload_keeps_counting_in_its_directory_and_removes_it(tmp_path: Path) -> None:
    """HUP re-reads the config in the master (on_starting does not run again): the directory it
    made is still the one the new workers count in, and is still removed on exit."""
    process, url = _start_gunicorn(_clean_env(TMPDIR=str(tmp_path), WEB_CONCURRENCY="1"))
    try:
        (made,) = _gunicorn_dirs(tmp_path, gauges=1)
        httpx.get(f"{url}/", headers={"User-Agent": DESKTOP}, timeout=5)
        process.send_signal(signal.SIGHUP)
        assert _gunicorn_dirs(tmp_path, gauges=2) == [made]  # the new worker counts there too
        httpx.get(f"{url}/", headers={"User-Agent": DESKTOP}, timeout=5)
        assert _released(f"{url}/metrics").requests == 2
    finally:
        _out, err = _stop(process)
    assert process.returncode == 0, err[-2000:]
    assert "Hang up: Master" in err
    assert not list(tmp_path.glob("otel-downstream-gunicorn-*"))


def _gunicorn_dirs(tmp_path: Path, *, gauges: int) -> list[Path]:
    """The example's directories, once one holds ``gauges`` workers' files (each worker's own)."""
    deadline = time.monotonic() + 30
    while True:
        dirs = sorted(tmp_path.glob("otel-downstream-gunicorn-*"))
        if any(len(list(d.glob("gauge_max_*.db"))) >= gauges for d in dirs):
            return dirs
        assert time.monotonic() < deadline, dirs
        time.sleep(0.1)


@pytest.mark.e2e
def test_service_mode_example_reaches_serve_over_otlp() -> None:
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("otel-downstream")),
            "serve",
            "--otlp-http-port",
            "0",
            "--otlp-grpc-port",
            "-1",
            "--metrics-port",
            "0",
        ],
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        ports = json.loads(serve.stdout.readline())
        service = _load(EXAMPLES / "service_mode" / "app.py", "example_service_mode_app")
        app, _provider, close = service.create_app(f"http://{ports['otlp_http']}/v1/traces")
        try:
            transport = httpx.ASGITransport(app=app)

            async def drive() -> None:
                async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                    headers = {"User-Agent": IPHONE, "X-Forwarded-For": GB_IP}
                    for path in ("/", "/static/app.js", "/api/products?page=2"):
                        assert (await client.get(path, headers=headers)).status_code == 200
                    ask = {"prompt": "hi", "model": "gpt-4o-mini", "stream": True, "max_tokens": 30}
                    answer = await client.post("/api/chat", json=ask, headers=headers)
                    assert answer.text.count("data: ") == 31  # 30 tokens and [DONE]

            asyncio.run(drive())
        finally:
            close()  # flushes the batch and the host sampler's last interval
        deadline = time.monotonic() + 20
        while True:
            summary = summarize(httpx.get(f"http://{ports['metrics']}/metrics", timeout=5).text)
            if summary.requests >= 4 and summary.llm_calls >= 1 and summary.host_samples >= 1:
                break
            assert time.monotonic() < deadline, summary
            time.sleep(0.2)
        assert summary.requests == 4
        assert set(summary.by_model) == {"openai / gpt-4o-mini"}
        assert summary.by_device["smartphone"].nonzero and "GB" in summary.by_country
        assert summary.by_segment["customer_infrastructure"].nonzero
    finally:
        _stop(serve)
    assert serve.returncode == 0


def test_docker_compose_wires_existing_files() -> None:
    compose_file = EXAMPLES / "docker-compose.yml"
    compose = yaml.safe_load(compose_file.read_text())
    services: dict[str, Any] = compose["services"]
    assert {"app", "otel-collector", "serve", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            host, inside = volume.split(":")[:2]
            assert (compose_file.parent / host).exists(), f"{name}: {host} is missing"
            assert inside.startswith("/")
        build = service.get("build")
        if build is not None:
            context = compose_file.parent / build["context"]
            assert (context / build["dockerfile"]).is_file(), name
        command = service.get("command") or []
        scripts = [part for part in command if part.endswith(".py")]
        assert all((REPO / script).is_file() for script in scripts), (name, scripts)
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)

    collector_config = (REPO / "collector-config" / "otelcol-serve.yaml").read_text()
    for variable in services["otel-collector"]["environment"]:
        assert f"${{env:{variable}" in collector_config, variable
    assert (
        services["app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        == "http://otel-collector:4318"
    )
    # Grafana's provisioned data source and the dashboards folder match what the compose file mounts.
    provisioning = REPO / "collector-config" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    boards = yaml.safe_load((provisioning / "dashboards" / "downstream.yml").read_text())
    board_path = boards["providers"][0]["options"]["path"]
    assert any(v.endswith(f":{board_path}:ro") for v in services["grafana"]["volumes"])
    # Prometheus scrapes serve by its service name.
    prometheus = yaml.safe_load((EXAMPLES / "service_mode" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["serve:9464"]
    ignored = (EXAMPLES / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (make sysdeps installs Debian's prometheus)")
    text = (EXAMPLES / "service_mode" / "prometheus.yml").read_text()
    rules = REPO / "collector-config" / "rules"
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/rules", str(rules)))
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_docker_compose_config_when_docker_is_there() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], check=False, capture_output=True
        ).returncode
    ):
        pytest.skip("no docker compose here; the YAML is checked by the test above")
    checked = subprocess.run(
        [docker, "compose", "-f", str(EXAMPLES / "docker-compose.yml"), "config", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
