"""Which spans are one model call's span: the rule the exporter counts by and the wrappers defer by.

One rule in one place, because the two must agree: a span the exporter counts as a model call is a span
our wrappers must annotate rather than duplicate, and a span it does not count must not stop them.
"""

from __future__ import annotations

from collections.abc import Mapping

from .attributes import GEN_AI_AGENT_OPERATIONS, GEN_AI_CALL_MARKERS, GEN_AI_OPERATION_NAME


def is_model_call(attributes: Mapping[str, object], kind: str) -> bool:
    """Whether a span of ``kind`` (``CLIENT``, ``INTERNAL``, ``SERVER``, ...) with ``attributes``
    records one call to a model.

    It must carry a GenAI marker and not be a server span. A CLIENT span is a call (the conventions'
    kind for a remote model); any other kind must also name a non-agent operation (an in-process
    model run names one). That leaves out SDK-internal spans that only repeat the provider and usage
    of a call already traced, such as mistralai 1.x's own ``chat_completion_v1_..._post`` span,
    and agent or tool spans, which aggregate the calls below them.
    """
    if kind == "SERVER" or not any(marker in attributes for marker in GEN_AI_CALL_MARKERS):
        return False
    operation = attributes.get(GEN_AI_OPERATION_NAME)
    if operation in GEN_AI_AGENT_OPERATIONS:
        return False
    return kind == "CLIENT" or operation is not None
