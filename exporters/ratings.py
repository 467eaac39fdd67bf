"""Sustainable Web Design ratings (A+ best … F worst) for grams of CO₂e per page view.

co2.js rates a total against six upper bounds (``total <= bound``); the bounds for v3 and v4 live in
``data/swd_constants.json`` with their source.
"""

from __future__ import annotations

from .network_constants import RATING_LETTERS

__all__ = ["rate"]


def rate(co2e_g: float, bounds: tuple[float, ...]) -> str:
    """The letter for ``co2e_g`` under ``bounds`` (ascending, one per letter A+ … E)."""
    for letter, bound in zip(RATING_LETTERS, bounds, strict=True):
        if co2e_g <= bound:
            return letter
    return "F"
