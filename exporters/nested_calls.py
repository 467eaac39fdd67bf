"""One model call, one count: spans of a call nested inside another span of the same call.

Several instrumentations may record the same LLM call as nested spans: a framework's ``chat`` span
around the SDK instrumentation's CLIENT span, our CLIENT span around the span mistralai opens itself
(1.x whenever a global provider exists, 3.x with its telemetry on). Each carries the call's
provider, model and usage, and would be counted. The innermost one is counted (it is closest to the
API request and ends first); an enclosing span is skipped when a model-call span inside it was
counted. A child that was rejected (no usage) leaves its parent to be counted.

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
    """Parent span keys under which a model call was counted (keys are opaque: the in-process
    path uses the 64-bit span id, ``serve`` the raw OTLP trace and span id bytes)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._parents: OrderedDict[Hashable, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def counted_inside(self, key: Hashable | None) -> bool:
        """Whether a model call inside the span ``key`` was counted (forgotten once asked: a span
        ends once)."""
        if key is None:
            return False
        with self._lock:
            return self._parents.pop(key, False) is None

    def note(self, parent_key: Hashable | None) -> None:
        """A model-call span whose parent is ``parent_key`` was counted."""
        if parent_key is None:
            return
        with self._lock:
            self._parents[parent_key] = None
            if len(self._parents) > self._capacity:
                self._parents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._parents)
