"""Footprint totals read from a ``/metrics`` scrape, so they show what Prometheus sees.

Used by ``otel-downstream demo`` for its closing summary and by ``otel-downstream report``.

Totals by segment, client country, device class and model, with per-request, per-LLM-call,
per-1,000-token and per-user intensities, and the method and data versions from
``downstream_build_info`` (the engine's ``versions()``). Energy is shown in Wh (kWh from 1 kWh),
CO₂e in grams, water in mL (L from 1 L): the figures of a short demo are small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from otel_downstream.exporters.footprint import ZERO, Impact
from otel_downstream.exporters.metrics import families as M

__all__ = ["Summary", "render", "summarize"]

_FUNCTIONAL_UNITS: Final = "downstream_functional_units_total"
_JOULES_PER_WH: Final = 3600.0
_WEB_SEGMENTS: Final = ("network", "customer_device", "datacenter")


@dataclass
class Summary:
    """Everything the summary prints, summed from one scrape."""

    total: Impact = ZERO
    by_segment: dict[str, Impact] = field(default_factory=dict)
    by_country: dict[str, Impact] = field(default_factory=dict)
    by_device: dict[str, Impact] = field(default_factory=dict)
    by_model: dict[str, Impact] = field(default_factory=dict)
    requests: float = 0.0
    llm_calls: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)
    host_samples: float = 0.0
    transfer_bytes: dict[str, float] = field(default_factory=dict)
    functional_units: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def _add(table: dict[str, Impact], key: str, figures: Impact) -> None:
    table[key] = table.get(key, ZERO) + figures


def summarize(exposition: str) -> Summary:
    """Sum a Prometheus text exposition (a ``/metrics`` body) into a :class:`Summary`."""
    summary = Summary()
    cells: dict[tuple[tuple[str, str], ...], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    column = {M.ENERGY: 0, M.CO2E: 1, M.WATER: 2}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name in column:
                cells[tuple(sorted(labels.items()))][column[name]] += value
            elif name == M.REQUESTS:
                summary.requests += value
            elif name == M.GEN_AI_CALLS:
                summary.llm_calls += value
            elif name == M.GEN_AI_TOKENS:
                kind = labels.get("gen_ai_token_type", "")
                summary.tokens[kind] = summary.tokens.get(kind, 0.0) + value
            elif name == M.HOST_SAMPLES:
                summary.host_samples += value
            elif name == M.TRANSFER_BYTES:
                direction = labels.get("direction", "")
                summary.transfer_bytes[direction] = (
                    summary.transfer_bytes.get(direction, 0.0) + value
                )
            elif name == _FUNCTIONAL_UNITS:
                unit = labels.get("unit", "")
                summary.functional_units[unit] = summary.functional_units.get(unit, 0.0) + value
            elif name == M.BUILD_INFO:
                summary.versions = {k: v for k, v in labels.items() if v}
    for key, (energy, co2e, water) in cells.items():
        labels = dict(key)
        figures = Impact(energy, co2e, water)
        summary.total += figures
        _add(summary.by_segment, labels.get("segment", ""), figures)
        if labels.get("geo_country_iso_code"):
            _add(summary.by_country, labels["geo_country_iso_code"], figures)
        if labels.get("device_class"):
            _add(summary.by_device, labels["device_class"], figures)
        if labels.get("gen_ai_request_model"):
            model = f"{labels.get('gen_ai_provider_name', '?')} / {labels['gen_ai_request_model']}"
            _add(summary.by_model, model, figures)
    return summary


def energy_text(joules: float) -> str:
    wh = joules / _JOULES_PER_WH
    if wh >= 1000:
        return f"{wh / 1000:.3f} kWh"
    return f"{wh:.4g} Wh"


def water_text(litres: float) -> str:
    return f"{litres:.3f} L" if litres >= 1 else f"{litres * 1000:.4g} mL"


def _row(name: str, figures: Impact, share_of: float) -> str:
    share = f"{100 * figures.co2e_g / share_of:5.1f}%" if share_of > 0 else "     -"
    return (
        f"  {name:<34} {energy_text(figures.energy_j):>14} {figures.co2e_g:>12.4g} g "
        f"{water_text(figures.water_l):>12}  {share}"
    )


def _table(title: str, rows: Iterable[tuple[str, Impact]], total_co2e: float) -> list[str]:
    ordered = sorted(rows, key=lambda item: -item[1].co2e_g)
    head = f"{title:<36} {'energy':>14} {'CO2e':>14} {'water':>12}  share of CO2e"
    return ["", head, *(_row(name, fig, total_co2e) for name, fig in ordered)]


def render(
    summary: Summary,
    metrics_url: str,
    title: str = "Downstream footprint of this demo run (read back from /metrics)",
) -> str:
    """The summary as printed at the end of ``otel-downstream demo`` (and by ``report``)."""
    total = summary.total
    lines = [
        "",
        "=" * 96,
        title,
        "=" * 96,
    ]
    lines.append(
        f"Total: {energy_text(total.energy_j)}, {total.co2e_g:.4g} g CO2e, "
        f"{water_text(total.water_l)} water"
    )
    lines += _table("By segment", summary.by_segment.items(), total.co2e_g)
    if "datacenter" not in summary.by_segment:
        lines.append(
            "  (datacenter: off, the operator's own Scope 2/3; "
            "OTEL_DOWNSTREAM_INCLUDE_DATACENTER=true adds it)"
        )
    lines += _table("By client country (web + hosts)", summary.by_country.items(), total.co2e_g)
    lines += _table("By device class (web)", summary.by_device.items(), total.co2e_g)
    lines += _table("By model (AI inference)", summary.by_model.items(), total.co2e_g)
    lines += ["", "Intensities"]
    web = sum((summary.by_segment.get(s, ZERO) for s in _WEB_SEGMENTS), ZERO)
    if summary.requests:
        lines.append(
            _row(f"per web request ({summary.requests:.0f})", web.scaled(1 / summary.requests), 0)
        )
    ai = summary.by_segment.get("ai_inference", ZERO)
    if summary.llm_calls:
        lines.append(
            _row(f"per LLM call ({summary.llm_calls:.0f})", ai.scaled(1 / summary.llm_calls), 0)
        )
    tokens = sum(summary.tokens.values())
    if tokens:
        lines.append(
            _row(f"per 1,000 LLM tokens ({tokens:.0f} in all)", ai.scaled(1000 / tokens), 0)
        )
    users = summary.functional_units.get("user", 0.0)
    if users:
        lines.append(_row(f"per user ({users:.0f}), all segments", total.scaled(1 / users), 0))
    sent = summary.transfer_bytes
    lines += [
        "",
        f"Traffic: {summary.requests:.0f} requests, {sent.get('response', 0) / 1e6:.2f} MB sent, "
        f"{sent.get('request', 0) / 1e6:.2f} MB received; {summary.llm_calls:.0f} LLM calls, "
        f"{summary.tokens.get('input', 0):.0f} input + {summary.tokens.get('output', 0):.0f} output "
        f"tokens; {summary.host_samples:.0f} host-sampler intervals",
        "",
        "Methods and data: "
        + ", ".join(f"{k}={v}" for k, v in sorted(summary.versions.items()) if k != "version"),
        f"Package version: {summary.versions.get('version', '?')}",
        f"Metrics: {metrics_url} (Prometheus text format; e.g. sum by (segment) ({M.CO2E}))",
    ]
    return "\n".join(lines)
