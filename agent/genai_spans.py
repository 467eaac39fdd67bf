"""Which spans are one model call's span: the rule the exporter counts by and the wrappers defer by.

One rule in one place, because the two must agree: a span the exporter counts as a model call is a span
our wrappers must annotate rather than duplicate, and a span it does not count must not stop them.
"""

from __future__ import annotations

from collections.abc import Mapping

from .attributes import GEN_AI_AGENT_OPERATIONS, GEN_AI_CALL_MARKERS, GEN_AI_OPERATION_NAME


def is_model_call(attributes: Mapping[str, object], kind: str) -> bool:
    """Whether a span of ``kind`` (``CLIENT``, ``INTERNAL``, ``SERVER``, ...) with ``attributes``
    records one call to a model: a GenAI marker on any span but a server span, unless its operation
    is an agent-level one (``invoke_agent``, ``execute_tool``), which aggregates the calls below it.

    Kinds vary between instrumentations (the Vercel AI SDK and mistralai's own tracing use INTERNAL,
    and some senders leave the kind out), so the kind does not decide. When several spans record
    the same call nested in each other, the exporter counts the innermost one only (see
    ``exporters/nested_calls.py``).
    """
    if kind == "SERVER" or not any(marker in attributes for marker in GEN_AI_CALL_MARKERS):
        return False
    return attributes.get(GEN_AI_OPERATION_NAME) not in GEN_AI_AGENT_OPERATIONS
