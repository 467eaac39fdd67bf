"""One model call, one count: spans of a call nested inside another span of the same call.

Several instrumentations may record the same LLM call as nested spans: a framework's ``chat`` span
around the SDK instrumentation's CLIENT span, our CLIENT span around the span mistralai opens itself
(1.x whenever a global provider exists, 3.x with its telemetry on). Each carries the call's
provider, model and usage, and would be counted. The innermost one is counted (it is closest to the
API request and ends first); an enclosing span is skipped when a model-call span of the same model
inside it was counted, or when it reports no usage of its own. A different call directly inside a
call (an embedding made while a chat span is open) leaves both counted, and a child that was
rejected (no usage) leaves its parent to be counted.

Children end before their parents, so the in-process processor and any exporter fed in end order
see them first; ``serve`` also orders each OTLP batch children first. A parent that arrives in an
earlier batch than its child is counted with it (twice): the Collector keeps end order, so that
takes reordering between batches. Memory is bounded: the oldest remembered parents are forgotten
first (their spans have long ended when that many calls came after them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final

DEFAULT_CAPACITY: Final = 8_192
"""Parents remembered at once: far more than the model calls in flight in one process."""


class NestedCalls:
    """Parent span keys under which a model call was counted, with the models it named (keys are
    opaque: the in-process path uses the 64-bit span id, ``serve`` the raw OTLP id bytes)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._parents: OrderedDict[Hashable, frozenset[str]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def counted_inside(self, key: Hashable | None) -> frozenset[str] | None:
        """The models of the calls counted inside the span ``key``, or None when none was
        (forgotten once asked: a span ends once)."""
        if key is None:
            return None
        with self._lock:
            return self._parents.pop(key, None)

    def note(self, parent_key: Hashable | None, models: frozenset[str]) -> None:
        """A model-call span naming ``models``, whose parent is ``parent_key``, was counted."""
        if parent_key is None:
            return
        with self._lock:
            self._parents[parent_key] = self._parents.get(parent_key, frozenset()) | models
            if len(self._parents) > self._capacity:
                self._parents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._parents)


def same_call(models: frozenset[str], inner: frozenset[str]) -> bool:
    """Whether a span naming ``models`` records the call counted as ``inner``: a model in common,
    or one name extending the other (``gpt-4o`` and the ``gpt-4o-2024-08-06`` it resolved to)."""
    return any(a == b or a.startswith(b) or b.startswith(a) for a in models for b in inner)
