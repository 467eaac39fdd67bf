"""What an LLM call's inputs must be, checked before any pricing: token counts, latency, names.

A span carries whatever its sender wrote; each check names the field, the value and what was
expected, so the rejection (counted, and said in ``serve``'s partial-success message) is
actionable.
"""

from __future__ import annotations

import math
import numbers
from typing import cast

from otel_downstream.exporters.footprint import InputError

__all__ = ["is_number", "latency_seconds", "non_empty", "token_count"]


def is_number(value: object) -> bool:
    # Fast path for the built-ins spans carry; numbers.Real admits numpy scalars and the like.
    kind = type(value)
    return kind is int or kind is float or (kind is not bool and isinstance(value, numbers.Real))


def token_count(field: str, value: object) -> float:
    if not is_number(value):
        raise InputError(field, value, "a non-negative token count (int)")
    number = float(cast(numbers.Real, value))
    if not 0 <= number < math.inf:  # also rejects NaN
        raise InputError(field, value, "a non-negative, finite token count")
    return number


def latency_seconds(value: object) -> float:
    if value is None:
        return math.inf
    if not is_number(value):
        raise InputError("latency_s", value, "seconds as a number, or None when unknown")
    number = float(cast(numbers.Real, value))
    if not number >= 0:  # also rejects NaN
        raise InputError("latency_s", value, "a non-negative number of seconds, or None")
    return number


def non_empty(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, value, "a non-empty string")
    return value
