"""Proven, not assumed: every dashboard panel and every recording rule returns data from a real
Prometheus scraping a real ``otel-downstream serve`` fed by the real OTLP exporter.

A background thread sends a round of realistic spans every 0.5 s (web requests from five countries
and six device classes, some marking new users; OpenAI and Mistral calls; measured and modelled
host samples; a few invalid spans) while Prometheus scrapes every second and evaluates the rule
files every second. Then each panel query (template variables filled in as Grafana would) and each
recorded series is asked for through ``/api/v1/query`` and must come back non-empty with a finite
value; the rules must all be healthy, the alerts the traffic should trip must be pending or firing,
and the per-request, per-user and per-1k-token intensities must agree with the engine's own
figures for the same spans.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from tests.e2e.prom import (
    ALL,
    HTTP_MIX,
    LLM_MIX,
    RULE_FILES,
    Prometheus,
    dashboards,
    emit_label_overflow,
    emit_mix,
    panels,
    prometheus_binary,
    recording_rules,
    substitute,
)
from tests.e2e.test_service import Serve

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="prometheus not installed (make sysdeps installs Debian's prometheus)",
    ),
]

SERVICES = ("shop", "assistant")
SERVICE_LIMIT = 100  # the accountant's default service_name limit (one more folds into "other")
WARM_UP_S = 6.0
DEADLINE_S = 30.0


class Traffic:
    """Sends one round of the mix per service every ``period`` seconds until stopped."""

    def __init__(self, traces_url: str, period: float = 0.5) -> None:
        self.rounds = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(traces_url, period), daemon=True)
        self._thread.start()

    def _run(self, traces_url: str, period: float) -> None:
        while not self._stop.is_set():
            try:
                emit_mix(traces_url, SERVICES)
                self.rounds += 1
            except BaseException as exc:  # surfaced by stop()
                self.errors.append(exc)
                return
            self._stop.wait(period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Serve, Prometheus, Traffic]]:
    serve = Serve()
    prometheus: Prometheus | None = None
    traffic: Traffic | None = None
    try:
        prometheus = Prometheus(str(serve.info["metrics"]))
        prometheus.wait_ready()
        traffic = Traffic(serve.traces_url)
        while traffic.rounds < 1 and not traffic.errors:
            time.sleep(0.05)
        # Our services hold two of the label's places; the tenants past the rest fold into other,
        # once before Prometheus's first scrape and again after it, so "other" has a rate too.
        emit_label_overflow(serve.traces_url, "tenant-a", SERVICE_LIMIT - len(SERVICES) + 1)
        prometheus.wait_scraped("downstream_label_overflow_total")
        emit_label_overflow(serve.traces_url, "tenant-b", 1)
        time.sleep(WARM_UP_S)
        yield serve, prometheus, traffic
    finally:
        if traffic is not None:
            traffic.stop()
        if prometheus is not None:
            prometheus.stop()
        serve.close()


def _panel_queries() -> list[tuple[str, str]]:
    """``(dashboard / panel [refId], PromQL)`` for every target, services narrowed to ours."""
    found = []
    for file, board in dashboards().items():
        variables = {v["name"]: ALL for v in board["templating"]["list"]}
        variables["service_name"] = "|".join(SERVICES)  # a multi-select, as Grafana sends it
        for panel in panels(board):
            for target in panel["targets"]:
                where = f"{file.removesuffix('.json')} / {panel['title']} [{target['refId']}]"
                found.append((where, substitute(target["expr"], variables)))
    return found


def _finite(result: list[dict[str, object]]) -> list[float]:
    values = [float(sample["value"][1]) for sample in result]  # type: ignore[index]
    return [v for v in values if math.isfinite(v)]


def _evaluate_until_all_have_data(
    prometheus: Prometheus, queries: list[tuple[str, str]]
) -> dict[str, list[dict[str, object]]]:
    """Query each until it returns a finite value (series appear a scrape or a rule cycle late)."""
    results: dict[str, list[dict[str, object]]] = {}
    deadline = time.monotonic() + DEADLINE_S
    pending = list(queries)
    while pending:
        still = []
        for where, expr in pending:
            result = prometheus.query(expr)
            if _finite(result):
                results[where] = result
            else:
                still.append((where, expr))
        pending = still
        if pending and time.monotonic() > deadline:
            missing = "\n".join(f"  {w}: {e}" for w, e in pending)
            raise AssertionError(f"no data after {DEADLINE_S}s for:\n{missing}")
        if pending:
            time.sleep(1.0)
    return results


def test_every_panel_query_and_recording_rule_returns_data(
    stack: tuple[Serve, Prometheus, Traffic],
) -> None:
    _, prometheus, traffic = stack
    panel_queries = _panel_queries()
    rules = [(f"rule {name}", name) for name, _ in recording_rules(RULE_FILES[0])]
    results = _evaluate_until_all_have_data(prometheus, panel_queries + rules)
    assert traffic.rounds >= 5

    print(f"\nproven against Prometheus {prometheus.url} after {traffic.rounds} rounds of spans:")
    for where, _ in panel_queries + rules:
        values = _finite(results[where])
        print(f"  ok  {where}: {len(results[where])} series, e.g. {values[0]:.6g}")
    print(f"{len(panel_queries)} panel queries, {len(rules)} recording rules")

    # No fault happened inside serve: the errors stat shows its zero, not a hidden count.
    errors = [w for w, _ in panel_queries if w.endswith("/ Instrumentation errors [A]")]
    assert len(errors) == 1 and _finite(results[errors[0]]) == [0.0]
    # The tenant past the service label limit is accounted under service_name="other".
    by_service = results["rule service:downstream_co2e_grams_per_request:ratio_rate5m"]
    assert {"shop", "assistant", "other"} <= {s["metric"]["service_name"] for s in by_service}  # type: ignore[index]


def test_every_variable_drop_down_has_values(stack: tuple[Serve, Prometheus, Traffic]) -> None:
    """``label_values(selector, label)``: what Grafana asks Prometheus to fill each drop-down."""
    _, prometheus, _ = stack
    checked = 0
    for file, board in dashboards().items():
        variables = {v["name"]: ALL for v in board["templating"]["list"]}
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            selector, label = substitute(match.group(1), variables), match.group(2)
            body = prometheus.get(f"/api/v1/label/{label}/values?match[]={quote(selector)}")
            assert body["status"] == "success" and body["data"], (file, variable["name"], body)
            checked += 1
    assert checked >= 9


def test_rules_are_healthy_and_the_alerts_this_traffic_trips_are_active(
    stack: tuple[Serve, Prometheus, Traffic],
) -> None:
    _, prometheus, _ = stack
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == sum(len(recording_rules(path)) for path in RULE_FILES)
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy
    deadline = time.monotonic() + DEADLINE_S
    want = {
        "DownstreamLabelOverflow": "firing",  # the service past the limit (no "for")
        "DownstreamSpansRejected": "pending",  # 1 invalid span in 13 (for: 10m)
        "DownstreamCO2eMonthlyBudgetAtRisk": "pending",  # a video to a TV every 0.5 s (for: 30m)
    }
    while True:
        active = {
            a["labels"]["alertname"]: a["state"]
            for a in prometheus.get("/api/v1/alerts")["data"]["alerts"]
        }
        if all(active.get(name) == state for name, state in want.items()):
            break
        assert time.monotonic() < deadline, active
        time.sleep(1.0)
    assert "DownstreamInstrumentationErrors" not in active


def test_intensity_rules_agree_with_the_engine(stack: tuple[Serve, Prometheus, Traffic]) -> None:
    """Ratios of rates over identical rounds equal the ratios of one round's figures."""
    _, prometheus, _ = stack
    engine = Engine(EngineConfig.from_env())
    web_g = total_g = 0.0
    requests = users = 0
    for _, req, resp, country, device, new_user in HTTP_MIX:
        for fp in engine.http_request(
            request_bytes=req, response_bytes=resp, country=country, device_class=device
        ):
            web_g += fp.total.co2e_g
        requests += 1
        users += new_user
    total_g += web_g
    llm_g: dict[str, float] = {}
    llm_tokens: dict[str, int] = {}
    for provider, model, tokens_in, tokens_out, latency in LLM_MIX:
        fp = engine.llm_call(
            provider=provider,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            latency_s=latency,
        )
        llm_g[model] = fp.total.co2e_g
        llm_tokens[model] = tokens_in + tokens_out
        total_g += fp.total.co2e_g

    def one(expr: str) -> float:
        values = _finite(prometheus.query(expr))
        assert len(values) == 1, (expr, values)
        return values[0]

    # Usually equal to the last bit. A scrape landing inside an export can split a round between
    # series, and rates of series born a scrape apart extrapolate differently: hence 5%. A wrong
    # segment set, label match or unit is off by far more.
    per_request = one('service:downstream_co2e_grams_per_request:ratio_rate5m{service_name="shop"}')
    assert per_request == pytest.approx(web_g / requests, rel=0.05)
    per_1k = one(
        "provider_model:downstream_co2e_grams_per_1k_tokens:ratio_rate5m"
        '{gen_ai_request_model="mistral-small-latest"}'
    )
    expected_1k = 1000 * llm_g["mistral-small-latest"] / llm_tokens["mistral-small-latest"]
    assert per_1k == pytest.approx(expected_1k, rel=0.05)
    # Per new user: everything the service caused (host samples included), over its new users.
    host_g = one(
        'sum(rate(downstream_co2e_grams_total{service_name="shop", '
        'segment="customer_infrastructure"}[5m])) '
        '/ sum(rate(downstream_functional_units_total{service_name="shop", unit="user"}[5m]))'
    )
    per_user = one('service:downstream_co2e_grams_per_user:ratio_rate5m{service_name="shop"}')
    assert per_user == pytest.approx(total_g / users + host_g, rel=0.05)
