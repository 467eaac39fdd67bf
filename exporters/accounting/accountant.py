"""The accounting core: span attributes in, footprint counters out.

Both paths call :meth:`Accountant.account` once per span: the in-process span processor/exporter
(``exporter.py``) and ``otel-downstream serve`` (decoded OTLP). ``weight`` is the span's sampling
adjusted count, so a span that stands for ten requests adds ten requests' footprint.

Why it is fast (>= 100k spans/s per core): the engine's HTTP figures are linear in the request and
response bytes for a given (country, device class), so each such pair is probed once and then a
span only adds its weight and byte counts into a per-label-set cell (one dict lookup, a few float
additions, no engine call, no Prometheus call; that path is ``accounting/http.py``, the cells are
in ``accounting/cells.py``; model calls are priced in ``accounting/gen_ai.py``, host samples in
``accounting/host.py``). Cells and every other sum wait in ``accounting/pending_sums.py`` until the
registry is collected (a scrape), ``flush()``, or, in multiprocess mode, the end of the span
(values there live in files other processes read). A pair whose probes are not linear, and every
span with engagement seconds, an LLM call or a host sample, goes to the engine per span.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Hashable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry

from otel_downstream.agent.attributes import DOWNSTREAM_FUNCTIONAL_UNIT
from otel_downstream.agent.environment import OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY
from otel_downstream.agent.faults import report_fault
from otel_downstream.exporters.accounting.gen_ai import GenAIAccounting
from otel_downstream.exporters.accounting.host import HostAccounting
from otel_downstream.exporters.accounting.http import HttpAccounting
from otel_downstream.exporters.accounting.labels import OTHER, BoundedLabel
from otel_downstream.exporters.accounting.pending_sums import PendingSums
from otel_downstream.exporters.accounting.settings import (
    DEFAULT_LABEL_SET_LIMIT,
    DEFAULT_MODEL_LIMIT,
    DEFAULT_PROVIDER_LIMIT,
    DEFAULT_SERVICE_LIMIT,
    AccountingSettings,
)
from otel_downstream.exporters.accounting.shared import Shared
from otel_downstream.exporters.accounting.span_inputs import (
    AttributeValue,
    SpanRejected,
    classify,
    host_input,
    http_input,
    ignored_reason,
)
from otel_downstream.exporters.engine.engine import Engine
from otel_downstream.exporters.footprint import InputError
from otel_downstream.exporters.metrics import families as M

__all__ = [
    "DEFAULT_LABEL_SET_LIMIT",
    "DEFAULT_MODEL_LIMIT",
    "DEFAULT_PROVIDER_LIMIT",
    "DEFAULT_SERVICE_LIMIT",
    "Accountant",
    "AccountingSettings",
]

_logger = logging.getLogger("otel_downstream")

FUNCTIONAL_UNIT_LIMIT: Final = 16
"""Distinct functional-unit names (user, order, ...) before the rest become ``other``."""

INTERNAL_REQUEST: Final = "internal_request"
"""``downstream_spans_accounted_total`` type of a SERVER span of a service not in the edge list."""


class Accountant:
    """Turns span attributes into footprint metrics; thread-safe; never raises from ``account``."""

    def __init__(
        self,
        engine: Engine | None = None,
        metrics: M.FootprintMetrics | None = None,
        *,
        registry: CollectorRegistry | None = None,
        settings: AccountingSettings | None = None,
    ) -> None:
        """Without ``settings``, :meth:`AccountingSettings.resolve` reads them from the environment
        (a bad value raises ``ValueError``), so the in-process path and ``serve`` read the same
        variables; without ``engine``, the engine reads its own (``Engine()``)."""
        if settings is None:
            settings = AccountingSettings.resolve()
        self.settings = settings
        self._max_weight = settings.max_weight
        self._warned_weight = False
        self.engine = engine if engine is not None else Engine()
        if metrics is None:
            build = {"version": _package_version(), **self.engine.versions()}
            metrics = M.FootprintMetrics(registry, build_info=build)
        self.metrics = metrics
        self._services = BoundedLabel("service_name", settings.service_limit)
        self._units = BoundedLabel("unit", FUNCTIONAL_UNIT_LIMIT)
        limit = settings.label_set_limit
        self._edge = settings.edge_services
        self._sums = PendingSums(metrics, hold_seconds=settings.new_series_hold_seconds)
        shared = Shared(self.engine, metrics, self._sums, self._label, self._services)
        self._gen_ai = GenAIAccounting(
            shared,
            allowed_models=settings.allowed_models,
            model_limit=settings.model_limit,
            provider_limit=settings.provider_limit,
            label_set_limit=limit,
        )
        self._http = HttpAccounting(shared, label_set_limit=limit)
        self._host = HostAccounting(shared, label_set_limit=limit)
        self._write_through = metrics.multiprocess
        self._rejection = threading.local()
        metrics.add_pre_collect(self.flush)

    # --- the one entry point -------------------------------------------------------------------

    def account(
        self,
        attributes: Mapping[str, AttributeValue],
        *,
        service_name: str,
        weight: float = 1.0,
        name: str = "",
        kind: str = "",
        duration_s: float | None = None,
        span_key: Hashable | None = None,
        parent_key: Hashable | None = None,
        ignored: dict[str, float] | None = None,
    ) -> bool:
        """Account one span; ``True`` if it added to the footprint, ``False`` if not ours/rejected.

        ``weight`` is the sampling adjusted count (1 when every span is seen); ``duration_s`` the
        span's duration, used as the LLM call latency. ``span_key``/``parent_key`` identify the
        span and its parent, so that a model call recorded by nested spans counts once (see
        :mod:`.nested_calls`); without them every model-call span counts.

        A span the footprint does not cover is counted in ``downstream_spans_ignored_total`` by
        reason; with ``ignored`` (a caller's dict, ``serve``'s per export) its weight is added
        there instead, for one :meth:`count_ignored` per batch rather than a locked add per span.
        """
        try:
            span_type = classify(attributes, name, kind)
            if span_type is None:  # not ours: not an error, but counted by why (never silent)
                reason = ignored_reason(attributes, kind)
                amount = weight if weight == 1.0 else self._counted(weight)
                if ignored is None:
                    self._sums.bump(self.metrics.spans_ignored, (reason,), amount)
                else:
                    ignored[reason] = ignored.get(reason, 0.0) + amount
                return False
            if not 0.0 < weight < math.inf:
                raise SpanRejected("invalid_weight", "weight", weight, "an adjusted count > 0")
            if weight > self._max_weight:
                weight = self._cap_weight(weight)
            # The service label is admitted only after the span passed validation, so rejected
            # spans cannot use up the service_name slots.
            raw = service_name or "unknown_service"
            if span_type == "http":
                if self._edge and raw not in self._edge:  # an internal hop, not a customer's
                    self._sums.bump(self.metrics.spans_accounted, (INTERNAL_REQUEST,), weight)
                    if attributes.get(DOWNSTREAM_FUNCTIONAL_UNIT) is not None:  # still an order
                        self._count_unit(attributes, self._label(self._services, raw), weight)
                    return True
                service = self._http.account(http_input(attributes), raw, weight)
            elif span_type == "gen_ai":
                counted = self._gen_ai.account(
                    attributes,
                    raw,
                    weight,
                    duration_s=duration_s,
                    span_key=span_key,
                    parent_key=parent_key,
                )
                if counted is None:  # it only encloses a call counted inside it
                    return True
                service = counted
            elif span_type == "host":
                service = self._host.account(host_input(attributes), raw, weight)
            else:
                record = http_input(attributes, engagement_only=True)
                service = self._http.account(record, raw, weight)
            self._count_unit(attributes, service, weight)
            return True
        except InputError as exc:  # SpanRejected included
            self._reject(exc, self._counted(weight))
            return False
        except Exception as exc:  # the boundary: a bug here must not reach the host app
            report_fault("exporters.accounting", exc)
            self._rejection.reason = "internal_error"
            self._sums.bump(self.metrics.spans_rejected, ("internal_error",), self._counted(weight))
            return False
        finally:
            if self._write_through:  # another process reads the values: no buffering
                self.flush()

    def _counted(self, weight: float) -> float:
        """A rejection's weight fit for a counter: unusable weights count once, and a claim above
        the sampling floor no more than the floor allows (rejections are counters too)."""
        return min(weight, self._max_weight) if 0.0 < weight < math.inf else 1.0

    def _cap_weight(self, claimed: float) -> float:
        """A weight above the sampling floor is a claim we do not believe: cap it, count it, and
        say once what to set if the claim was an honest sampler below the configured floor."""
        self._sums.bump(self.metrics.unknown, ("sampling_weight",), 1.0)
        if not self._warned_weight:
            self._warned_weight = True
            _logger.warning(
                "otel-downstream: a span claims a sampling weight of %.6g (tracestate ot=th), "
                "above the trusted %.6g; counted at %.6g. If your own samplers go below "
                "probability %.6g, set %s",
                claimed,
                self._max_weight,
                self._max_weight,
                1.0 / self._max_weight,
                OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY,
            )
        return self._max_weight

    def reject(self, reason: str, weight: float = 1.0) -> None:
        """Count a span that could not be read at all (``serve``: a malformed span-level field)."""
        try:
            self._sums.bump(self.metrics.spans_rejected, (reason[:64],), self._counted(weight))
            if self._write_through:
                self.flush()
        except Exception as exc:  # the boundary, as in account()
            report_fault("exporters.accounting", exc)

    def flush(self, *, release: bool = False) -> None:
        """Write everything accounted so far into the Prometheus metrics.

        In process, a series this creates shows 0 until a scrape has read it so (its amount is
        held, then added by a later flush; docs/metrics.md, "Totals over time"; in multiprocess
        mode everything is written at once and the scrape shows a new series at 0 instead).
        ``release=True`` (shutdown) adds every held amount now: the process will not be scraped
        again."""
        try:
            with self._sums.lock:
                self._sums.flush_locked(release=release)
            if self._write_through:  # no collection runs in this process to sync the faults
                self.metrics.sync_faults()
        except Exception as exc:  # runs inside a scrape or shutdown: never raise into either
            report_fault("exporters.accounting.flush", exc)

    def _count_unit(
        self, attributes: Mapping[str, AttributeValue], service: str, weight: float
    ) -> None:
        """Count the SCI functional unit (``user``, ``order``) an accounted span completes."""
        unit = attributes.get(DOWNSTREAM_FUNCTIONAL_UNIT)
        if unit is None:
            return
        if not isinstance(unit, str) or not unit.strip():
            self._sums.bump(self.metrics.unknown, ("functional_unit",), weight)
            return
        label = self._label(self._units, unit.strip())
        self._sums.bump(self.metrics.functional_units, (service, label), weight)

    # --- helpers ---------------------------------------------------------------------------------

    def _label(self, bounded: BoundedLabel, value: str) -> str:
        label = bounded.admit(value)
        if label is OTHER and value != OTHER:
            self._sums.bump(self.metrics.label_overflow, (bounded.name,), 1.0)
        return label

    def _reject(self, exc: InputError, weight: float) -> None:
        if isinstance(exc, SpanRejected):
            reason = exc.reason
        else:
            reason = f"invalid_{exc.field}"
            if exc.field in {"model", "provider", "zone"}:
                self._sums.bump(self.metrics.unknown, (exc.field,), weight)
        self._rejection.reason = reason[:64]
        self._sums.bump(self.metrics.spans_rejected, (reason[:64],), weight)
        _logger.debug("otel-downstream: span not accounted: %s", exc)

    def count_ignored(self, ignored: Mapping[str, float]) -> None:
        """Add what :meth:`account` gathered in its ``ignored`` dict (reason -> weight)."""
        try:
            with self._sums.lock:
                for reason, amount in ignored.items():
                    self._sums.count(self.metrics.spans_ignored, (reason,), amount)
            if self._write_through:
                self.flush()
        except Exception as exc:  # the boundary, as in account()
            report_fault("exporters.accounting", exc)

    def take_rejection(self) -> str:
        """Right after :meth:`account` returned ``False`` on this thread: the ``reason`` it
        rejected the span for, or ``""`` when the span was ignored (not a footprint span). Read
        once (it is cleared); ``serve`` names the reasons in its partial-success answer."""
        local = self._rejection
        reason: str = getattr(local, "reason", "")
        if reason:
            local.reason = ""
        return reason


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("otel-downstream")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"
