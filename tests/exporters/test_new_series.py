"""No first increment lost: a new series is scraped at 0 once, then with its value; counters never
take NaN, an infinity or a decrease (issue 16, items 2 and 3).

In process, through a real ``CollectorRegistry`` and the scrape view every server uses
(``safe_registry``); multiprocess mode (where the scrape view zeroes new
label sets itself, ``seen_series``) in a subprocess with forked workers, since prometheus-client
switches its value class for the whole process, and the seen record directly.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.pending_sums import INVALID_AMOUNT
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M
from otel_downstream.exporters.metrics import seen_series
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


_MULTIPROCESS = r"""
import json, os, signal, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from otel_downstream.agent.metrics_http import exposition_registry

served = exposition_registry(CollectorRegistry())  # the worker that serves /metrics

def page(view):
    text = generate_latest(view).decode()
    return {(s.name, s.labels.get("geo_country_iso_code", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("downstream_requests_total", "downstream_request_co2e_grams_count")}

def worker(country, n):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker: accounts its spans (written at once), then receives nothing more
        from otel_downstream.exporters.accounting.accountant import Accountant
        acc = Accountant(registry=CollectorRegistry())
        for _ in range(n):
            acc.account({"http.request.method": "GET", "http.response.body.size": 5000,
                         "geo.country.iso_code": country}, service_name="s", kind="SERVER")
        os.write(ready_w, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(ready_r, 1)
    return pid

a = worker("FR", 2)
os.kill(a, signal.SIGKILL)  # killed at once: nothing was held in it, nothing is lost
os.waitpid(a, 0)
out = {"first": page(served), "second": page(served)}
b = worker("DE", 3)
out["takeover"] = page(exposition_registry(CollectorRegistry()))  # another serving process
out["again"] = page(served)
print(json.dumps({k: {f"{n}|{c}": v for (n, c), v in p.items()} for k, p in out.items()}))
os.kill(b, signal.SIGKILL)
os.waitpid(b, 0)
"""


def test_multiprocess_a_new_series_is_zeroed_by_the_scrape_and_kill_loses_nothing(
    tmp_path: Path,
) -> None:
    """Multiprocess mode: the workers hold nothing (a SIGKILLed one loses nothing it counted); the
    scrape shows a label set it never exposed at 0 (histograms whole), then its value, and a new
    serving process reading the same directory never shows a known one at 0 again."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pages = json.loads(out.stdout.strip().splitlines()[-1])
    req, count = "downstream_requests_total", "downstream_request_co2e_grams_count"
    assert pages["first"] == {f"{req}|FR": 0.0, f"{count}|": 0.0}, out.stderr
    assert pages["second"] == {f"{req}|FR": 2.0, f"{count}|": 2.0}
    # the takeover shows the known FR series and histogram at once, the new DE series at 0
    assert pages["takeover"] == {f"{req}|FR": 2.0, f"{req}|DE": 0.0, f"{count}|": 5.0}
    assert pages["again"] == {f"{req}|FR": 2.0, f"{req}|DE": 3.0, f"{count}|": 5.0}
    assert (tmp_path / seen_series.SEEN_FILE).exists()
    assert not list(tmp_path.glob("*scrape_mark*"))


def _families(value: float, country: str = "FR") -> list[Metric]:
    counter = CounterMetricFamily(M.REQUESTS[: -len("_total")], "r", labels=["c"])
    counter.add_metric([country], value)
    hist = HistogramMetricFamily(M.REQUEST_CO2E, "h", labels=["c"])
    hist.add_metric([country], [("1.0", value), ("+Inf", value)], sum_value=value)
    gauge = GaugeMetricFamily("downstream_g", "g", labels=["c"])
    gauge.add_metric([country], value)
    return [counter, hist, gauge]


def _values(families: Iterator[Metric]) -> dict[str, float]:
    return {
        s.name + "".join(f"|{v}" for k, v in sorted(s.labels.items()) if k != "le"): s.value
        for f in families
        for s in f.samples
        if s.labels.get("le") in (None, "+Inf")
    }


def test_seen_series_zero_once_hold_and_takeover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS", "0.4")
    seen = seen_series.SeenSeries(str(tmp_path))
    started = time.monotonic()
    first = _values(seen.expose(_families(3.0)))
    assert first["downstream_g|FR"] == 3.0  # a gauge is never zeroed
    assert {k: v for k, v in first.items() if "_g|" not in k} == dict.fromkeys(
        [M.REQUESTS + "|FR", M.REQUEST_CO2E + "_bucket|FR", M.REQUEST_CO2E + "_count|FR",
         M.REQUEST_CO2E + "_sum|FR"], 0.0)  # fmt: skip
    # within the hold, for every scraper and every serving process
    assert _values(seen.expose(_families(3.0)))[M.REQUESTS + "|FR"] == 0.0
    other = seen_series.SeenSeries(str(tmp_path))
    assert _values(other.expose(_families(4.0)))[M.REQUEST_CO2E + "_sum|FR"] == 0.0
    time.sleep(max(0.0, 0.45 - (time.monotonic() - started)))
    assert _values(seen.expose(_families(4.0)))[M.REQUESTS + "|FR"] == 4.0
    # a takeover (a new process) after the hold shows the value at once; a new series still 0
    later = seen_series.SeenSeries(str(tmp_path))
    page = _values(later.expose(_families(5.0) + _families(1.0, "DE")))
    assert page[M.REQUEST_CO2E + "_count|FR"] == 5.0
    assert page[M.REQUEST_CO2E + "_count|DE"] == 0.0
    assert _values(seen.expose(_families(1.0, "DE")))[M.REQUESTS + "|DE"] == 0.0  # its hold


def test_seen_series_fails_safe(tmp_path: Path) -> None:
    path = tmp_path / seen_series.SEEN_FILE
    seen = seen_series.SeenSeries(str(tmp_path))
    assert _values(seen.expose(_families(2.0)))[M.REQUESTS + "|FR"] == 0.0
    # a line cut short by a kill (no scrape served it) is skipped, and the next writer closes it
    with path.open("ab") as f:
        f.write(b'123 ["downstream_x", [["c", "F')
    fresh = seen_series.SeenSeries(str(tmp_path))
    page = _values(fresh.expose(_families(2.0) + _families(1.0, "DE")))
    assert page[M.REQUESTS + "|FR"] == 2.0
    assert page[M.REQUESTS + "|DE"] == 0.0
    assert (
        _values(seen_series.SeenSeries(str(tmp_path)).expose(_families(1.0, "DE")))[
            M.REQUESTS + "|DE"
        ]
        == 1.0
    )
    # a line that is not ours: the record cannot vouch for anything, so nothing is zeroed
    with path.open("ab") as f:
        f.write(b"garbage\n")
    broken = seen_series.SeenSeries(str(tmp_path))
    assert _values(broken.expose(_families(7.0, "US")))[M.REQUESTS + "|US"] == 7.0
    # a record that cannot be read this time: known series as before, unknown ones left out
    path.unlink()
    path.mkdir()
    page = _values(fresh.expose(_families(2.0) + _families(9.0, "JP")))
    assert page[M.REQUESTS + "|FR"] == 2.0
    assert [key for key in page if "|JP" in key] == ["downstream_g|JP"]  # a gauge as ever
    # a record wiped (a stale directory: its counters too) starts again
    path.rmdir()
    assert _values(fresh.expose(_families(1.0)))[M.REQUESTS + "|FR"] == 0.0


def test_seen_series_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seen_series, "SEEN_LIMIT", 2)
    seen = seen_series.SeenSeries(str(tmp_path))
    seen.expose(_families(1.0))  # two label sets: the record is full
    page = _values(seen.expose(_families(1.0) + _families(6.0, "DE")))
    assert page[M.REQUESTS + "|DE"] == 6.0  # not recordable: shown as it is, never a false 0
