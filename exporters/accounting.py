"""The accounting core: span attributes in, footprint counters out.

Both paths call :meth:`Accountant.account` once per span: the in-process span processor/exporter
(``exporter.py``) and ``otel-downstream serve`` (decoded OTLP). ``weight`` is the span's sampling
adjusted count, so a span that stands for ten requests adds ten requests' footprint.

Why it is fast (>= 100k spans/s per core): the engine's HTTP figures are linear in the request and
response bytes for a given (country, device class), so each such pair is probed once and then a
span only adds its weight and byte counts into a per-label-set cell (one dict lookup, a few float
additions, no engine call, no Prometheus call; the cells are in ``http_cells.py``). Cells and every
other sum wait in ``pending_sums.py`` until the registry is collected (a scrape), ``flush()``, or,
in multiprocess mode, the end of the span (values there live in files other processes read). A
pair whose probes are not linear, and every span with engagement seconds, an LLM call or a host
sample, goes to the engine per span.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry

from otel_downstream.agent.attributes import DOWNSTREAM_FUNCTIONAL_UNIT
from otel_downstream.agent.faults import report_fault

from . import metrics as M
from .accounting_settings import DEFAULT_LABEL_SET_LIMIT, DEFAULT_MODEL_LIMIT, AccountingSettings
from .engine import Engine, EngineConfig
from .footprint import Footprint, InputError
from .http_cells import HttpCell, engine_country, http_unknown_kinds, probe_cell, unknown_kinds
from .labels import (
    FOLDED_DEVICE_CLASS,
    NOT_APPLICABLE,
    OTHER,
    BoundedLabel,
    LabelSets,
    normalize_country,
    normalize_device_class,
    normalize_host_method,
)
from .llm_registry import registry as llm_registry
from .nested_calls import NestedCalls, same_call
from .pending_sums import PendingSums
from .span_inputs import (
    AttributeValue,
    GenAIInput,
    HostInput,
    HttpInput,
    SpanRejected,
    call_models,
    classify,
    gen_ai_input,
    has_usage,
    host_input,
    http_input,
)

__all__ = ["DEFAULT_LABEL_SET_LIMIT", "DEFAULT_MODEL_LIMIT", "Accountant"]

_logger = logging.getLogger("otel_downstream")

DEFAULT_PROVIDER_LIMIT: Final = 32
DEFAULT_SERVICE_LIMIT: Final = 100
FUNCTIONAL_UNIT_LIMIT: Final = 16
"""Distinct functional-unit names (user, order, ...) before the rest become ``other``."""

_NA: Final = NOT_APPLICABLE
_ZZ: Final = "ZZ"
GEN_AI_ENCLOSING: Final = "gen_ai_enclosing"
"""``downstream_spans_accounted_total`` type of a model-call span around one already counted."""
INTERNAL_REQUEST: Final = "internal_request"
"""``downstream_spans_accounted_total`` type of a SERVER span of a service not in the edge list."""
_BUCKETS: Final = M.CO2E_BUCKETS_G
_N_BUCKETS: Final = M.CO2E_N_BUCKETS


class Accountant:
    """Turns span attributes into footprint metrics; thread-safe; never raises from ``account``."""

    def __init__(
        self,
        engine: Engine | None = None,
        metrics: M.FootprintMetrics | None = None,
        *,
        registry: CollectorRegistry | None = None,
        engine_config: EngineConfig | None = None,
        allowed_models: Iterable[str] | None = None,
        model_limit: int | None = None,
        provider_limit: int = DEFAULT_PROVIDER_LIMIT,
        service_limit: int = DEFAULT_SERVICE_LIMIT,
        label_set_limit: int | None = None,
        edge_services: Iterable[str] | None = None,
    ) -> None:
        """``None`` settings come from the environment (``accounting_settings.py``), so the
        in-process path and ``serve`` read the same variables; a bad value raises ``ValueError``."""
        settings = AccountingSettings.resolve(
            allowed_models=allowed_models,
            model_limit=model_limit,
            label_set_limit=label_set_limit,
            edge_services=edge_services,
        )
        self.engine = engine if engine is not None else Engine(engine_config)
        if metrics is None:
            build = {"version": _package_version(), **self.engine.versions()}
            metrics = M.FootprintMetrics(registry, build_info=build)
        self.metrics = metrics
        # Models the engine knows never fold into ``other`` because of unknown fine-tune ids.
        known = (*llm_registry().by_name, *settings.allowed_models)
        self._models = BoundedLabel("gen_ai_request_model", settings.model_limit, known)
        self._providers = BoundedLabel("gen_ai_provider_name", provider_limit)
        self._services = BoundedLabel("service_name", service_limit)
        self._units = BoundedLabel("unit", FUNCTIONAL_UNIT_LIMIT)
        limit = settings.label_set_limit
        self._request_sets = LabelSets("request_labels", limit)
        self._gen_ai_sets = LabelSets("gen_ai_labels", limit)
        self._host_sets = LabelSets("host_labels", limit)
        self._edge = settings.edge_services
        self._nested = NestedCalls()
        self._sums = PendingSums(metrics)
        self._write_through = metrics.multiprocess
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
    ) -> bool:
        """Account one span; ``True`` if it added to the footprint, ``False`` if not ours/rejected.

        ``weight`` is the sampling adjusted count (1 when every span is seen); ``duration_s`` the
        span's duration, used as the LLM call latency. ``span_key``/``parent_key`` identify the
        span and its parent, so that a model call recorded by nested spans counts once (see
        :mod:`.nested_calls`); without them every model-call span counts.
        """
        try:
            span_type = classify(attributes, name, kind)
            if span_type is None:
                return False
            if not 0.0 < weight < math.inf:
                raise SpanRejected("invalid_weight", "weight", weight, "an adjusted count > 0")
            # The service label is admitted only after the span passed validation, so rejected
            # spans cannot use up the service_name slots.
            raw = service_name or "unknown_service"
            if span_type == "http":
                if self._edge and raw not in self._edge:  # an internal hop, not a customer's
                    self._sums.bump(self.metrics.spans_accounted, (INTERNAL_REQUEST,), weight)
                    if attributes.get(DOWNSTREAM_FUNCTIONAL_UNIT) is not None:  # still an order
                        self._count_unit(attributes, self._label(self._services, raw), weight)
                    return True
                service = self._http(http_input(attributes), raw, weight)
            elif span_type == "gen_ai":
                models = call_models(attributes)
                inner = self._nested.counted_inside(span_key)
                if inner is not None and (not has_usage(attributes) or same_call(models, inner)):
                    # a span inside it counted this very call: this one only encloses it
                    self._sums.bump(self.metrics.spans_accounted, (GEN_AI_ENCLOSING,), weight)
                    self._nested.note(parent_key, inner | models)  # and every span around it
                    return True
                service = self._gen_ai(gen_ai_input(attributes, duration_s), raw, weight)
                self._nested.note(parent_key, models)
            elif span_type == "host":
                service = self._host(host_input(attributes), raw, weight)
            else:
                service = self._http(http_input(attributes, engagement_only=True), raw, weight)
            self._count_unit(attributes, service, weight)
            return True
        except InputError as exc:  # SpanRejected included
            self._reject(exc, _weight_or_one(weight))
            return False
        except Exception as exc:  # the boundary: a bug here must not reach the host app
            report_fault("exporters.accounting", exc)
            self.metrics.spans_rejected.labels("internal_error").inc(_weight_or_one(weight))
            return False
        finally:
            if self._write_through:  # another process reads the values: no buffering
                self.flush()

    def reject(self, reason: str, weight: float = 1.0) -> None:
        """Count a span that could not be read at all (``serve``: a malformed span-level field)."""
        try:
            self.metrics.spans_rejected.labels(reason[:64]).inc(_weight_or_one(weight))
            if self._write_through:
                self.flush()
        except Exception as exc:  # the boundary, as in account()
            report_fault("exporters.accounting", exc)

    def flush(self) -> None:
        """Write everything accounted so far into the Prometheus metrics."""
        try:
            with self._sums.lock:
                self._sums.flush_locked()
            if self._write_through:  # no collection runs in this process to sync the faults
                self.metrics.sync_faults()
        except Exception as exc:  # runs inside a scrape or shutdown: never raise into either
            report_fault("exporters.accounting.flush", exc)

    # --- per span type -------------------------------------------------------------------------

    def _http(self, record: HttpInput, service_name: str, weight: float) -> str:
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
        if not record.counts_request:
            cell = None  # a beacon adds footprint under the cell's labels, not a request
        elif record.engagement_s is None and cell.linear:
            req, resp = record.request_bytes, record.response_bytes
            co2 = cell.co2_a + cell.co2_b * req + cell.co2_c * resp
            with sums.lock:
                if cell.n == 0.0:
                    sums.dirty.append(cell)
                cell.n += weight
                cell.req += weight * req
                cell.resp += weight * resp
                cell.ln += weight
                cell.lreq += weight * req
                cell.lresp += weight * resp
                hist = cell.hist
                hist[bisect.bisect_left(_BUCKETS, co2)] += weight
                hist[_N_BUCKETS] += weight * co2
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
                if cell.n == 0.0:
                    sums.dirty.append(cell)
                cell.n += weight
                cell.req += weight * record.request_bytes
                cell.resp += weight * record.response_bytes
                sums.observe(service, "http", sum(fp.total.co2e_g for fp in footprints), weight)
            else:
                sums.count(self.metrics.spans_accounted, ("engagement",), weight)
        return service

    def _gen_ai(self, record: GenAIInput, service_name: str, weight: float) -> str:
        def call(zone: str | None) -> Footprint:
            return self.engine.llm_call(
                provider=record.provider,
                model=record.model,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                latency_s=record.latency_s,
                zone=zone,
                operation=record.operation,
            )

        sums = self._sums
        try:
            fp = call(record.zone)
        except InputError as exc:
            if exc.field != "zone" or record.zone is None:
                raise
            # An unusable zone attribute: the provider's own zone stands in, counted.
            sums.bump(self.metrics.unknown, ("invalid_zone",), weight)
            fp = call(None)
        service = self._label(self._services, service_name)
        provider = self._label(self._providers, record.provider)
        model = self._label(self._models, record.model)
        labels = (service, provider, model)
        m = self.metrics
        if not self._gen_ai_sets.admit(labels):  # the engine priced the real model already
            sums.bump(m.label_overflow, (self._gen_ai_sets.name,), 1.0)
            provider, model = (
                (provider, OTHER)
                if (service, provider, OTHER) in self._gen_ai_sets
                else (OTHER, OTHER)
            )
            labels = (service, provider, model)
        with sums.lock:
            sums.add_footprint(fp, (service, fp.segment), (_NA, _NA, provider, model), weight)
            for kind in unknown_kinds((fp,)):
                sums.count(m.unknown, (kind,), weight)
            sums.count(m.gen_ai_calls, labels, weight)
            sums.count(m.tokens, (*labels, M.TOKEN_INPUT), weight * record.input_tokens)
            sums.count(m.tokens, (*labels, M.TOKEN_OUTPUT), weight * record.output_tokens)
            sums.count(m.spans_accounted, ("gen_ai",), weight)
            sums.observe(service, "gen_ai", fp.total.co2e_g, weight)
        return service

    def _host(self, record: HostInput, service_name: str, weight: float) -> str:
        sums, m = self._sums, self.metrics
        country, country_ok = normalize_country(record.country)
        method, method_ok = normalize_host_method(record.method)
        fp = self.engine.host_interval(
            energy_j=record.energy_j,
            country=engine_country(country),
            pue=record.pue,
            share=record.share,
            embodied_co2e_g=record.embodied_co2e_g,
        )
        service = self._label(self._services, service_name)
        label_country = country
        if not self._host_sets.admit((service, country)):
            label_country = _ZZ
            sums.bump(m.label_overflow, (self._host_sets.name,), 1.0)
        with sums.lock:
            if not country_ok:
                sums.count(m.unknown, ("invalid_country",), weight)
            if not method_ok:
                sums.count(m.unknown, ("host_method",), weight)
            sums.add_footprint(fp, (service, fp.segment), (label_country, _NA, _NA, _NA), weight)
            for kind in unknown_kinds((fp,)):
                sums.count(m.unknown, (kind,), weight)
            sums.count(m.host_samples, (service, method), weight)
            sums.count(m.spans_accounted, ("host",), weight)
        return service

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
                self.metrics.unknown.labels(exc.field).inc(weight)
        self.metrics.spans_rejected.labels(reason[:64]).inc(weight)
        _logger.debug("otel-downstream: span not accounted: %s", exc)

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
            hist = sums.hist(key[0], "http")
        cell = probe_cell(self.engine, key, hist) if admitted else HttpCell(label, hist)
        with sums.lock:
            return sums.cells.setdefault(label, cell)


def _weight_or_one(weight: float) -> float:
    """A weight fit for a counter (rejections of a span with an unusable weight count once)."""
    return weight if 0.0 < weight < math.inf else 1.0


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("otel-downstream")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"
