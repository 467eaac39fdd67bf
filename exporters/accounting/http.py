"""Request and engagement spans: the fast path of the accounting core.

Kept apart from ``accounting/accountant.py`` (which dispatches every span type) because this is the path that
must stay fast: a linear (country, device class) cell adds a span's weight and bytes with a few
float additions (coefficients and cells in ``accounting/cells.py``); a non-linear cell, an engagement
span or a span over the label-set cap goes to the engine, so totals stay exact either way.
"""

from __future__ import annotations

import bisect
from typing import Final

from otel_downstream.exporters.accounting.cells import (
    HttpCell,
    engine_country,
    http_unknown_kinds,
    probe_cell,
)
from otel_downstream.exporters.accounting.labels import (
    FOLDED_DEVICE_CLASS,
    NOT_APPLICABLE,
    LabelSets,
    normalize_country,
    normalize_device_class,
)
from otel_downstream.exporters.accounting.shared import Shared
from otel_downstream.exporters.accounting.span_inputs import HttpInput
from otel_downstream.exporters.metrics import families as M

__all__ = ["HttpAccounting"]

_NA: Final = NOT_APPLICABLE
_ZZ: Final = "ZZ"
_BUCKETS: Final = M.CO2E_BUCKETS_G
_N_BUCKETS: Final = M.CO2E_N_BUCKETS


class HttpAccounting:
    """Prices request and engagement spans into the accountant's pending sums."""

    def __init__(
        self,
        shared: Shared,
        *,
        label_set_limit: int,
    ) -> None:
        self.engine, self.metrics, self._sums, self._label, self._services = shared
        self._request_sets = LabelSets("request_labels", label_set_limit)

    def account(self, record: HttpInput, service_name: str, weight: float) -> str:
        """Add one span's footprint; the service label it was counted under."""
        sums = self._sums
        country, country_ok = normalize_country(record.country)
        device, device_ok = normalize_device_class(record.device_class)
        service = self._label(self._services, service_name)
        key = (service, country, device)
        cell = sums.cells.get(key)
        if cell is None:
            cell = self._cell(key)
            if cell.labels != key:  # over the cap: folded (its spans never find a cell by key)
                sums.bump(self.metrics.label_overflow, (self._request_sets.name,), 1.0)
        label_country, label_device = cell.labels[1], cell.labels[2]
        if not country_ok:
            sums.bump(self.metrics.unknown, ("invalid_country",), weight)
        if not device_ok:
            sums.bump(self.metrics.unknown, ("device_class",), weight)
        if not record.response_size_known:
            sums.bump(self.metrics.unknown, ("response_size",), weight)
        for kind in record.unknown:  # fields ignored while reading the span (span_inputs.py)
            sums.bump(self.metrics.unknown, (kind,), weight)
        if not record.counts_request:
            cell = None  # a beacon adds footprint under the cell's labels, not a request
        elif record.engagement_s is None and cell.linear:
            req, resp = record.request_bytes, record.response_bytes
            co2 = (
                cell.co2e_per_request
                + cell.co2e_per_request_byte * req
                + cell.co2e_per_response_byte * resp
            )
            with sums.lock:
                if cell.requests == 0.0:
                    sums.dirty.append(cell)
                cell.requests += weight
                cell.request_bytes += weight * req
                cell.response_bytes += weight * resp
                cell.linear_requests += weight
                cell.linear_request_bytes += weight * req
                cell.linear_response_bytes += weight * resp
                histogram = cell.histogram
                histogram[bisect.bisect_left(_BUCKETS, co2)] += weight
                histogram[_N_BUCKETS] += weight * co2
            return service
        footprints = self.engine.http_request(
            request_bytes=record.request_bytes,
            response_bytes=record.response_bytes,
            country=engine_country(country),
            device_class=device,
            engagement_s=record.engagement_s,
        )
        tail = (label_country, label_device, _NA, _NA)
        with sums.lock:
            for fp in footprints:
                sums.add_footprint(fp, (service, fp.segment), tail, weight)
            for kind in http_unknown_kinds(footprints, country):
                sums.count(self.metrics.unknown, (kind,), weight)
            if cell is not None:
                if cell.requests == 0.0:
                    sums.dirty.append(cell)
                cell.requests += weight
                cell.request_bytes += weight * record.request_bytes
                cell.response_bytes += weight * record.response_bytes
                sums.observe(service, "http", sum(fp.total.co2e_g for fp in footprints), weight)
            else:
                sums.count(self.metrics.spans_accounted, ("engagement",), weight)
        return service

    def _cell(self, key: tuple[str, str, str]) -> HttpCell:
        """The cell for a (service, country, device class) seen for the first time.

        Under the label-set cap: a new cell, its coefficients probed once. Over it: the service's
        fold cell (``ZZ``, ``other``), never probed, so each of its spans goes to the engine with
        its real country and device class: the totals stay exact, only the breakdown is folded.
        """
        sums = self._sums
        admitted = self._request_sets.admit(key)
        label = key if admitted else (key[0], _ZZ, FOLDED_DEVICE_CLASS)
        if not admitted:
            cell = sums.cells.get(label)
            if cell is not None:
                return cell
        with sums.lock:  # flush iterates the histograms
            histogram = sums.hist(key[0], "http")
        cell = probe_cell(self.engine, key, histogram) if admitted else HttpCell(label, histogram)
        with sums.lock:
            return sums.cells.setdefault(label, cell)
