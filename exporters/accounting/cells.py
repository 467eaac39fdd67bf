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
from typing import Final, NamedTuple

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.exporters.accounting.labels import NOT_APPLICABLE
from otel_downstream.exporters.accounting.unknown import unknown_kinds
from otel_downstream.exporters.engine.engine import Engine
from otel_downstream.exporters.footprint import Footprint
from otel_downstream.exporters.metrics import families as M

PROBE_BYTES: Final = 1e6
_LINEAR_REL_TOL: Final = 1e-9
_QUANTITIES: Final = ("energy_j", "co2e_g", "water_l")


class Rates(NamedTuple):
    """Energy, CO₂e and water per unit (a request, or a byte), in the footprint's base units."""

    energy_j: float
    co2e_g: float
    water_l: float


class LinearRow(NamedTuple):
    """One segment and scope of a cell: its footprint series and how they grow.

    A flush adds ``per_request * requests + per_request_byte * request_bytes +
    per_response_byte * response_bytes`` (the requests priced through the coefficients) to the
    energy, CO₂e and water series under ``labels``. Named tuples, read by unpacking in the flush:
    unpacking costs what a plain tuple's does, where reading nine fields by name (or nine slots)
    made every flush 10-20 % slower, and a flush runs after every span in multiprocess mode.
    """

    labels: tuple[str, ...]
    """The footprint label tuple (service, segment, scope, country, device, provider, model)."""
    per_request: Rates
    per_request_byte: Rates
    per_response_byte: Rates


class HttpCell:
    """Sums for one (service, country, device class) since the last flush, and its coefficients.

    Slotted and mutated in place, so the fast path adds a span with attribute stores and no
    allocation. Two sets of sums because a cell counts every request span, but only those priced
    through the coefficients (not the ones sent to the engine) are multiplied out at the flush.
    """

    __slots__ = (
        "co2e_per_request",
        "co2e_per_request_byte",
        "co2e_per_response_byte",
        "histogram",
        "labels",
        "linear",
        "linear_request_bytes",
        "linear_requests",
        "linear_response_bytes",
        "request_bytes",
        "requests",
        "response_bytes",
        "rows",
        "unknown_kinds",
    )

    def __init__(self, labels: tuple[str, str, str], histogram: list[float]) -> None:
        self.labels = labels
        """(service, country, device class) as exposed; the fold cell's differ from its key."""
        self.histogram = histogram
        """The service's pending per-request CO₂e histogram (bucket counts, then the sum)."""
        # Every request span: request counts and transfer bytes.
        self.requests = self.request_bytes = self.response_bytes = 0.0
        # The ones priced through the coefficients, multiplied out at the flush.
        self.linear_requests = self.linear_request_bytes = self.linear_response_bytes = 0.0
        self.rows: tuple[LinearRow, ...] = ()
        self.linear = False
        """Whether the probes found the engine linear here (else every span goes to the engine)."""
        # The CO₂e of one request, summed over the rows, for the per-request histogram.
        self.co2e_per_request = self.co2e_per_request_byte = self.co2e_per_response_byte = 0.0
        self.unknown_kinds: tuple[str, ...] = ()
        """``downstream_unknown_total`` kinds each linearly priced request adds."""


def http_unknown_kinds(footprints: tuple[Footprint, ...], country: str) -> tuple[str, ...]:
    """:func:`unknown_kinds` of an HTTP request, plus ``country`` when the client's was unknown."""
    found = unknown_kinds(footprints)
    if country == UNKNOWN_COUNTRY and "country" not in found:
        found = (*found, "country")
    return found


def engine_country(country: str) -> str | None:
    """The engine's ``country`` argument for a country label (``None``: the world average)."""
    return None if country == UNKNOWN_COUNTRY else country


def probe_cell(engine: Engine, key: tuple[str, str, str], histogram: list[float]) -> HttpCell:
    """A new cell for (service, country, device), with coefficients when the engine is linear."""
    _, country, device = key
    cell = HttpCell(key, histogram)
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
    cell.unknown_kinds = http_unknown_kinds(zero, country)
    rows = _linear_rows(key, zero, per_req, per_resp, check)
    if rows is not None:
        cell.rows = rows
        cell.co2e_per_request = sum(r.per_request.co2e_g for r in rows)
        cell.co2e_per_request_byte = sum(r.per_request_byte.co2e_g for r in rows)
        cell.co2e_per_response_byte = sum(r.per_response_byte.co2e_g for r in rows)
        cell.linear = True
    return cell


def _linear_rows(
    key: tuple[str, str, str],
    zero: tuple[Footprint, ...],
    per_req: tuple[Footprint, ...],
    per_resp: tuple[Footprint, ...],
    check: tuple[Footprint, ...],
) -> tuple[LinearRow, ...] | None:
    """Coefficients per segment and scope, or ``None`` when the probes show a non-linear model."""
    service, country, device = key
    segments = [fp.segment for fp in zero]
    if any([fp.segment for fp in probe] != segments for probe in (per_req, per_resp, check)):
        return None
    rows: list[LinearRow] = []
    for z, r, s, c in zip(zero, per_req, per_resp, check, strict=True):
        for scope in (M.SCOPE_OPERATIONAL, M.SCOPE_EMBODIED):
            per_request: list[float] = []
            per_request_byte: list[float] = []
            per_response_byte: list[float] = []
            for quantity in _QUANTITIES:
                zv, rv, sv, cv = (_scoped(fp, scope, quantity) for fp in (z, r, s, c))
                a, b, cc = zv, (rv - zv) / PROBE_BYTES, (sv - zv) / PROBE_BYTES
                predicted = a + b * 0.3 * PROBE_BYTES + cc * 0.7 * PROBE_BYTES
                if not math.isclose(predicted, cv, rel_tol=_LINEAR_REL_TOL, abs_tol=1e-18):
                    return None
                per_request.append(a)
                per_request_byte.append(b)
                per_response_byte.append(cc)
            if scope == M.SCOPE_EMBODIED and not any(
                (*per_request, *per_request_byte, *per_response_byte)
            ):
                continue
            labels = (service, z.segment, scope, country, device, NOT_APPLICABLE, NOT_APPLICABLE)
            rows.append(
                LinearRow(
                    labels, Rates(*per_request), Rates(*per_request_byte), Rates(*per_response_byte)
                )
            )
    return tuple(rows)


def _scoped(fp: Footprint, scope: str, quantity: str) -> float:
    embodied: float = getattr(fp.embodied, quantity)
    if scope == M.SCOPE_EMBODIED:
        return embodied
    total: float = getattr(fp.total, quantity)
    return total - embodied
