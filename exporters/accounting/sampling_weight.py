"""A sampled span's weight: its adjusted count from the OTel probability-sampling threshold.

A span kept by a 10 % probability sampler stands for ten spans; the sampler writes its threshold
into ``tracestate`` (``ot=th:...``), so the exporter and ``serve`` scale each span by it and totals
stay unbiased by sampling.

A ``tracestate`` travels with the trace, so a client can write any threshold into the context it
sends; the weight read here is therefore a claim, which the accountant believes only up to the
configured sampling floor (``AccountingSettings.min_sampling_probability``, see docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["adjusted_count", "adjusted_count_from_ot"]

_THRESHOLD_DIGITS: Final = 14
_RANGE: Final = 2**56
"""Randomness and thresholds are 56-bit integers: ``T`` ranges over ``0 .. 2**56 - 1``."""


def adjusted_count_from_ot(ot_value: str) -> float:
    """Adjusted count from the value of the ``ot`` tracestate key (``th:...;rv:...``).

    The threshold ``th`` is 1-14 hex digits with trailing zeros dropped; the span was kept when
    its randomness was at or above ``T``, so it stands for ``2**56 / (2**56 - T)`` spans. No
    ``th`` means no probability sampling is known: count 1. A malformed ``th`` raises
    ``ValueError`` naming it.
    """
    for part in ot_value.split(";"):
        if not part.startswith("th:"):
            continue
        digits = part[3:]
        if not 1 <= len(digits) <= _THRESHOLD_DIGITS or digits.strip("0123456789abcdef"):
            raise ValueError(f"tracestate ot th={digits!r}: expected 1-14 lower-case hex digits")
        threshold = int(digits.ljust(_THRESHOLD_DIGITS, "0"), 16)
        # Integer subtraction: in floats 2**56 - (2**56 - 1) rounds to 0 and the largest valid
        # threshold divided by zero (an error raised while decoding, outside any per-span guard).
        return _RANGE / (_RANGE - threshold)
    return 1.0


def adjusted_count(tracestate: str | Mapping[str, str] | None) -> float:
    """Adjusted count of a span from its W3C ``tracestate`` (header string or key->value map)."""
    if not tracestate:
        return 1.0
    if isinstance(tracestate, str):
        ot = None
        for member in tracestate.split(","):
            key, sep, value = member.strip().partition("=")
            if sep and key == "ot":
                ot = value
                break
    else:
        ot = tracestate.get("ot")
    if not ot:
        return 1.0
    return adjusted_count_from_ot(ot)
