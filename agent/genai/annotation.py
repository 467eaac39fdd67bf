"""What a call adds to another instrumentation's span of the same call, without counting it twice.

When a span of the call from another instrumentation is current (see
:func:`.context.foreign_call_span`), :class:`.call.GenAICall` opens none and annotates
that span instead. The rule for what may be added is a policy of its own, kept apart from the
call's life: never overwrite what the other span recorded, and never mix our token counts into the
counts it has (under either the current or the older attribute names), so the exporter reads one
consistent set of numbers per call.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.util.types import AttributeValue

from otel_downstream.agent.attributes import (
    DOWNSTREAM_TOKENS_ESTIMATED,
    GEN_AI_INPUT_TOKEN_NAMES,
    GEN_AI_OUTPUT_TOKEN_NAMES,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    SERVER_ADDRESS,
    SERVER_PORT,
)
from otel_downstream.agent.genai.record import GenAIRecord, end_attributes
from otel_downstream.agent.model_calls import has_usage

_TOKEN_NAMES = (
    *GEN_AI_INPUT_TOKEN_NAMES,
    *GEN_AI_OUTPUT_TOKEN_NAMES,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    DOWNSTREAM_TOKENS_ESTIMATED,
)


def annotation(
    existing: Mapping[str, object] | None, record: GenAIRecord
) -> dict[str, AttributeValue]:
    """What another instrumentation's span of this call lacks of ``record``: never overwrite what
    it recorded, and never mix our token counts into counts it has (under either name)."""
    ours = end_attributes(record)
    if record.server_address is not None:
        ours[SERVER_ADDRESS] = record.server_address
        if record.server_port is not None:
            ours[SERVER_PORT] = record.server_port
    if not existing:
        return ours
    if has_usage(existing):
        for name in _TOKEN_NAMES:
            ours.pop(name, None)
    return {name: value for name, value in ours.items() if name not in existing}
