"""Which spans are one model call's span: the rules the exporter counts by and the wrappers defer by.

Both live here because they must agree: a span the wrappers annotate instead of opening their own
must be one the exporter counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from otel_downstream.agent.attributes import (
    GEN_AI_AGENT_OPERATIONS,
    GEN_AI_CALL_MARKERS,
    GEN_AI_INPUT_TOKEN_NAMES,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_TOKEN_NAMES,
    GEN_AI_REQUEST_MODEL,
)

_USAGE = (*GEN_AI_INPUT_TOKEN_NAMES, *GEN_AI_OUTPUT_TOKEN_NAMES)


def has_usage(attributes: Mapping[str, object]) -> bool:
    """Whether a GenAI span reports token usage, under either name."""
    return any(name in attributes for name in _USAGE)


def _marked_call(attributes: Mapping[str, object], kind: str) -> str | None:
    """``"client"``, ``"named"`` (an operation is named), ``"usage"`` (only usage says it is a
    call) or ``None``: the evidence that a GenAI-marked, non-server, non-agent span is a call."""
    if kind == "SERVER" or not any(marker in attributes for marker in GEN_AI_CALL_MARKERS):
        return None
    operation = attributes.get(GEN_AI_OPERATION_NAME)
    if operation in GEN_AI_AGENT_OPERATIONS:
        return None  # agent and tool spans aggregate the calls below them
    if kind == "CLIENT":
        return "client"
    if operation is not None:
        return "named"
    return "usage" if has_usage(attributes) else None


def is_model_call(attributes: Mapping[str, object], kind: str) -> bool:
    """Whether the exporter counts a span of ``kind`` (``CLIENT``, ``INTERNAL``, ``SERVER``, ``""``
    when a sender left it out) as one model call.

    It needs a GenAI marker on a span that is not a server or agent span, and some sign of a call:
    the CLIENT kind, an operation name, or token usage. Kinds vary between instrumentations (the
    Vercel AI SDK's ``doGenerate`` spans and mistralai's own spans are INTERNAL), so usage on an
    INTERNAL span counts; a framework's INTERNAL span with only ``gen_ai.system`` (a CrewAI
    workflow, say) is decoration and is ignored, not rejected. When several spans record the same
    call nested in each other, the exporter counts the innermost (``exporters/accounting/nested_calls.py``).
    """
    return _marked_call(attributes, kind) is not None


def is_call_in_progress(attributes: Mapping[str, object], kind: str) -> bool:
    """Whether a wrapper, finding this span current as an SDK call starts, should take it for
    another instrumentation's span of that very call and annotate it rather than open its own.

    Stricter than :func:`is_model_call`: it must be a CLIENT span or name an operation, and name a
    model, an operation or usage. A span that only carries ``gen_ai.system`` around several calls
    (a framework's workflow, a user's batch) is a parent: each call gets its own span.
    """
    evidence = _marked_call(attributes, kind)
    if evidence not in ("client", "named"):
        return False
    return evidence == "named" or GEN_AI_REQUEST_MODEL in attributes or has_usage(attributes)
