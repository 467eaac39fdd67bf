"""Pre-fork servers with ``configure()`` and nothing else: the /metrics port sums every worker.

No ``PROMETHEUS_MULTIPROC_DIR``, no ``metrics_port=None``: each worker of gunicorn (sync, gthread,
``--preload``) and ``uvicorn --workers`` calls ``configure("shop")``, which detects the worker group,
switches multiprocess mode on in a private directory and serves the default-style /metrics port
from one worker. The totals there must be exact (N requests, N x the engine's per-request figure)
after a worker holding the port is SIGKILLed and respawned, after a HUP reload, and across
``--max-requests`` recycling; the directory must go when the server stops, a stale one (a killed
group) is wiped at the next start, and a port held outside the group is said in the log.

``XDG_RUNTIME_DIR`` (and ``TMPDIR``) point each server at the test's own private directory, where
the group directory is made (``<dir>/otel-downstream-<uid>-127.0.0.1-<port>``); a ``squatted``
server has neither a runtime directory nor a usable home, and finds that name in its shared
temporary directory taken by another user.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M

pytestmark = pytest.mark.e2e

WORKERS = 3
SIZE = 1500
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
HEADERS = {"User-Agent": IPHONE, "CF-IPCountry": "DE"}
LABELS = {"service_name": "shop", "geo_country_iso_code": "DE", "device_class": "smartphone"}

WSGI_APP = """
import os
import time

from otel_downstream.agent import WSGIMiddleware, configure

configure("shop")  # nothing else: no PROMETHEUS_MULTIPROC_DIR, the default /metrics port


def site(environ, start_response):
    time.sleep(0.005)  # long enough for concurrent requests to spread over the workers
    n = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"x" * n]


app = WSGIMiddleware(site, country_header="CF-IPCountry")
"""

ASGI_APP = """
import asyncio
import os

from otel_downstream.agent import ASGIMiddleware, configure

configure("shop")


async def site(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await asyncio.sleep(0.005)
    n = int(scope["path"].rsplit("/", 1)[-1])
    headers = [(b"content-type", b"text/plain"), (b"x-pid", str(os.getpid()).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"x" * n})


app = ASGIMiddleware(site, country_header="CF-IPCountry")
"""


_handed_out: set[int] = set()


def _free_port() -> int:
    """A free port never handed out before in this run (two picks in a row may otherwise get the
    same number: the app's port and the metrics port must differ)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    metrics: str
    group_dir: Path
    log: Path
    sent: int = 0
    pids: set[str] = field(default_factory=set)

    def workers(self) -> list[psutil.Process]:
        """The worker processes: children of the master, but for multiprocessing's resource
        tracker and our directory watcher (a child of the process that started it)."""
        workers = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = " ".join(child.cmdline())
                if "resource_tracker" not in cmdline and "workers.watcher watch" not in cmdline:
                    workers.append(child)
            except psutil.Error:
                continue
        return workers

    def send(self, n: int, concurrency: int = 6) -> None:
        def get(_: int) -> str:
            for attempt in range(3):  # a worker being replaced may drop a connection
                try:
                    response = httpx.get(f"{self.base}/items/{SIZE}", headers=HEADERS, timeout=10)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
                    time.sleep(0.2)
            assert response.status_code == 200
            assert len(response.content) == SIZE
            return response.headers["X-Pid"]

        with ThreadPoolExecutor(concurrency) as pool:
            self.pids |= set(pool.map(get, range(n)))
        self.sent += n

    def holder(self) -> int:
        return int((self.group_dir / "holder").read_text().split()[0])


def _wait(what: str, ok: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return None
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


_PER_REQUEST: dict[str, float] = {}


def _per_request() -> dict[str, float]:
    if not _PER_REQUEST:
        engine = Engine(EngineConfig())
        for fp in engine.http_request(
            request_bytes=0, response_bytes=SIZE, country="DE", device_class="smartphone"
        ):
            for key in ("energy_j", "co2e_g"):
                _PER_REQUEST[key] = _PER_REQUEST.get(key, 0.0) + getattr(fp.total, key)
    return _PER_REQUEST


def assert_exact(server: Server) -> None:
    """/metrics shows exactly the requests sent, and that many times the engine's figures."""
    seen: list[float] = []

    def done() -> bool:
        samples = _scrape(server.metrics)
        if samples is None:
            return False
        seen.append(_total(samples, M.REQUESTS, **LABELS))
        return seen[-1] == server.sent

    try:
        _wait(f"{server.sent} requests on /metrics", done, timeout=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[-3:]}") from None
    samples = _scrape(server.metrics)
    assert samples is not None
    want = _per_request()
    assert _total(samples, M.REQUESTS, **LABELS) == server.sent
    assert _total(samples, M.CO2E, **LABELS) == pytest.approx(
        server.sent * want["co2e_g"], rel=1e-9
    )
    assert _total(samples, M.ENERGY, **LABELS) == pytest.approx(
        server.sent * want["energy_j"], rel=1e-9
    )
    assert _total(samples, M.TRANSFER_BYTES, direction="response") == server.sent * SIZE


def _env(tmp: Path, metrics_port: int, *, runtime: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    env["OTEL_DOWNSTREAM_METRICS_PORT"] = str(metrics_port)
    env["TMPDIR"] = str(tmp)
    if runtime:  # the preferred base: private to us
        tmp.chmod(0o700)
        env["XDG_RUNTIME_DIR"] = str(tmp)
    else:  # the last resort: a temporary directory others may write to
        env.pop("XDG_RUNTIME_DIR", None)
        not_a_home = tmp.parent / "not-a-home"  # a file: nothing can be made under it
        not_a_home.write_text("")
        env["HOME"] = str(not_a_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _group_dir(tmp: Path, metrics_port: int) -> Path:
    return tmp / f"otel-downstream-{os.getuid()}-127.0.0.1-{metrics_port}"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server (``kind``: gunicorn-sync, gunicorn-gthread, uvicorn) and always stop it."""
    started: list[Server] = []

    def run(
        kind: str, *extra: str, metrics_port: int | None = None, squatted: bool = False
    ) -> Server:
        bin_dir = Path(sys.executable).parent
        tmp = tmp_path / "tmp"
        tmp.mkdir(exist_ok=True)
        (tmp_path / "wsgi_site.py").write_text(WSGI_APP)
        (tmp_path / "asgi_site.py").write_text(ASGI_APP)
        port = _free_port()
        mport = metrics_port or _free_port()
        if kind.startswith("gunicorn"):
            cmd = [
                str(bin_dir / "gunicorn"),
                "--bind", f"127.0.0.1:{port}",
                "--workers", str(WORKERS),
                "--worker-class", "gthread" if kind == "gunicorn-gthread" else "sync",
                "--threads", "4" if kind == "gunicorn-gthread" else "1",
                "--graceful-timeout", "5",
                "--chdir", str(tmp_path),
                "--log-level", "info",
                *extra,
                "wsgi_site:app",
            ]  # fmt: skip
        elif kind == "hypercorn":
            cmd = [
                str(bin_dir / "hypercorn"),
                "--bind", f"127.0.0.1:{port}",
                "--workers", str(WORKERS),
                *extra,
                "asgi_site:app",
            ]  # fmt: skip
        elif kind == "uwsgi":
            cmd = [
                str(bin_dir / "uwsgi"),
                "--http-socket", f"127.0.0.1:{port}",
                "--master",
                "--processes", str(WORKERS),
                "--need-app",
                "--die-on-term",  # SIGTERM stops (uWSGI 2.0 reloads on it otherwise)
                "--pythonpath", str(tmp_path),
                "--virtualenv", sys.prefix,
                "--module", "wsgi_site:app",
                *extra,
            ]  # fmt: skip
        else:
            cmd = [
                str(bin_dir / "uvicorn"),
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", str(WORKERS),
                "--app-dir", str(tmp_path),
                "--log-level", "info",
                *extra,
                "asgi_site:app",
            ]  # fmt: skip
        log = tmp_path / f"{kind}-{len(started)}.log"
        group_dir = _group_dir(tmp, mport)
        if squatted:  # another user (nobody) made the group's name first, in a shared /tmp
            tmp.chmod(0o1777)
            group_dir.mkdir(mode=0o755)
            os.chown(group_dir, 65534, 65534)
            group_dir = group_dir.with_name(group_dir.name + ".1")
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                env=_env(tmp, mport, runtime=not squatted),
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(
            proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mport}/metrics",
            group_dir, log,
        )  # fmt: skip
        started.append(server)

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{kind} exited:\n{log.read_text()}")
            try:
                httpx.get(f"{server.base}/items/0", timeout=2)  # counted, but not as DE/phone
            except httpx.TransportError:
                return False
            return _scrape(server.metrics) is not None and len(server.workers()) >= WORKERS

        _wait(f"{kind} to start", up, timeout=30)
        return server

    yield run
    for server in started:
        stop(server)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(server.proc.pid).children(recursive=True):
                child.kill()
            server.proc.kill()
            server.proc.wait()


def _kill_holder_and_wait(server: Server) -> None:
    """SIGKILL the worker serving /metrics; wait for its replacement and another server."""
    holder = server.holder()
    before = {w.pid for w in server.workers()}
    assert holder in before, "the /metrics port is held by a worker"
    os.kill(holder, signal.SIGKILL)
    _wait(
        "a respawned worker",
        lambda: (
            holder not in {w.pid for w in server.workers()} and len(server.workers()) >= WORKERS
        ),
    )
    _wait("/metrics served again", lambda: _scrape(server.metrics) is not None)
    assert server.holder() != holder


@pytest.mark.parametrize("kind", ["gunicorn-sync", "gunicorn-gthread"])
def test_gunicorn_sums_every_worker_through_kill_and_reload(
    start: Callable[..., Server], kind: str
) -> None:
    server = start(kind)
    server.send(60)
    assert len(server.pids) >= 2, "the requests did not spread over several workers"
    assert_exact(server)

    _kill_holder_and_wait(server)
    server.send(30)
    assert_exact(server)

    old = {w.pid for w in server.workers()}
    server.proc.send_signal(signal.SIGHUP)  # new workers first, then the old ones stop
    _wait(
        "the reload",
        lambda: not old & {w.pid for w in server.workers()} and len(server.workers()) >= WORKERS,
    )
    _wait("/metrics served after the reload", lambda: _scrape(server.metrics) is not None)
    server.send(30)
    assert_exact(server)

    group_dir = server.group_dir
    assert group_dir.is_dir()
    assert (group_dir.stat().st_mode & 0o777) == 0o700
    stop(server)
    _wait("the group's directory to go", lambda: not group_dir.exists(), timeout=5)


def test_gunicorn_max_requests_recycling_keeps_every_count(start: Callable[..., Server]) -> None:
    """Workers replaced every 10-15 requests: every count stays, in their files or folded."""
    server = start("gunicorn-sync", "--max-requests", "10", "--max-requests-jitter", "5")
    for _ in range(4):
        server.send(25, concurrency=3)
    assert len(server.pids) >= WORKERS + 3, "too few workers were recycled"
    assert_exact(server)
    # The files of the recycled workers were folded (a new worker folds them when it joins):
    # a scrape reads a bounded number of files, with the same totals.
    assert (server.group_dir / "folded.json").exists()
    assert list(server.group_dir.glob("counter_folded*.db"))


def test_gunicorn_preload_master_serves(start: Callable[..., Server]) -> None:
    """--preload: configure() runs in the master, which serves; its workers inherit the mode."""
    server = start("gunicorn-sync", "--preload")
    assert server.holder() == server.proc.pid
    server.send(45)
    assert_exact(server)
    victim = server.workers()[0].pid
    os.kill(victim, signal.SIGKILL)
    _wait("a respawned worker", lambda: victim not in {w.pid for w in server.workers()})
    server.send(30)
    assert_exact(server)
    group_dir = server.group_dir
    stop(server)
    _wait("the group's directory to go", lambda: not group_dir.exists(), timeout=5)


@pytest.mark.parametrize("kind", ["uvicorn", "hypercorn"])
def test_asgi_workers_sum_through_kill_and_reload(start: Callable[..., Server], kind: str) -> None:
    server = start(kind)
    server.send(60)
    assert len(server.pids) >= 2, "the requests did not spread over several workers"
    assert_exact(server)

    if kind == "uvicorn":  # hypercorn stops altogether when a worker dies: nothing to take over
        _kill_holder_and_wait(server)  # uvicorn's supervisor respawns a dead worker
        server.send(30)
        assert_exact(server)

    # uvicorn restarts its workers one by one; hypercorn stops them all, then starts new ones
    # (the directory stays, as its master lives on)
    old = {w.pid for w in server.workers()}
    server.proc.send_signal(signal.SIGHUP)
    _wait(
        "the reload",
        lambda: not old & {w.pid for w in server.workers()} and len(server.workers()) >= WORKERS,
        timeout=30,
    )
    _wait("/metrics served after the reload", lambda: _scrape(server.metrics) is not None)
    server.send(30)
    assert_exact(server)

    group_dir = server.group_dir
    stop(server)
    _wait("the group's directory to go", lambda: not group_dir.exists(), timeout=5)


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "uwsgi").exists(), reason="uWSGI is not installed"
)
def test_uwsgi_master_serves_the_sum_through_a_killed_worker(
    start: Callable[..., Server],
) -> None:
    """uWSGI loads the app in its master, then forks: the master serves, its workers (joined in
    uWSGI's postfork hook) write their own files."""
    server = start("uwsgi")
    assert server.holder() == server.proc.pid
    server.send(60)
    assert len(server.pids) >= 2, "the requests did not spread over several workers"
    assert_exact(server)
    victim = server.workers()[0].pid
    os.kill(victim, signal.SIGKILL)
    _wait(
        "a respawned worker",
        lambda: (
            victim not in {w.pid for w in server.workers()} and len(server.workers()) >= WORKERS
        ),
    )
    server.send(30)
    assert_exact(server)
    group_dir = server.group_dir
    stop(server)
    _wait("the group's directory to go", lambda: not group_dir.exists(), timeout=5)


def test_a_stale_directory_is_wiped_at_the_next_start(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    """A group killed outright, watcher and all, leaves its directory; the next start (no member
    nor master alive) wipes it, a counter reset Prometheus handles, instead of adding the dead
    group's counts again."""
    metrics_port = _free_port()
    first = start("gunicorn-sync", metrics_port=metrics_port)
    first.send(20)
    assert_exact(first)
    # Everything dies at once, the directory's watcher too (a container killed, a host crash).
    watcher = int((first.group_dir / "watcher").read_text().split()[0])
    os.kill(watcher, signal.SIGKILL)
    for worker in first.workers():
        worker.kill()
    first.proc.kill()
    first.proc.wait()
    _wait("the killed workers", lambda: not any(p.is_running() for p in _zombies_gone(first)))
    assert first.group_dir.is_dir(), "a killed group leaves its directory"
    assert list(first.group_dir.glob("*.db"))

    second = start("gunicorn-sync", metrics_port=metrics_port)
    second.send(10)
    assert_exact(second)  # 10, not 30
    stop(second)
    _wait("the group's directory to go", lambda: not second.group_dir.exists(), timeout=5)


def _zombies_gone(server: Server) -> list[psutil.Process]:
    out = []
    for pid in psutil.pids():
        try:
            p = psutil.Process(pid)
            if p.ppid() == server.proc.pid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def test_a_port_held_outside_the_group_is_said_and_the_app_starts(tmp_path: Path) -> None:
    """Another program holds the metrics port: every worker starts, serves its requests, and says
    plainly that its figures are not reaching Prometheus, naming what to set. Once the port is
    free a worker takes it over, and the count of unserved workers is there to see."""
    (tmp_path / "wsgi_site.py").write_text(WSGI_APP)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = _free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", _free_port()))
    busy.listen(1)
    mport = busy.getsockname()[1]
    log = tmp_path / "gunicorn.log"
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2",
        "--chdir", str(tmp_path),
        "--log-level", "info",
        "wsgi_site:app",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=_env(tmp, mport), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mport}/metrics",
                    _group_dir(tmp, mport), log)  # fmt: skip
    try:
        _wait(
            "the warning",
            lambda: log.read_text().count("NOT reaching Prometheus") >= 2,
            timeout=20,
        )
        server.send(10)
        busy.close()  # the other program goes: a worker takes the port over
        assert_exact(server)
        samples = _scrape(server.metrics)
        assert samples is not None
        assert _total(samples, M.METRICS_UNSERVED, reason="port_outside_group") == 2
    finally:
        busy.close()
        stop(server)
    text = log.read_text()
    assert "held by a process outside this worker group" in text
    assert "OTEL_DOWNSTREAM_METRICS_PORT" in text
    assert "PROMETHEUS_MULTIPROC_DIR" in text
    _wait("the group's directory to go", lambda: not server.group_dir.exists(), timeout=5)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_squatted_group_name_takes_the_next_one_and_every_count_stays(
    start: Callable[..., Server],
) -> None:
    """Another local user pre-creates the predictable directory in a shared /tmp: every worker
    skips it for the same next name, so /metrics still sums them all."""
    server = start("gunicorn-sync", squatted=True)
    server.send(30)
    assert_exact(server)
    assert server.group_dir.is_dir()
    assert "could not be set up" not in server.log.read_text()
    stop(server)
    _wait("the group's directory to go", lambda: not server.group_dir.exists(), timeout=5)


def test_recycling_with_an_unreadable_file_and_scrapes_all_the_while(
    start: Callable[..., Server],
) -> None:
    """Workers recycled every 2 requests, /metrics scraped every 20 ms: a scrape may meet a new
    worker's file as prometheus-client creates it (empty for a moment) and never fails for it;
    an empty file left by a dead worker (killed while creating it) is set aside by the fold, and
    every new worker stays in the group: the totals stay exact."""
    server = start("gunicorn-gthread", "--max-requests", "2")
    (server.group_dir / "counter_4194000.db").write_bytes(b"")  # a dead worker's empty file
    statuses: list[int] = []
    stop_scraping = threading.Event()

    def scrape() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop_scraping.wait(0.02):
                try:
                    statuses.append(client.get(server.metrics).status_code)
                except httpx.TransportError:
                    pass  # the worker serving /metrics is being recycled

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        server.send(60, concurrency=2)
    finally:
        stop_scraping.set()
        scraper.join(10)
    assert len(server.pids) >= WORKERS + 10, "too few workers were recycled"
    # the last recycling may still be under way: /metrics is taken over within about a second
    _wait("the workers to settle", lambda: len(server.workers()) >= WORKERS)
    _wait("/metrics served", lambda: _scrape(server.metrics) is not None)
    time.sleep(1.5)
    assert_exact(server)
    assert statuses and set(statuses) == {200}
    text = server.log.read_text()
    assert "could not be set up" not in text
    assert not (server.group_dir / "counter_4194000.db").exists()
