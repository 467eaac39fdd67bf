"""Host-sample spans: a measured or modelled host interval priced by the engine, per span.

Kept apart from ``accounting/accountant.py`` (which dispatches every span type) as the request and
model-call paths are: each span type's pricing and label bounds live in a module of their own.
"""

from __future__ import annotations

from typing import Final

from otel_downstream.exporters.accounting.cells import engine_country
from otel_downstream.exporters.accounting.labels import (
    NOT_APPLICABLE,
    LabelSets,
    normalize_country,
    normalize_host_method,
)
from otel_downstream.exporters.accounting.shared import Shared
from otel_downstream.exporters.accounting.span_inputs import HostInput
from otel_downstream.exporters.accounting.unknown import unknown_kinds

__all__ = ["HostAccounting"]

_NA: Final = NOT_APPLICABLE
_ZZ: Final = "ZZ"


class HostAccounting:
    """Prices host-sample spans into the accountant's pending sums."""

    def __init__(
        self,
        shared: Shared,
        *,
        label_set_limit: int,
    ) -> None:
        self.engine, self.metrics, self._sums, self._label, self._services = shared
        self._host_sets = LabelSets("host_labels", label_set_limit)

    def account(self, record: HostInput, service_name: str, weight: float) -> str:
        """Add one span's footprint; the service label it was counted under."""
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
