"""Which ``downstream_unknown_total`` kinds a priced footprint calls for.

Every kind of span (requests, model calls, host samples) reports the fallbacks the engine took the
same way, so the rule lives here rather than in one span kind's module.
"""

from __future__ import annotations

from typing import Final

from otel_downstream.exporters.footprint import Footprint

__all__ = ["FLAG_UNKNOWN", "unknown_kinds"]

FLAG_UNKNOWN: Final = {
    "country_unknown": "country",
    "provider_unknown": "provider",
    "model_estimated": "model",
    "zone_world_default": "zone",
}
"""Engine flags that mean a fallback figure stood in, and the ``downstream_unknown_total`` kind."""


def unknown_kinds(footprints: tuple[Footprint, ...]) -> tuple[str, ...]:
    """The ``downstream_unknown_total`` kinds the footprints' flags call for, once each."""
    found: list[str] = []
    for fp in footprints:
        for flag in fp.flags:
            kind = FLAG_UNKNOWN.get(flag)
            if kind is not None and kind not in found:
                found.append(kind)
    return tuple(found)
