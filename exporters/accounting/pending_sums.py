"""What the accounting core has added up since the last flush, and writing it into Prometheus.

Spans add into plain floats here instead of calling prometheus-client per span: a ``labels()`` call
and an ``inc()`` per series per span would cost more than all the footprint maths. ``flush()``
writes the sums into the counters and histograms when the registry is collected, on shutdown, and
after every span in multiprocess mode. Every method named "lock held" expects the caller to hold
:attr:`PendingSums.lock`; the lock guards every dict and cell here.

In process, a series the flush creates is created at 0 and its amount held until a scrape has
shown it at 0 (``new_series.py``), so Prometheus' ``increase()`` counts its first increment; in
multiprocess mode nothing is held (the scrape view shows a new series at 0 instead). Every amount is
checked on its way to a counter: a sum that is not finite, or negative beyond rounding dust, is
dropped and counted in ``downstream_instrumentation_errors_total{component=
"exporters.accounting.invalid_amount"}`` (inputs are validated: such a sum is a bug or an
overflow); a counter never takes NaN, an infinity or a decrease.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import math
import os
import threading
import time
import weakref
from typing import Any, Final

from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.accounting.cells import HttpCell
from otel_downstream.exporters.accounting.new_series import Held, NewSeries
from otel_downstream.exporters.footprint import Footprint
from otel_downstream.exporters.metrics import families as M

_BUCKETS: Final = M.CO2E_BUCKETS_G
_N_BUCKETS: Final = M.CO2E_N_BUCKETS
_INF: Final = math.inf

INVALID_AMOUNT: Final = "exporters.accounting.invalid_amount"
"""``downstream_instrumentation_errors_total`` component of a pending sum that could not be
written: NaN, an infinity, or negative beyond :data:`DUST` (one per label set and flush). Not a
span rejection: its spans were accounted, and each span ends in exactly one outcome counter."""

DUST: Final = 1e-6
"""Operational = total - embodied can round a hair below zero: a negative sum no larger than this
is rounding, dropped silently; a larger one is an invalid amount."""

_logger = logging.getLogger("otel_downstream")
_instances: weakref.WeakSet[PendingSums] = weakref.WeakSet()


class PendingSums:
    """Sums per label set since the last flush: footprints, plain counters, histograms, HTTP cells."""

    __slots__ = (
        "__weakref__",
        "_children",
        "_counts",
        "_held",
        "_hists",
        "_invalid",
        "_new",
        "_pending",
        "cells",
        "dirty",
        "lock",
        "metrics",
    )

    def __init__(self, metrics: M.FootprintMetrics, *, hold_seconds: float = 0.0) -> None:
        """``hold_seconds``: how long a new series stays at 0 at least (see ``new_series.py``)."""
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
        """(metric, labels) -> its child, or the :class:`Held` standing in for a new one."""
        self._held: dict[tuple[object, tuple[str, ...]], Held] = {}
        self._new = NewSeries(metrics, hold_seconds)
        self._invalid = 0
        _instances.add(self)

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

    def flush_locked(self, *, release: bool = False) -> None:
        """Lock held. Write everything pending into the Prometheus metrics and start again.

        New series are created at 0 and held; held series whose scrape came are released, and
        with ``release`` every one is (shutdown: nothing may stay behind)."""
        m, child, write = self.metrics, self._child, self._write
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
                    write(m.unknown, (kind,), priced)
            write(m.requests, cell.labels, cell.requests)
            write(m.spans_accounted, ("http",), cell.requests)
            if cell.request_bytes:
                write(m.transfer_bytes, (service, M.DIRECTION_REQUEST), cell.request_bytes)
            if cell.response_bytes:
                write(m.transfer_bytes, (service, M.DIRECTION_RESPONSE), cell.response_bytes)
            cell.requests = cell.request_bytes = cell.response_bytes = 0.0
            cell.linear_requests = cell.linear_request_bytes = cell.linear_response_bytes = 0.0
        self.dirty.clear()
        for labels, (energy, co2e, water) in self._pending.items():
            self._inc3(labels, energy, co2e, water)
        self._pending.clear()
        for (counter, labels), amount in self._counts.items():
            write(counter, labels, amount)
        self._counts.clear()
        for (service, kind), hist in self._hists.items():
            if hist[_N_BUCKETS] or any(hist[:_N_BUCKETS]):
                if all(0.0 <= x < _INF for x in hist):
                    target = child(m.request_co2e, (service, kind))
                    if type(target) is Held:
                        target.observe(hist)
                    else:
                        M.observe_weighted(target, hist)
                else:
                    self._invalid += 1
                hist[:] = [0.0] * (_N_BUCKETS + 1)
        if self._invalid:
            self._count_invalid()
        if self._held:
            self._release_locked(everything=release)

    def held(self) -> int:
        """Lock held. How many new series are still shown at 0 (tests, diagnostics)."""
        return len(self._held)

    def _child(self, metric: object, labels: tuple[str, ...]) -> Any:
        """Lock held. The metric's child for ``labels``, kept so a flush skips ``labels()``.

        A series created while a scrape view serves the registry is created at 0 and a
        :class:`Held` stands in for it. Bounded like the series themselves: every label value
        went through a bounded set.
        """
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)  # type: ignore[attr-defined]
            if self._new.holding():
                child = self._held[key] = Held(child, self._new.since())
            self._children[key] = child
        return child

    def _write(self, metric: object, labels: tuple[str, ...], amount: float) -> None:
        """Lock held. Add ``amount`` to a counter series, if it is an amount a counter can take."""
        if 0.0 < amount < _INF:
            self._child(metric, labels).inc(amount)
        elif not -DUST <= amount <= 0.0:  # NaN (fails every comparison), an infinity, a decrease
            self._invalid += 1

    def _inc3(self, labels: tuple[str, ...], energy: float, co2e: float, water: float) -> None:
        """Lock held. :meth:`_write` for the three footprint counters."""
        m, write = self.metrics, self._write
        write(m.energy, labels, energy)
        write(m.co2e, labels, co2e)
        write(m.water, labels, water)

    def _count_invalid(self) -> None:
        """Lock held. Count the dropped sums as faults (logged the first time)."""
        count, self._invalid = self._invalid, 0
        for _ in range(count):
            report_fault(INVALID_AMOUNT, ValueError("a footprint sum not finite or negative"))

    def _release_locked(self, *, everything: bool) -> None:
        """Lock held. Add the held amounts of every series a completed scrape showed at 0."""
        if everything:
            ready = list(self._held)
        else:
            cutoff = self._new.cutoff(time.monotonic_ns())
            ready = [key for key, held in self._held.items() if held.since <= cutoff]
        for key in ready:
            held = self._held.pop(key)
            self._children[key] = held.child
            held.release()


def _forget_in_child() -> None:
    """After a fork, in the child: a fresh lock, in case another thread held it across the fork."""
    for sums in list(_instances):
        sums.lock = threading.Lock()


def _release_at_exit() -> None:
    """At interpreter exit, release everything held (the registry may still be read by an exit
    hook). Never waits long on a lock."""
    for sums in list(_instances):
        if sums._held and sums.lock.acquire(timeout=1.0):
            try:
                sums._release_locked(everything=True)
            except Exception:  # exiting: nothing to report to
                _logger.debug("otel-downstream: release at exit failed", exc_info=True)
            finally:
                sums.lock.release()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(_release_at_exit)
