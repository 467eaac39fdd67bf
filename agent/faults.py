"""Faults inside our own code: counted, logged once, never raised into the host application.

The agent must not depend on prometheus-client, so the counts live here as plain integers and the
exporter's collector publishes them as ``downstream_instrumentation_errors_total{component}``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

_logger = logging.getLogger("otel_downstream")
_lock = threading.Lock()
_counts: Counter[str] = Counter()
_logged: set[tuple[str, str]] = set()


def report_fault(component: str, exc: BaseException) -> None:
    """Count a fault in ``component``; log it with its traceback the first time its type is seen."""
    try:
        key = (component, type(exc).__qualname__)
        with _lock:
            _counts[component] += 1
            first = key not in _logged
            if first:
                _logged.add(key)
        if first:
            _logger.warning(
                "otel-downstream: internal error in %s ignored (further %s errors are only counted)",
                component,
                key[1],
                exc_info=exc,
            )
    except Exception:  # reporting a fault must never itself fail
        pass


def count_fault(component: str) -> None:
    """Count a fault in ``component`` that the caller has logged in its own words."""
    with _lock:
        _counts[component] += 1


def fault_counts() -> dict[str, int]:
    """Faults per component since the process started (for the self-metric)."""
    with _lock:
        return dict(_counts)


def reset_faults() -> None:
    """Forget counts and logged types (tests)."""
    with _lock:
        _counts.clear()
        _logged.clear()
