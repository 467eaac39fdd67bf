"""No first increment lost: a new series is scraped at 0 once, then with its value; counters never
take NaN, an infinity or a decrease (issue 16, items 2 and 3).

In process, through a real ``CollectorRegistry`` and the scrape view every server uses
(``safe_registry``); multiprocess mode in a subprocess with a forked worker, since
prometheus-client switches its value class for the whole process.
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.pending_sums import INVALID_AMOUNT
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M
from otel_downstream.exporters.metrics import scrapes
from otel_downstream.exporters.metrics.exposition import safe_registry

FR = {"service_name": "shop", "geo_country_iso_code": "FR", "device_class": "desktop"}


def _http(country: str = "FR", device: str = "desktop", size: int = 50_000) -> dict[str, object]:
    return {
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_RESPONSE_BODY_SIZE: size,
        A.GEO_COUNTRY_ISO_CODE: country,
        A.DOWNSTREAM_DEVICE_CLASS: device,
    }


def _llm(model: str = "gpt-4o-mini") -> dict[str, object]:
    return {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: 300,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 500,
    }


def _accountant(hold_seconds: float = 0.0) -> tuple[Accountant, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = AccountingSettings.resolve(new_series_hold_seconds=hold_seconds)
    return Accountant(Engine(EngineConfig()), registry=registry, settings=settings), registry


def _page(view: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One scrape of the view: every sample keyed by (name, labels)."""
    text = generate_latest(view).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sum(page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **match: str):
    want = set(match.items())
    return sum(v for (n, labels), v in page.items() if n == name and want <= labels)


def _has(page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **match: str):
    want = set(match.items())
    return any(n == name and want <= labels for (n, labels) in page)


def _truth(spans: list[dict[str, object]], kinds: list[str]) -> float:
    """The CO2e the same spans add in a registry nobody serves (written at once, as before)."""
    acc, registry = _accountant()
    for attrs, kind in zip(spans, kinds, strict=True):
        assert acc.account(attrs, service_name="shop", kind=kind)
    acc.flush()
    return sum(s.value for family in registry.collect() for s in family.samples if s.name == M.CO2E)


def test_a_new_series_is_scraped_at_zero_once_then_with_its_value() -> None:
    acc, registry = _accountant()
    view = safe_registry(registry)
    spans, kinds = [_http(), _llm()], ["SERVER", "CLIENT"]
    for attrs, kind in zip(spans, kinds, strict=True):
        acc.account(attrs, service_name="shop", kind=kind)

    first = _page(view)
    assert _has(first, M.CO2E, segment="network", geo_country_iso_code="FR")
    assert _has(first, M.CO2E, segment="ai_inference", gen_ai_request_model="gpt-4o-mini")
    assert _sum(first, M.CO2E) == 0.0
    assert _sum(first, M.REQUESTS, **FR) == 0.0
    assert _sum(first, M.GEN_AI_TOKENS) == 0.0
    assert _sum(first, M.REQUEST_CO2E + "_count") == 0.0

    second = _page(view)
    truth = _truth(spans, kinds)
    assert truth > 0
    assert _sum(second, M.CO2E) == pytest.approx(truth, rel=1e-12)
    assert _sum(second, M.REQUESTS, **FR) == 1.0
    assert _sum(second, M.GEN_AI_TOKENS) == 800.0
    assert _sum(second, M.REQUEST_CO2E + "_count") == 2.0
    assert acc._sums.held() == 0


def test_a_known_series_takes_its_increments_at_once() -> None:
    acc, registry = _accountant()
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    _page(view)
    _page(view)
    acc.account(_http(), service_name="shop", kind="SERVER")
    assert _sum(_page(view), M.REQUESTS, **FR) == 2.0
    # A new label set beside it waits one scrape; the known one does not.
    acc.account(_http(), service_name="shop", kind="SERVER")
    acc.account(_http(country="DE"), service_name="shop", kind="SERVER")
    page = _page(view)
    assert _sum(page, M.REQUESTS, **FR) == 3.0
    assert _sum(page, M.REQUESTS, geo_country_iso_code="DE") == 0.0
    assert _sum(_page(view), M.REQUESTS, geo_country_iso_code="DE") == 1.0


def test_flushes_that_are_not_scrapes_do_not_release() -> None:
    """force_flush (the SDK's, the demo's) writes, but no scrape has shown the series at 0."""
    acc, registry = _accountant()
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    for _ in range(3):
        acc.flush()
    assert registry.get_sample_value(M.REQUESTS, FR) == 0.0  # created at 0: a scrape sees 0
    assert acc._sums.held() > 0
    assert _sum(_page(view), M.REQUESTS, **FR) == 0.0
    acc.flush()  # after a completed scrape, any flush may release
    assert registry.get_sample_value(M.REQUESTS, FR) == 1.0
    assert _sum(_page(view), M.REQUESTS, **FR) == 1.0


def test_an_unfinished_scrape_releases_nothing() -> None:
    acc, registry = _accountant()
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    reading = view.collect()
    next(reading)  # the scrape began (its flush created the series at 0) but never completed
    reading.close()
    assert _sum(_page(view), M.REQUESTS, **FR) == 0.0
    assert _sum(_page(view), M.REQUESTS, **FR) == 1.0


def test_hold_seconds_keep_a_new_series_at_zero_for_every_scraper() -> None:
    acc, registry = _accountant(hold_seconds=0.4)
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    started = time.monotonic()
    assert _sum(_page(view), M.REQUESTS, **FR) == 0.0  # scraper A
    assert _sum(_page(view), M.REQUESTS, **FR) == 0.0  # scraper B, within the hold
    time.sleep(max(0.0, 0.45 - (time.monotonic() - started)))
    assert _sum(_page(view), M.REQUESTS, **FR) == 1.0


def test_shutdown_releases_everything_held() -> None:
    acc, registry = _accountant(hold_seconds=3600)
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    acc.account(_llm(), service_name="shop", kind="CLIENT")
    _page(view)
    assert registry.get_sample_value(M.REQUESTS, FR) == 0.0
    acc.flush(release=True)
    assert acc._sums.held() == 0
    assert registry.get_sample_value(M.REQUESTS, FR) == 1.0
    assert _sum(_page(view), M.CO2E) == pytest.approx(
        _truth([_http(), _llm()], ["SERVER", "CLIENT"]), rel=1e-12
    )


def test_a_registry_nobody_serves_is_written_at_once() -> None:
    """No scrape view (a test reading the registry, an app reading values): nothing to hold for."""
    acc, registry = _accountant()
    acc.account(_http(), service_name="shop", kind="SERVER")
    assert registry.get_sample_value(M.REQUESTS, FR) == 1.0
    view = safe_registry(registry)
    assert _sum(_page(view), M.REQUESTS, **FR) == 1.0
    del view
    gc.collect()
    # a view that is gone (a /metrics port that was taken) leaves nothing waiting for it
    acc.account(_http(country="DE"), service_name="shop", kind="SERVER")
    assert registry.get_sample_value(M.REQUESTS, {**FR, "geo_country_iso_code": "DE"}) == 1.0


def test_a_view_dropped_while_series_are_held_releases_them() -> None:
    acc, registry = _accountant()
    view = safe_registry(registry)
    acc.account(_http(), service_name="shop", kind="SERVER")
    acc.flush()
    assert acc._sums.held() > 0
    del view
    gc.collect()
    assert registry.get_sample_value(M.REQUESTS, FR) == 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0])
def test_no_counter_takes_nan_infinity_or_a_decrease(bad: float) -> None:
    acc, registry = _accountant()
    view = safe_registry(registry)
    sums, m = acc._sums, acc.metrics
    acc.account(_http(), service_name="shop", kind="SERVER")
    _page(view)
    _page(view)
    with sums.lock:
        sums.count(m.requests, tuple(FR.values()), bad)  # a known series
        sums.count(m.gen_ai_calls, ("shop", "openai", "x"), bad)  # a new one
        sums._pending[("shop", "network", "operational", "FR", "desktop", "", "")] = [
            bad,
            bad,
            bad,
        ]
        sums.observe("shop", "http", bad, 1.0)
        sums.count(m.spans_accounted, ("http",), -1e-9)  # rounding dust: dropped silently
    before = _page(view)
    after = _page(view)
    for page in (before, after):
        values = [v for (name, _), v in page.items() if name.startswith("downstream_")]
        assert all(math.isfinite(v) and v >= 0 for v in values), page
        assert _sum(page, M.REQUESTS, **FR) == 1.0
        assert _sum(page, M.GEN_AI_CALLS) == 0.0
        assert _sum(page, M.REQUEST_CO2E + "_count") == 1.0
    # three footprint sums, two counters, one histogram: 6 dropped, each counted once as a fault
    # (synced into the self-metric by the scrape after the flush that found them)
    assert _sum(after, M.INSTRUMENTATION_ERRORS, component=INVALID_AMOUNT) == 6.0
    assert _sum(after, M.SPANS_ACCOUNTED, type="http") == 1.0


def test_the_file_mark_only_moves_forward_and_never_follows_a_symlink(tmp_path: Path) -> None:
    directory = str(tmp_path)
    assert scrapes.file_mark(directory) is None
    scrapes.served_file_mark(directory)
    assert scrapes.file_mark(directory) == 0
    now = time.monotonic_ns()
    scrapes.publish_file_mark(directory, now)
    scrapes.publish_file_mark(directory, now - 10**9)
    assert scrapes.file_mark(directory) == now
    # a mark from before a reboot (ahead of the monotonic clock) is replaced, not trusted
    ahead = time.monotonic_ns() + 3600 * 10**9
    path = tmp_path / scrapes.MARK_FILE
    os.utime(path, ns=(ahead, ahead))
    assert scrapes.file_mark(directory) == scrapes.NO_SCRAPE
    scrapes.publish_file_mark(directory, now)
    assert scrapes.file_mark(directory) == now
    # a symlink planted in its place is never followed
    other = tmp_path / "target"
    other.write_text("x")
    before = other.stat().st_mtime_ns
    path.unlink()
    path.symlink_to(other)
    scrapes.publish_file_mark(directory, time.monotonic_ns())
    assert other.stat().st_mtime_ns == before


_MULTIPROCESS = r"""
import os, signal, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from otel_downstream.agent.metrics_http import exposition_registry

served = exposition_registry(CollectorRegistry())  # the worker that serves /metrics

def requests_total():
    text = generate_latest(served).decode()
    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "downstream_requests_total" and s.labels["geo_country_iso_code"] == "FR"]
    return found[0] if found else None

ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:  # a worker: accounts two spans, then receives nothing more
    from otel_downstream.exporters.accounting.accountant import Accountant
    acc = Accountant(registry=CollectorRegistry())
    for _ in range(2):
        acc.account({"http.request.method": "GET", "http.response.body.size": 5000,
                     "geo.country.iso_code": "FR"}, service_name="s", kind="SERVER")
    os.write(ready_w, b"x")
    time.sleep(60)
    os._exit(0)
os.read(ready_r, 1)
print("first", requests_total())  # the series at 0; this completed scrape is published
deadline = time.monotonic() + 5
value = requests_total()
while value != 2.0 and time.monotonic() < deadline:
    time.sleep(0.05)
    value = requests_total()
print("released", value)
os.kill(pid, signal.SIGKILL)  # what was released is in the worker's file: kill -9 loses none
os.waitpid(pid, 0)
print("after kill", requests_total())
"""


def test_multiprocess_worker_releases_on_its_own_and_kill_loses_nothing_released(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split("\n")[:3] == ["first 0.0", "released 2.0", "after kill 2.0"], (
        out.stdout + out.stderr
    )
    assert (tmp_path / scrapes.MARK_FILE).exists()
