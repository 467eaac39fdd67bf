"""Per-label-set linear coefficients for HTTP footprints, and the sums a cell collects.

The engine's HTTP figures are linear in the request and response bytes for a given (country,
device class) — network and device per byte, data centre per byte — so four probes (0/0, 1 MB
request, 1 MB response, a mixed check) give the coefficients of every segment and scope. A span then
costs a few float additions instead of an engine call. The mixed probe guards the assumption: a
model that is not linear (a future method, a threshold) leaves the cell non-linear and every span
goes to the engine, so totals stay exact either way.
"""

from __future__ import annotations

import math
from typing import Final

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.exporters.accounting.labels import NOT_APPLICABLE
from otel_downstream.exporters.accounting.unknown import unknown_kinds
from otel_downstream.exporters.engine.engine import Engine
from otel_downstream.exporters.footprint import Footprint
from otel_downstream.exporters.metrics import families as M

PROBE_BYTES: Final = 1e6
_LINEAR_REL_TOL: Final = 1e-9
Row = tuple[tuple[str, ...], float, float, float, float, float, float, float, float, float]
"""One segment/scope of a cell: footprint label tuple, then energy/co2e/water per request (a), per
request byte (b) and per response byte (c), in the order a_e, a_c, a_w, b_e, b_c, b_w, c_e, c_c, c_w."""


class HttpCell:
    """Sums for one (service, country, device class) since the last flush, and its coefficients."""

    __slots__ = (
        "co2_a",
        "co2_b",
        "co2_c",
        "hist",
        "labels",
        "linear",
        "ln",
        "lreq",
        "lresp",
        "n",
        "req",
        "resp",
        "rows",
        "unknown",
    )

    def __init__(self, labels: tuple[str, str, str], hist: list[float]) -> None:
        self.labels = labels
        self.hist = hist
        self.n = self.req = self.resp = 0.0  # every request span (counts, bytes)
        self.ln = self.lreq = self.lresp = 0.0  # the ones accounted through the coefficients
        self.rows: tuple[Row, ...] = ()
        self.linear = False
        self.co2_a = self.co2_b = self.co2_c = 0.0
        self.unknown: tuple[str, ...] = ()


def http_unknown_kinds(footprints: tuple[Footprint, ...], country: str) -> tuple[str, ...]:
    """:func:`unknown_kinds` of an HTTP request, plus ``country`` when the client's was unknown."""
    found = unknown_kinds(footprints)
    if country == UNKNOWN_COUNTRY and "country" not in found:
        found = (*found, "country")
    return found


def engine_country(country: str) -> str | None:
    """The engine's ``country`` argument for a country label (``None``: the world average)."""
    return None if country == UNKNOWN_COUNTRY else country


def probe_cell(engine: Engine, key: tuple[str, str, str], hist: list[float]) -> HttpCell:
    """A new cell for (service, country, device), with coefficients when the engine is linear."""
    _, country, device = key
    cell = HttpCell(key, hist)
    at = engine_country(country)

    def probe(req: float, resp: float) -> tuple[Footprint, ...]:
        return engine.http_request(
            request_bytes=req, response_bytes=resp, country=at, device_class=device
        )

    zero, per_req, per_resp, check = (
        probe(0.0, 0.0),
        probe(PROBE_BYTES, 0.0),
        probe(0.0, PROBE_BYTES),
        probe(0.3 * PROBE_BYTES, 0.7 * PROBE_BYTES),
    )
    cell.unknown = http_unknown_kinds(zero, country)
    rows = _linear_rows(key, zero, per_req, per_resp, check)
    if rows is not None:
        cell.rows = rows
        cell.co2_a = sum(r[2] for r in rows)
        cell.co2_b = sum(r[5] for r in rows)
        cell.co2_c = sum(r[8] for r in rows)
        cell.linear = True
    return cell


def _linear_rows(
    key: tuple[str, str, str],
    zero: tuple[Footprint, ...],
    per_req: tuple[Footprint, ...],
    per_resp: tuple[Footprint, ...],
    check: tuple[Footprint, ...],
) -> tuple[Row, ...] | None:
    """Coefficients per segment and scope, or ``None`` when the probes show a non-linear model."""
    service, country, device = key
    segments = [fp.segment for fp in zero]
    if any([fp.segment for fp in probe] != segments for probe in (per_req, per_resp, check)):
        return None
    rows: list[Row] = []
    for z, r, s, c in zip(zero, per_req, per_resp, check, strict=True):
        for scope in (M.SCOPE_OPERATIONAL, M.SCOPE_EMBODIED):
            values: list[float] = []
            for attr in ("energy_j", "co2e_g", "water_l"):
                zv, rv, sv, cv = (_scoped(fp, scope, attr) for fp in (z, r, s, c))
                a, b, cc = zv, (rv - zv) / PROBE_BYTES, (sv - zv) / PROBE_BYTES
                predicted = a + b * 0.3 * PROBE_BYTES + cc * 0.7 * PROBE_BYTES
                if not math.isclose(predicted, cv, rel_tol=_LINEAR_REL_TOL, abs_tol=1e-18):
                    return None
                values += [a, b, cc]
            if scope == M.SCOPE_EMBODIED and not any(values):
                continue
            labels = (service, z.segment, scope, country, device, NOT_APPLICABLE, NOT_APPLICABLE)
            ae, be, ce, ac, bc, cc2, aw, bw, cw = values
            rows.append((labels, ae, ac, aw, be, bc, bw, ce, cc2, cw))
    return tuple(rows)


def _scoped(fp: Footprint, scope: str, attr: str) -> float:
    embodied: float = getattr(fp.embodied, attr)
    if scope == M.SCOPE_EMBODIED:
        return embodied
    total: float = getattr(fp.total, attr)
    return total - embodied
