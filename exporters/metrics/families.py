"""Every Prometheus metric the project exports: names, label names, buckets, in one module.

Base units in the names (joules, grams, litres, bytes), counters end in ``_total``. A registry is
passed in (a fresh ``CollectorRegistry`` per test, per ``serve`` instance); the default registry is
the fallback. docs/metrics.md is the reader's reference for the same list.

Multi-process servers (gunicorn, uWSGI) use prometheus-client's multiprocess mode: when
``PROMETHEUS_MULTIPROC_DIR`` is set at construction, values live in per-process mmap files that any
worker's ``/metrics`` sums. prometheus-client picks its value class when it is imported, so
construction switches it on if the variable was set later than that (read at construction, not at
import).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from otel_downstream.agent.environment import prometheus_multiproc_dir
from otel_downstream.agent.faults import fault_counts

ENERGY: Final = "downstream_energy_joules_total"
CO2E: Final = "downstream_co2e_grams_total"
WATER: Final = "downstream_water_liters_total"
REQUESTS: Final = "downstream_requests_total"
GEN_AI_CALLS: Final = "downstream_gen_ai_calls_total"
HOST_SAMPLES: Final = "downstream_host_samples_total"
TRANSFER_BYTES: Final = "downstream_transfer_bytes_total"
GEN_AI_TOKENS: Final = "downstream_gen_ai_tokens_total"
REQUEST_CO2E: Final = "downstream_request_co2e_grams"
BUILD_INFO: Final = "downstream_build_info"
INSTRUMENTATION_ERRORS: Final = "downstream_instrumentation_errors_total"
SPANS_ACCOUNTED: Final = "downstream_spans_accounted_total"
SPANS_REJECTED: Final = "downstream_spans_rejected_total"
SPANS_IGNORED: Final = "downstream_spans_ignored_total"
UNKNOWN: Final = "downstream_unknown_total"
LABEL_OVERFLOW: Final = "downstream_label_overflow_total"
FUNCTIONAL_UNITS: Final = "downstream_functional_units_total"
METRICS_UNSERVED: Final = "downstream_metrics_unserved_total"

FOOTPRINT_LABELS: Final = (
    "service_name",
    "segment",
    "scope",
    "geo_country_iso_code",
    "device_class",
    "gen_ai_provider_name",
    "gen_ai_request_model",
)
"""Labels of the energy, CO₂e and water counters. ``scope`` is ``operational`` or ``embodied``;
embodied series appear only when the engine reports embodied carbon (off by default)."""

REQUEST_LABELS: Final = ("service_name", "geo_country_iso_code", "device_class")
GEN_AI_LABELS: Final = ("service_name", "gen_ai_provider_name", "gen_ai_request_model")

CO2E_BUCKETS_G: Final = (
    0.0001,
    0.0003,
    0.001,
    0.003,
    0.01,
    0.03,
    0.1,
    0.3,
    1.0,
    3.0,
    10.0,
)
"""Per-request CO₂e buckets, grams: a 10 kB API call is ~1e-4 g, a long LLM answer ~1 g."""
CO2E_N_BUCKETS: Final = len(CO2E_BUCKETS_G) + 1
"""Buckets including +Inf; a pending histogram is a list of these counts followed by the sum."""

SCOPE_OPERATIONAL: Final = "operational"
SCOPE_EMBODIED: Final = "embodied"
DIRECTION_REQUEST: Final = "request"
DIRECTION_RESPONSE: Final = "response"
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"


def _enable_multiprocess_values() -> None:
    """Switch prometheus-client to mmap-backed values if the variable appeared after its import."""
    path = prometheus_multiproc_dir()
    if path is None or getattr(values.ValueClass, "_multiprocess", False):
        return
    if not Path(path).is_dir():
        raise ValueError(f"PROMETHEUS_MULTIPROC_DIR={path!r}: expected an existing directory")
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class _PreCollect(Collector):
    """Runs hooks (flush buffered sums, sync fault counts) before the registry's metrics are read.

    Registered first, so a scrape or ``get_sample_value`` always sees everything accounted so far.
    """

    def __init__(self) -> None:
        self.hooks: list[Callable[[], None]] = []

    def describe(self) -> Iterable[object]:
        return ()

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        for hook in list(self.hooks):
            hook()
        return ()


class FootprintMetrics:
    """The metric objects in one registry; ``unregister()`` removes them again."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        build_info: Mapping[str, str] | None = None,
    ) -> None:
        _enable_multiprocess_values()
        self.registry = REGISTRY if registry is None else registry
        self.multiprocess = prometheus_multiproc_dir() is not None
        self._pre_collect = _PreCollect()
        self.registry.register(self._pre_collect)
        r = self.registry
        self.energy = Counter(ENERGY, "Downstream energy, joules.", FOOTPRINT_LABELS, registry=r)
        self.co2e = Counter(CO2E, "Downstream CO2e emissions, grams.", FOOTPRINT_LABELS, registry=r)
        self.water = Counter(
            WATER, "Downstream water consumption, litres.", FOOTPRINT_LABELS, registry=r
        )
        self.requests = Counter(
            REQUESTS, "Served HTTP requests accounted.", REQUEST_LABELS, registry=r
        )
        self.gen_ai_calls = Counter(GEN_AI_CALLS, "LLM calls accounted.", GEN_AI_LABELS, registry=r)
        self.host_samples = Counter(
            HOST_SAMPLES,
            "Host-sampler intervals accounted (customer-hosted infrastructure).",
            ("service_name", "method"),
            registry=r,
        )
        self.transfer_bytes = Counter(
            TRANSFER_BYTES,
            "Body bytes of served requests (request) and responses (response).",
            ("service_name", "direction"),
            registry=r,
        )
        self.tokens = Counter(
            GEN_AI_TOKENS,
            "LLM tokens accounted.",
            (*GEN_AI_LABELS, "gen_ai_token_type"),
            registry=r,
        )
        self.request_co2e = Histogram(
            REQUEST_CO2E,
            "CO2e of one served request (kind=http) or LLM call (kind=gen_ai), grams.",
            ("service_name", "kind"),
            buckets=CO2E_BUCKETS_G,
            registry=r,
        )
        self.instrumentation_errors = Counter(
            INSTRUMENTATION_ERRORS,
            "Faults caught inside otel-downstream (the host application never saw them).",
            ("component",),
            registry=r,
        )
        self.spans_accounted = Counter(
            SPANS_ACCOUNTED,
            "Spans turned into footprint figures, by type (weighted by sampling).",
            ("type",),
            registry=r,
        )
        self.spans_rejected = Counter(
            SPANS_REJECTED, "Spans that could not be accounted.", ("reason",), registry=r
        )
        self.spans_ignored = Counter(
            SPANS_IGNORED,
            "Spans received that the footprint does not cover (database calls, internal work, "
            "servers without an HTTP method), by reason; not errors (weighted by sampling).",
            ("reason",),
            registry=r,
        )
        self.unknown = Counter(
            UNKNOWN,
            "Inputs accounted with fallback figures: unknown country (world average), model, ...",
            ("kind",),
            registry=r,
        )
        self.label_overflow = Counter(
            LABEL_OVERFLOW,
            "Label values folded into 'other' to bound cardinality.",
            ("label",),
            registry=r,
        )
        self.functional_units = Counter(
            FUNCTIONAL_UNITS,
            "SCI functional units completed (span attribute downstream.functional_unit: a new "
            "user, an order), the denominators of per-user/per-order intensity.",
            ("service_name", "unit"),
            registry=r,
        )
        self.metrics_unserved = Counter(
            METRICS_UNSERVED,
            "Processes that found their figures could not reach /metrics: the port was in use "
            "(port_in_use) or held outside their worker group (port_outside_group); see the log.",
            ("reason",),
            registry=r,
        )
        info = dict(build_info or {})
        names = tuple(sorted(info))
        self.build_info = Gauge(
            BUILD_INFO,
            "Package, method and data versions; the value is always 1.",
            names,
            registry=r,
            multiprocess_mode="max",
        )
        if names:
            self.build_info.labels(*(info[n] for n in names)).set(1)
        else:
            self.build_info.set(1)
        # Faults before construction belong to an earlier exporter (or test), not to this one.
        self._faults_seen: dict[str, int] = fault_counts()
        self._faults_lock = threading.Lock()
        self.add_pre_collect(self.sync_faults)

    def add_pre_collect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` before every collection of this registry."""
        self._pre_collect.hooks.append(hook)

    def sync_faults(self) -> None:
        """Copy new ``agent.faults`` counts into the errors counter (works in multiprocess mode)."""
        with self._faults_lock:  # two scrapes at once must not add the same faults twice
            for component, count in fault_counts().items():
                seen = self._faults_seen.get(component, 0)
                if count < seen:  # counts were reset (tests): start again from zero
                    seen = 0
                if count > seen:
                    self.instrumentation_errors.labels(component).inc(count - seen)
                    self._faults_seen[component] = count

    def unregister(self) -> None:
        """Remove every collector this object registered (shutdown, tests on the default registry)."""
        # Every metric attribute, so a metric added in __init__ cannot be left registered.
        collectors = [
            value
            for value in vars(self).values()
            if isinstance(value, (MetricWrapperBase, _PreCollect))
        ]
        for collector in collectors:
            with contextlib.suppress(KeyError):
                self.registry.unregister(collector)


def observe_weighted(child: object, pending: list[float]) -> None:
    """Add weighted bucket counts and a sum (``pending``: counts per bucket, then the sum).

    ``Histogram.observe`` adds exactly 1 per call, which cannot express a sampled span standing for
    ten requests, nor a batch of a million; the child's bucket and sum values take any amount.
    Buckets are stored non-cumulative, as ``observe`` stores them (prometheus-client internals,
    held by a test of the exposed buckets).
    """
    buckets = child._buckets  # type: ignore[attr-defined]
    for i in range(CO2E_N_BUCKETS):
        if pending[i]:
            buckets[i].inc(pending[i])
    child._sum.inc(pending[CO2E_N_BUCKETS])  # type: ignore[attr-defined]
