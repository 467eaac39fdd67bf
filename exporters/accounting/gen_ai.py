"""Model-call spans: each LLM call priced by the engine once, however many spans record it.

Kept apart from ``accounting/accountant.py`` (which dispatches every span type) because a model call has rules
of its own: nested spans of one call count once (:mod:`.nested_calls`), an unusable zone falls back
to the provider's, and the model and provider labels are bounded together.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Final

from otel_downstream.agent.model_calls import has_usage
from otel_downstream.exporters.accounting.labels import (
    NOT_APPLICABLE,
    OTHER,
    BoundedLabel,
    LabelSets,
)
from otel_downstream.exporters.accounting.nested_calls import NestedCalls, same_call
from otel_downstream.exporters.accounting.shared import Shared
from otel_downstream.exporters.accounting.span_inputs import (
    AttributeValue,
    GenAIInput,
    call_models,
    gen_ai_input,
)
from otel_downstream.exporters.accounting.unknown import unknown_kinds
from otel_downstream.exporters.engine.llm.registry import registry as llm_registry
from otel_downstream.exporters.footprint import Footprint, InputError
from otel_downstream.exporters.metrics import families as M

__all__ = ["GEN_AI_ENCLOSING", "GenAIAccounting"]

_NA: Final = NOT_APPLICABLE
GEN_AI_ENCLOSING: Final = "gen_ai_enclosing"
"""``downstream_spans_accounted_total`` type of a model-call span around one already counted."""


class GenAIAccounting:
    """Prices model-call spans into the accountant's pending sums (thread-safe as they are)."""

    def __init__(
        self,
        shared: Shared,
        *,
        allowed_models: Iterable[str],
        model_limit: int,
        provider_limit: int,
        label_set_limit: int,
    ) -> None:
        self.engine, self.metrics, self._sums, self._label, self._services = shared
        # Models the engine knows never fold into ``other`` because of unknown fine-tune ids.
        known = (*llm_registry().by_name, *allowed_models)
        self._models = BoundedLabel("gen_ai_request_model", model_limit, known)
        self._providers = BoundedLabel("gen_ai_provider_name", provider_limit)
        self._gen_ai_sets = LabelSets("gen_ai_labels", label_set_limit)
        self._nested = NestedCalls()

    def account(
        self,
        attributes: Mapping[str, AttributeValue],
        service_name: str,
        weight: float,
        *,
        duration_s: float | None,
        span_key: Hashable | None,
        parent_key: Hashable | None,
    ) -> str | None:
        """The service label of a counted call, or None for a span that only encloses a call
        counted inside it; raises ``InputError`` for a span to reject."""
        models = call_models(attributes)
        inner = self._nested.counted_inside(span_key)
        if inner is not None and (not has_usage(attributes) or same_call(models, inner)):
            # a span inside it counted this very call: this one only encloses it
            self._sums.bump(self.metrics.spans_accounted, (GEN_AI_ENCLOSING,), weight)
            self._nested.note(parent_key, inner | models)  # and every span around it
            return None
        service = self._price(gen_ai_input(attributes, duration_s), service_name, weight)
        self._nested.note(parent_key, models)
        return service

    def _price(self, record: GenAIInput, service_name: str, weight: float) -> str:
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
