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
from collections.abc import Mapping
from typing import Final

from prometheus_client import CollectorRegistry

from otel_downstream.agent.attributes import DOWNSTREAM_FUNCTIONAL_UNIT
from otel_downstream.agent.faults import report_fault

from . import metrics as M
from .engine import Engine, EngineConfig
from .footprint import Footprint, InputError
from .http_cells import HttpCell, engine_country, http_unknown_kinds, probe_cell, unknown_kinds
from .labels import NOT_APPLICABLE, OTHER, BoundedLabel, normalize_country, normalize_device_class
from .pending_sums import PendingSums
from .span_inputs import (
    AttributeValue,
    GenAIInput,
    HostInput,
    HttpInput,
    SpanRejected,
    classify,
    gen_ai_input,
    host_input,
    http_input,
)

_logger = logging.getLogger("otel_downstream")

DEFAULT_MODEL_LIMIT: Final = 200
DEFAULT_PROVIDER_LIMIT: Final = 32
DEFAULT_SERVICE_LIMIT: Final = 100
FUNCTIONAL_UNIT_LIMIT: Final = 16
"""Distinct functional-unit names (user, order, ...) before the rest become ``other``."""

_NA: Final = NOT_APPLICABLE
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
        allowed_models: tuple[str, ...] = (),
        model_limit: int = DEFAULT_MODEL_LIMIT,
        provider_limit: int = DEFAULT_PROVIDER_LIMIT,
        service_limit: int = DEFAULT_SERVICE_LIMIT,
    ) -> None:
        self.engine = engine if engine is not None else Engine(engine_config)
        if metrics is None:
            build = {"version": _package_version(), **self.engine.versions()}
            metrics = M.FootprintMetrics(registry, build_info=build)
        self.metrics = metrics
        self._models = BoundedLabel("gen_ai_request_model", model_limit, allowed_models)
        self._providers = BoundedLabel("gen_ai_provider_name", provider_limit)
        self._services = BoundedLabel("service_name", service_limit)
        self._units = BoundedLabel("unit", FUNCTIONAL_UNIT_LIMIT)
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
    ) -> bool:
        """Account one span; ``True`` if it added to the footprint, ``False`` if not ours/rejected.

        ``weight`` is the sampling adjusted count (1 when every span is seen); ``duration_s`` the
        span's duration, used as the LLM call latency.
        """
        try:
            span_type = classify(attributes, name, kind)
            if span_type is None:
                return False
            if not 0.0 < weight < math.inf:
                raise SpanRejected("invalid_weight", "weight", weight, "an adjusted count > 0")
            service = self._label(self._services, service_name or "unknown_service")
            if span_type == "http":
                self._http(http_input(attributes), service, weight)
            elif span_type == "gen_ai":
                self._gen_ai(gen_ai_input(attributes, duration_s), service, weight)
            elif span_type == "host":
                self._host(host_input(attributes), service, weight)
            else:
                self._http(http_input(attributes, engagement_only=True), service, weight)
            unit = attributes.get(DOWNSTREAM_FUNCTIONAL_UNIT)
            if unit is not None:
                self._functional_unit(unit, service, weight)
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

    def _http(self, record: HttpInput, service: str, weight: float) -> None:
        sums = self._sums
        country, country_ok = normalize_country(record.country)
        device, device_ok = normalize_device_class(record.device_class)
        if not country_ok:
            sums.bump(self.metrics.unknown, ("invalid_country",), weight)
        if not device_ok:
            sums.bump(self.metrics.unknown, ("device_class",), weight)
        if not record.response_size_known:
            sums.bump(self.metrics.unknown, ("response_size",), weight)
        cell = None
        if record.counts_request:
            key = (service, country, device)
            cell = sums.cells.get(key)
            if cell is None:
                cell = self._new_cell(key)
            if record.engagement_s is None and cell.linear:
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
                return
        footprints = self.engine.http_request(
            request_bytes=record.request_bytes,
            response_bytes=record.response_bytes,
            country=engine_country(country),
            device_class=device,
            engagement_s=record.engagement_s,
        )
        with sums.lock:
            for fp in footprints:
                sums.add_footprint(fp, (service, fp.segment), (country, device, _NA, _NA), weight)
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

    def _gen_ai(self, record: GenAIInput, service: str, weight: float) -> None:
        def call(zone: str | None) -> Footprint:
            return self.engine.llm_call(
                provider=record.provider,
                model=record.model,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                latency_s=record.latency_s,
                zone=zone,
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
        provider = self._label(self._providers, record.provider)
        model = self._label(self._models, record.model)
        labels = (service, provider, model)
        m = self.metrics
        with sums.lock:
            sums.add_footprint(fp, (service, fp.segment), (_NA, _NA, provider, model), weight)
            for kind in unknown_kinds((fp,)):
                sums.count(m.unknown, (kind,), weight)
            sums.count(m.gen_ai_calls, labels, weight)
            sums.count(m.tokens, (*labels, M.TOKEN_INPUT), weight * record.input_tokens)
            sums.count(m.tokens, (*labels, M.TOKEN_OUTPUT), weight * record.output_tokens)
            sums.count(m.spans_accounted, ("gen_ai",), weight)
            sums.observe(service, "gen_ai", fp.total.co2e_g, weight)

    def _host(self, record: HostInput, service: str, weight: float) -> None:
        sums, m = self._sums, self.metrics
        country, country_ok = normalize_country(record.country)
        if not country_ok:
            sums.bump(m.unknown, ("invalid_country",), weight)
        fp = self.engine.host_interval(
            energy_j=record.energy_j,
            country=engine_country(country),
            pue=record.pue,
            share=record.share,
            embodied_co2e_g=record.embodied_co2e_g,
        )
        with sums.lock:
            sums.add_footprint(fp, (service, fp.segment), (country, _NA, _NA, _NA), weight)
            for kind in unknown_kinds((fp,)):
                sums.count(m.unknown, (kind,), weight)
            sums.count(m.host_samples, (service, record.method or "unknown"), weight)
            sums.count(m.spans_accounted, ("host",), weight)

    def _functional_unit(self, unit: object, service: str, weight: float) -> None:
        """Count the SCI functional unit (``user``, ``order``) an accounted span completes."""
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

    def _new_cell(self, key: tuple[str, str, str]) -> HttpCell:
        """Probe the engine once for this (service, country, device class)."""
        sums = self._sums
        with sums.lock:  # flush iterates the histograms
            hist = sums.hist(key[0], "http")
        cell = probe_cell(self.engine, key, hist)
        with sums.lock:
            return sums.cells.setdefault(key, cell)


def _weight_or_one(weight: float) -> float:
    """A weight fit for a counter (rejections of a span with an unusable weight count once)."""
    return weight if 0.0 < weight < math.inf else 1.0


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("otel-downstream")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"
