"""What the accounting core has added up since the last flush, and writing it into Prometheus.

Spans add into plain floats here instead of calling prometheus-client per span: a ``labels()`` call
and an ``inc()`` per series per span would cost more than all the footprint maths. ``flush()``
writes the sums into the counters and histograms when the registry is collected, on shutdown, and
after every span in multiprocess mode. Every method named "lock held" expects the caller to hold
:attr:`PendingSums.lock`; the lock guards every dict and cell here.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any, Final

from otel_downstream.exporters.accounting.cells import HttpCell
from otel_downstream.exporters.footprint import Footprint
from otel_downstream.exporters.metrics import families as M

_BUCKETS: Final = M.CO2E_BUCKETS_G
_N_BUCKETS: Final = M.CO2E_N_BUCKETS


class PendingSums:
    """Sums per label set since the last flush: footprints, plain counters, histograms, HTTP cells."""

    __slots__ = ("_children", "_counts", "_hists", "_pending", "cells", "dirty", "lock", "metrics")

    def __init__(self, metrics: M.FootprintMetrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.cells: dict[tuple[str, str, str], HttpCell] = {}
        """(service, country, device class) -> its cell; the accountant adds into cells inline."""
        self.dirty: list[HttpCell] = []
        """Cells with something to flush; a cell joins when its count leaves zero."""
        self._hists: dict[tuple[str, str], list[float]] = {}
        self._pending: dict[tuple[str, ...], list[float]] = {}  # footprint labels -> [J, g, L]
        self._counts: dict[tuple[object, tuple[str, ...]], float] = {}  # (counter, labels) -> n
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def bump(self, counter: object, labels: tuple[str, ...], amount: float) -> None:
        """Lock not held. Add to a pending counter value."""
        with self.lock:
            self.count(counter, labels, amount)

    def count(self, counter: object, labels: tuple[str, ...], amount: float) -> None:
        """Lock held. Add to a pending counter value."""
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0.0) + amount

    def add_footprint(
        self,
        fp: Footprint,
        head: tuple[str, str],
        tail: tuple[str, str, str, str],
        weight: float,
    ) -> None:
        """Lock held. Add ``fp`` (split into operational and embodied) to the pending sums."""
        embodied = fp.embodied
        op = (*head, M.SCOPE_OPERATIONAL, *tail)
        sums = self._pending.get(op)
        if sums is None:
            sums = self._pending[op] = [0.0, 0.0, 0.0]
        sums[0] += weight * (fp.total.energy_j - embodied.energy_j)
        sums[1] += weight * (fp.total.co2e_g - embodied.co2e_g)
        sums[2] += weight * (fp.total.water_l - embodied.water_l)
        if embodied.energy_j or embodied.co2e_g or embodied.water_l:
            emb = (*head, M.SCOPE_EMBODIED, *tail)
            sums = self._pending.get(emb)
            if sums is None:
                sums = self._pending[emb] = [0.0, 0.0, 0.0]
            sums[0] += weight * embodied.energy_j
            sums[1] += weight * embodied.co2e_g
            sums[2] += weight * embodied.water_l

    def hist(self, service: str, kind: str) -> list[float]:
        """Lock held. The pending bucket counts (+ sum last) of one per-request CO₂e histogram.

        An HTTP cell holds on to its service's list, so the fast path observes without a lookup.
        """
        key = (service, kind)
        hist = self._hists.get(key)
        if hist is None:
            hist = self._hists[key] = [0.0] * (_N_BUCKETS + 1)
        return hist

    def observe(self, service: str, kind: str, co2e_g: float, weight: float) -> None:
        """Lock held. One weighted observation of the per-request CO₂e histogram."""
        hist = self.hist(service, kind)
        hist[bisect.bisect_left(_BUCKETS, co2e_g)] += weight
        hist[_N_BUCKETS] += weight * co2e_g

    def flush_locked(self) -> None:
        """Lock held. Write everything pending into the Prometheus metrics and start again."""
        m, child = self.metrics, self._child
        for cell in self.dirty:
            service = cell.labels[0]
            priced = cell.linear_requests  # the rest went to the engine, already in _pending
            if priced:
                req, resp = cell.linear_request_bytes, cell.linear_response_bytes
                # Inlined and unpacked (LinearRow of three Rates: per request, per request byte,
                # per response byte, each energy, CO2e, water): a flush runs this for every row.
                for labels, (re_, rc, rw), (qe, qc, qw), (pe, pc, pw) in cell.rows:
                    self._inc3(
                        labels,
                        re_ * priced + qe * req + pe * resp,
                        rc * priced + qc * req + pc * resp,
                        rw * priced + qw * req + pw * resp,
                    )
                for kind in cell.unknown_kinds:
                    child(m.unknown, (kind,)).inc(priced)
            child(m.requests, cell.labels).inc(cell.requests)
            child(m.spans_accounted, ("http",)).inc(cell.requests)
            if cell.request_bytes:
                child(m.transfer_bytes, (service, M.DIRECTION_REQUEST)).inc(cell.request_bytes)
            if cell.response_bytes:
                child(m.transfer_bytes, (service, M.DIRECTION_RESPONSE)).inc(cell.response_bytes)
            cell.requests = cell.request_bytes = cell.response_bytes = 0.0
            cell.linear_requests = cell.linear_request_bytes = cell.linear_response_bytes = 0.0
        self.dirty.clear()
        for labels, (energy, co2e, water) in self._pending.items():
            self._inc3(labels, energy, co2e, water)
        self._pending.clear()
        for (counter, labels), amount in self._counts.items():
            if amount > 0:
                child(counter, labels).inc(amount)
        self._counts.clear()
        for (service, kind), hist in self._hists.items():
            if hist[_N_BUCKETS] or any(hist[:_N_BUCKETS]):
                M.observe_weighted(child(m.request_co2e, (service, kind)), hist)
                hist[:] = [0.0] * (_N_BUCKETS + 1)

    def _child(self, metric: object, labels: tuple[str, ...]) -> Any:
        """Lock held. The metric's child for ``labels``, kept so a flush skips ``labels()``.

        Bounded like the series themselves: every label value went through a bounded set.
        """
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)  # type: ignore[attr-defined]
        return child

    def _inc3(self, labels: tuple[str, ...], energy: float, co2e: float, water: float) -> None:
        """Lock held. Operational = total - embodied can round a hair below zero; counters only
        go up, so such dust is dropped."""
        m = self.metrics
        if energy > 0.0:
            self._child(m.energy, labels).inc(energy)
        if co2e > 0.0:
            self._child(m.co2e, labels).inc(co2e)
        if water > 0.0:
            self._child(m.water, labels).inc(water)
