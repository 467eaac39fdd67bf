"""Sustainable Web Design ratings (A+ best … F worst) for grams of CO₂e per page view.

co2.js rates a total against six upper bounds (``total <= bound``); the bounds for v3 and v4 live in
``data/swd_constants.json`` with their source.
"""

from __future__ import annotations

__all__ = ["rate"]


def rate(co2e_g: float, bounds: tuple[float, ...]) -> str:
    """The letter for ``co2e_g`` under ``bounds`` (ascending, one per letter A+ … E).

    Unrolled rather than looped: it runs on every transfer() call. NaN rates ``F``, as in co2.js.
    """
    if co2e_g <= bounds[0]:
        return "A+"
    if co2e_g <= bounds[1]:
        return "A"
    if co2e_g <= bounds[2]:
        return "B"
    if co2e_g <= bounds[3]:
        return "C"
    if co2e_g <= bounds[4]:
        return "D"
    if co2e_g <= bounds[5]:
        return "E"
    return "F"
