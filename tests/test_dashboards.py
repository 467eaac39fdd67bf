"""The Grafana dashboards and Prometheus rules hold together, checked without servers.

Every metric a panel or rule reads is one exporters/metrics/families.py exports (or a recording rule the
rules file defines), with labels those metrics carry; every panel has a query, a unit and the
``${datasource}`` variable; ``promtool`` accepts the rules, the Prometheus config and every panel
query, and its rule unit tests show each example alert firing (and staying quiet) when it should.
tests/e2e/test_prometheus.py then proves each query returns data from a real Prometheus.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.metrics import families as M
from tests.e2e.prom import ALL, CONFIG, RULE_FILES, dashboards, panels, recording_rules, substitute

RULES, ALERTS = RULE_FILES
PROVISIONING = CONFIG / "grafana" / "provisioning"
BOARDS = dashboards()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (make sysdeps installs Debian's prometheus)"
)

# Names in PromQL: ours start with downstream_; recording rules have the level:metric:ops shape.
_OUR_METRIC = re.compile(r"(?<![\w:])downstream_[a-z0-9_]+(?![\w:])")
_RULE_NAME = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _exported() -> tuple[set[str], set[str]]:
    """Sample names and label names the accounting core's registry can expose."""
    metrics = Accountant(registry=CollectorRegistry()).metrics
    names = {v for v in vars(M).values() if isinstance(v, str) and v.startswith("downstream_")}
    labels = {"job", "instance"}  # added by Prometheus at scrape time
    for value in vars(metrics).values():
        labelnames = getattr(value, "_labelnames", None)
        if labelnames is None:
            continue
        labels.update(labelnames)
        if isinstance(value, Histogram):
            base = value._name
            names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count"})
            labels.add("le")
    return names, labels


METRICS, LABELS = _exported()
RECORDED = {name for name, _ in recording_rules(RULES)}
LEVELS = {"segment", "service", "country", "device", "class", "provider", "model", "scope", "unit"}
LEVELS |= {"token", "type", "direction"}
"""Words of the aggregation levels (the labels a rule keeps), in the rule names' first part."""


def _all_queries() -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and every rule, variables as Grafana sends All."""
    queries = []
    for file, board in BOARDS.items():
        variables = {v["name"]: ALL for v in board["templating"]["list"]}
        for panel in panels(board):
            for target in panel["targets"]:
                where = f"{file}#{panel['id']} {panel['title']} [{target['refId']}]"
                queries.append((where, substitute(target["expr"], variables)))
    for path in RULE_FILES:
        queries += [(f"{path.name}: {name}", expr) for name, expr in recording_rules(path)]
    return queries


QUERIES = _all_queries()


def _unknown_names(expr: str) -> set[str]:
    unknown = {m for m in _OUR_METRIC.findall(expr) if m not in METRICS}
    unknown |= {m for m in _RULE_NAME.findall(expr) if m not in RECORDED}
    unknown |= {
        m for m in _SELECTOR.findall(expr) if m not in METRICS and m not in RECORDED
    }  # any other series name (up, node_*) would be a dependency nobody exports
    return unknown


def _labels_used(expr: str) -> set[str]:
    used = set(_MATCHER.findall(expr))
    for group in _GROUPING.findall(expr):
        used |= {name.strip() for name in group.split(",") if name.strip()}
    return used


# --- dashboards: shape -----------------------------------------------------------------------------


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    assert sorted(BOARDS) == [
        "downstream-ai-inference.json",
        "downstream-customer-infrastructure.json",
        "downstream-overview.json",
        "downstream-web-traffic.json",
    ]
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for board in BOARDS.values():
        assert 39 <= board["schemaVersion"] < 42
        assert board["title"] and board["description"]


@pytest.mark.parametrize("file", sorted(BOARDS))
def test_panel_ids_are_unique_and_panels_do_not_overlap(file: str) -> None:
    board = BOARDS[file]
    ids = [p["id"] for p in board["panels"]] + [
        p["id"] for row in board["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("file", sorted(BOARDS))
def test_every_panel_has_a_query_a_unit_and_the_datasource_variable(file: str) -> None:
    board = BOARDS[file]
    assert board["templating"]["list"][0] == {
        **board["templating"]["list"][0],
        "name": "datasource",
        "type": "datasource",
        "query": "prometheus",
    }
    for panel in panels(board):
        title = panel["title"]
        assert panel["description"], title
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title}: no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target["datasource"]["uid"] == "${datasource}", title
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        if "$__range" in " ".join(t["expr"] for t in panel["targets"]):
            # one total per range: an instant query (a range query would recompute it per step)
            assert all(t["instant"] for t in panel["targets"]), f"{title}: $__range over a range"


@pytest.mark.parametrize("file", sorted(BOARDS))
def test_every_variable_a_query_uses_is_defined(file: str) -> None:
    board = BOARDS[file]
    defined = {v["name"] for v in board["templating"]["list"]} | {
        "__rate_interval",
        "__range",
        "__interval",
    }
    texts = [t["expr"] for p in panels(board) for t in p["targets"]]
    texts += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    for text in texts:
        used = set(re.findall(r"\$\{?(\w+)", text))
        assert used <= defined, (used - defined, text)
    for variable in board["templating"]["list"][1:]:
        assert variable["includeAll"] and variable["allValue"] == ALL, variable["name"]


# Grafana unit ids these dashboards use (packages/grafana-data/src/valueFormats/categories.ts); an
# unknown id would silently render as a literal suffix. ``si:<unit>`` is Grafana's custom SI unit.
GRAFANA_UNITS = {
    "massg": "gram, SI-scaled (mg, g, kg)",
    "kwatth": "kilowatt-hour",
    "watth": "watt-hour, SI-scaled (mWh, Wh)",
    "watt": "watt (J/s)",
    "litre": "litre, SI-scaled (mL, L)",
    "short": "plain number",
    "none": "no unit",
    "cps": "counts per second",
    "reqps": "requests per second",
    "Bps": "bytes per second",
    "decbytes": "bytes (SI)",
    "percentunit": "0-1 as a percentage",
}


def _units(panel: dict[str, object]) -> set[str]:
    field_config: dict[str, Any] = panel["fieldConfig"]  # type: ignore[assignment]
    return {field_config["defaults"]["unit"]} | {
        prop["value"]
        for override in field_config["overrides"]
        for prop in override["properties"]
        if prop["id"] == "unit"
    }


def test_every_unit_is_a_grafana_unit() -> None:
    for file, board in BOARDS.items():
        for panel in panels(board):
            for unit in _units(panel):
                custom = re.fullmatch(r"si:(g|L)/h", unit)
                assert unit in GRAFANA_UNITS or custom, f"{file}: {panel['title']}: {unit}"


def test_energy_is_shown_in_watt_hours_or_watts_never_raw_joules() -> None:
    for file, board in BOARDS.items():
        for panel in panels(board):
            units = _units(panel)
            assert "joule" not in units, f"{file}: {panel['title']}"
            for target in panel["targets"]:
                expr = target["expr"]
                if "downstream_energy_joules" in expr and not any("watt" in u for u in units):
                    raise AssertionError(f"{file}: {panel['title']}: energy without a watt unit")
                if "kwatth" in units and "downstream_energy_joules_total" in expr:
                    assert "/ 3.6e6" in expr, f"{file}: {panel['title']}: J shown as kWh"


# --- names and labels ------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[w for w, _ in QUERIES])
def test_every_metric_a_query_reads_is_exported_or_recorded(where: str, expr: str) -> None:
    assert not _unknown_names(expr), f"{where}: unknown {_unknown_names(expr)}"
    assert _labels_used(expr) <= LABELS, f"{where}: {_labels_used(expr) - LABELS}"


def test_the_name_check_catches_a_typo_and_an_unknown_label() -> None:
    assert _unknown_names('sum(rate(downstream_co2_grams_total{segment="x"}[5m]))') == {
        "downstream_co2_grams_total"
    }
    assert _unknown_names("service:downstream_nothing:rate5m") == {
        "service:downstream_nothing:rate5m"
    }
    assert _unknown_names('up{job="x"}') == {"up"}
    assert _labels_used('sum by (country) (downstream_requests_total{route="/"})') - LABELS == {
        "country",
        "route",
    }


def test_legends_name_labels_the_query_keeps() -> None:
    for file, board in BOARDS.items():
        for panel in panels(board):
            for target in panel["targets"]:
                for label in _LEGEND.findall(target.get("legendFormat", "")):
                    assert label in target["expr"], f"{file}: {panel['title']}: {{{{{label}}}}}"


def test_functional_units_counter_feeds_the_per_user_rules() -> None:
    assert M.FUNCTIONAL_UNITS in METRICS
    per_user = dict(recording_rules(RULES))["service:downstream_co2e_grams_per_user:ratio_rate5m"]
    assert 'downstream_functional_units_total{unit="user"}' in per_user


def test_recording_rule_names_follow_the_level_metric_operations_convention() -> None:
    names = [name for name, _ in recording_rules(RULES)]
    assert len(names) == len(set(names))
    for name in names:
        level, metric, ops = name.split(":")
        assert set(level.split("_")) <= LEVELS, name
        assert metric.startswith("downstream_"), name
        assert re.fullmatch(r"(ratio_)?rate(5m|1h)|projected_30d", ops), name
        assert not metric.endswith("_total"), name


# --- promtool ---------------------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@needs_promtool
def test_promtool_accepts_the_rules_and_the_prometheus_config() -> None:
    rules = _promtool("check", "rules", str(RULES), str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool("check", "config", str(CONFIG / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "2 rule files found" in config.stdout + config.stderr


@needs_promtool
def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    """Each panel query (variables filled in) as a recording rule: promtool parses them all."""
    lines = ["groups:", "  - name: panels", "    rules:"]
    panel_queries = [(w, e) for w, e in QUERIES if w.endswith("]")]
    for i, (_, expr) in enumerate(panel_queries):
        lines += [f"      - record: panel:query_{i}:check", f"        expr: {_yaml_str(expr)}"]
    path = tmp_path / "panels.yml"
    path.write_text("\n".join(lines) + "\n")
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(panel_queries)} rules found" in result.stdout


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


# Rule unit tests: each example alert fires on a synthetic history and stays quiet on a calm one.
_ALERT_TESTS = """
rule_files:
  - {rules}
  - {alerts}
evaluation_interval: 5m
tests:
  - interval: 5m
    input_series:
      - series: 'downstream_co2e_grams_total{{service_name="shop", segment="network"}}'
        values: '0+500x30'
      - series: 'downstream_co2e_grams_total{{service_name="blog", segment="network"}}'
        values: '0+0.05x30'
    alert_rule_test:
      - eval_time: 150m
        alertname: DownstreamCO2eMonthlyBudgetAtRisk
        exp_alerts:
          - exp_labels: {{severity: warning, service_name: shop}}
            exp_annotations:
              summary: "shop: projected 30-day downstream CO2e over budget"
              description: "At the last hour's pace shop would emit 4.32Mg CO2e in 30 days (budget 50 kg)."
      - eval_time: 20m
        alertname: DownstreamCO2eMonthlyBudgetAtRisk
        exp_alerts: []
      - eval_time: 150m
        alertname: DownstreamSpansRejected
        exp_alerts: []
  - interval: 1h
    input_series:
      - series: 'downstream_co2e_grams_total{{service_name="shop", segment="network"}}'
        values: '0+200x30'
      - series: 'downstream_co2e_grams_total{{service_name="blog", segment="network"}}'
        values: '0+20x30'
    alert_rule_test:
      - eval_time: 25h
        alertname: DownstreamCO2eDailyBudgetExceeded
        exp_alerts:
          - exp_labels: {{severity: warning, service_name: shop}}
            exp_annotations:
              summary: "shop: downstream CO2e over the daily budget"
              description: "shop caused 4.8kg CO2e downstream in the last 24 h (budget 2 kg)."
  - interval: 10m
    input_series:
      # 0.1 g per request for a day, then a release doubles it to 0.2 g
      - series: 'downstream_co2e_grams_total{{service_name="shop", segment="network"}}'
        values: '0+10x144 1460+20x20'
      - series: 'downstream_requests_total{{service_name="shop", geo_country_iso_code="FR", device_class="desktop"}}'
        values: '0+100x164'
    alert_rule_test:
      - eval_time: 23h
        alertname: DownstreamPerRequestIntensityRegression
        exp_alerts: []
      - eval_time: 26h
        alertname: DownstreamPerRequestIntensityRegression
        exp_alerts:
          - exp_labels: {{severity: warning, service_name: shop}}
            exp_annotations:
              summary: "shop: CO2e per request up more than 25% on a day ago"
              description: "shop now causes 200mg CO2e per request (network + devices), more than 1.25x the same hour yesterday."
  - interval: 5m
    input_series:
      - series: 'downstream_instrumentation_errors_total{{component="serve"}}'
        values: '0 0 3 3'
      - series: 'downstream_label_overflow_total{{label="gen_ai_request_model"}}'
        values: '_ _ 2 2'
      - series: 'downstream_instrumentation_errors_total{{component="exporters.accounting"}}'
        values: '_ _ 1 1'
      - series: 'downstream_spans_accounted_total{{type="http"}}'
        values: '0+500x10'
      - series: 'downstream_spans_rejected_total{{reason="invalid_bytes"}}'
        values: '0+25x10'
      - series: 'downstream_metrics_unserved_total{{reason="port_outside_group"}}'
        values: '_ _ 1 1'
    alert_rule_test:
      - eval_time: 5m
        alertname: DownstreamMetricsUnserved
        exp_alerts: []
      - eval_time: 15m
        alertname: DownstreamMetricsUnserved
        exp_alerts:
          - exp_labels: {{severity: warning, reason: port_outside_group}}
            exp_annotations:
              summary: "otel-downstream: figures of some workers are not reaching Prometheus (port_outside_group)"
              description: "1 process(es) could not serve their figures on the /metrics port (port_outside_group): their requests are accounted but missing from every total. Give the metrics another OTEL_DOWNSTREAM_METRICS_PORT, set OTEL_DOWNSTREAM_MULTIPROCESS=true or PROMETHEUS_MULTIPROC_DIR for a pre-fork server that is not detected, or mount metrics_wsgi_app() in the app (docs/middleware.md, Pre-fork servers)."
      - eval_time: 5m
        alertname: DownstreamInstrumentationErrors
        exp_alerts: []
      - eval_time: 15m
        alertname: DownstreamInstrumentationErrors
        exp_alerts:
          - exp_labels: {{severity: warning, component: serve}}
            exp_annotations:
              summary: "otel-downstream: internal errors in serve"
              description: "3 fault(s) caught in serve in 15 minutes; see the process log for the first traceback."
          - exp_labels: {{severity: warning, component: exporters.accounting}}
            exp_annotations:
              summary: "otel-downstream: internal errors in exporters.accounting"
              description: "1 fault(s) caught in exporters.accounting in 15 minutes; see the process log for the first traceback."
      - eval_time: 15m
        alertname: DownstreamLabelOverflow
        exp_alerts:
          - exp_labels: {{severity: info, label: gen_ai_request_model}}
            exp_annotations:
              summary: "otel-downstream: gen_ai_request_model values folded into other"
              description: "2 gen_ai_request_model values went to 'other' since the processes started; raise the limit or allow-list the names you need."
      - eval_time: 30m
        alertname: DownstreamSpansRejected
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: "otel-downstream: footprint spans rejected"
              description: "4.762% of footprint spans were rejected in 10 minutes; downstream_spans_rejected_total{{reason}} says why."
"""


@needs_promtool
def test_each_example_alert_fires_when_it_should(tmp_path: Path) -> None:
    path = tmp_path / "alerts_test.yml"
    path.write_text(_ALERT_TESTS.format(rules=RULES, alerts=ALERTS))
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {name for name, _ in recording_rules(ALERTS)}
    assert alerts == set(re.findall(r"alertname: (\w+)", _ALERT_TESTS)), "an alert has no test"


# --- Grafana provisioning ---------------------------------------------------------------------------


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasource = (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    assert re.search(r"^\s+type: prometheus$", datasource, re.M)
    assert re.search(r"^\s+url: http://prometheus:9090$", datasource, re.M)
    assert re.search(r"^apiVersion: 1$", datasource, re.M)
    provider = (PROVISIONING / "dashboards" / "downstream.yml").read_text()
    assert re.search(r"^\s+type: file$", provider, re.M)
    path = re.search(r"^\s+path: (\S+)$", provider, re.M)
    assert path is not None
    # The documented mount puts collector-config/grafana/dashboards at that path.
    assert f"grafana/dashboards:{path.group(1)}" in provider


def test_docs_explain_every_panel_and_alert() -> None:
    docs = (CONFIG.parent / "docs" / "dashboards.md").read_text()
    for file, board in BOARDS.items():
        assert f"`{file}`" in docs
        for panel in panels(board):
            assert f"| {panel['title']} ({panel['type']}) |" in docs, f"{file}: {panel['title']}"
    for name, _ in recording_rules(ALERTS):
        assert f"| `{name}` |" in docs, name
