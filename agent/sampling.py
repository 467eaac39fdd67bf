"""``RecordFootprintSpans``: the sampler wrapper that lets the footprint processor see dropped spans.

Trace sampling must not bias the totals. ``configure()`` wraps the provider's sampler so that the
footprint spans it would drop are recorded instead (``RECORD_ONLY``): the footprint processor
accounts every one, while exporting processors still see only sampled spans (they skip unsampled
ones). ``shutdown()`` gives the provider its own sampler back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_downstream.agent import attributes as A

__all__ = ["RecordFootprintSpans", "unwrap_sampler", "wrap_sampler"]

_logger = logging.getLogger("otel_downstream")

# spans of ours that are footprint spans whatever their kind
_OUR_NAMES: Final = frozenset(
    {
        A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME,
        A.DOWNSTREAM_ENGAGEMENT_SPAN_NAME,
    }
)
_GEN_AI_KEYS: Final = (A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM, A.GEN_AI_OPERATION_NAME)


class RecordFootprintSpans(Sampler):
    """Wraps a sampler: what it drops among footprint spans is recorded (not exported) instead.

    Footprint spans are SERVER spans (served requests; their attributes often arrive only after
    start), spans starting with GenAI attributes, and our host-sample and engagement spans. The
    wrapped sampler's decision, attributes and trace state stand for everything else.
    """

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is not Decision.DROP:
            return result
        if (
            kind is SpanKind.SERVER
            or name in _OUR_NAMES
            or (attributes is not None and any(k in attributes for k in _GEN_AI_KEYS))
        ):
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordFootprintSpans{{{self.inner.get_description()}}}"


def wrap_sampler(provider: TracerProvider) -> bool:
    """Install ``RecordFootprintSpans`` around the provider's sampler; ``True`` once it is there.

    Each tracer copies the provider's sampler when it is created, so tracers obtained before
    ``configure()`` keep the bare sampler: configure first, then build middleware and clients.
    """
    current = getattr(provider, "sampler", None)
    if isinstance(current, RecordFootprintSpans):
        return True
    if not isinstance(current, Sampler):
        _logger.warning(
            "otel-downstream: cannot wrap this provider's sampler; sampled spans will be "
            "weighed by their tracestate instead"
        )
        return False
    provider.sampler = RecordFootprintSpans(current)
    return True


def unwrap_sampler(provider: TracerProvider) -> None:
    """Give the provider its own sampler back (shutdown): unsampled spans are dropped again."""
    current = getattr(provider, "sampler", None)
    if isinstance(current, RecordFootprintSpans):
        provider.sampler = current.inner
