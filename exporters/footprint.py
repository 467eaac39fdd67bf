"""The result type every footprint model returns.

One shape for network, device, AI-inference and host figures, so the exporter, the CLI and the docs
handle them alike: energy in joules, CO₂e in grams, water in litres, always in base units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

Segment = Literal[
    "network", "customer_device", "customer_infrastructure", "ai_inference", "datacenter"
]

SEGMENTS: Final[tuple[Segment, ...]] = (
    "network",
    "customer_device",
    "customer_infrastructure",
    "ai_inference",
    "datacenter",
)
"""All segments, in the order reports list them. ``datacenter`` is not Category D."""

CATEGORY_D: Final = frozenset(
    {"network", "customer_device", "customer_infrastructure", "ai_inference"}
)

JOULES_PER_KWH: Final = 3_600_000.0


@dataclass(frozen=True, slots=True)
class Impact:
    """Energy, CO₂e and water for one figure (a total, a bound, or the embodied part)."""

    energy_j: float
    co2e_g: float
    water_l: float

    def __add__(self, other: Impact) -> Impact:
        return Impact(
            self.energy_j + other.energy_j,
            self.co2e_g + other.co2e_g,
            self.water_l + other.water_l,
        )

    def scaled(self, factor: float) -> Impact:
        return Impact(self.energy_j * factor, self.co2e_g * factor, self.water_l * factor)

    @property
    def nonzero(self) -> bool:
        """All three quantities are positive (a figure that was really computed, not a gap)."""
        return self.energy_j > 0 and self.co2e_g > 0 and self.water_l > 0


ZERO: Final = Impact(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Footprint:
    """A model's answer for one segment of one request, call or host interval.

    ``total`` is the central estimate. ``low``/``high`` bound it where the method has a range
    (EcoLogits' MoE parameter ranges, device power ranges). ``embodied`` is the part of ``total``
    that is embodied (manufacturing) carbon, so operational = total - embodied. ``parts`` breaks a
    figure down (e.g. the SWD segments, or GPU/server/water parts of an LLM call). ``flags`` name
    anything the reader must know, such as ``country_unknown`` or ``model_estimated``.
    """

    segment: Segment
    method: str
    total: Impact
    low: Impact | None = None
    high: Impact | None = None
    embodied: Impact = ZERO
    parts: Mapping[str, Footprint] = field(default_factory=lambda: MappingProxyType({}))
    flags: tuple[str, ...] = ()
    data_version: str = ""

    @property
    def category_d(self) -> bool:
        """Whether the segment counts as downstream (TCS Category D) emissions."""
        return self.segment in CATEGORY_D

    @property
    def operational(self) -> Impact:
        return Impact(
            self.total.energy_j - self.embodied.energy_j,
            self.total.co2e_g - self.embodied.co2e_g,
            self.total.water_l - self.embodied.water_l,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form used by ``otel-downstream estimate --json`` and the docs."""

        def quantity(name: str) -> float | dict[str, float]:
            value: float = getattr(self.total, name)
            if self.low is None or self.high is None:
                return value
            return {
                "value": value,
                "low": getattr(self.low, name),
                "high": getattr(self.high, name),
            }

        out: dict[str, Any] = {
            "segment": self.segment,
            "category_d": self.category_d,
            "method": self.method,
            "energy_j": quantity("energy_j"),
            "co2e_g": quantity("co2e_g"),
            "water_l": quantity("water_l"),
            "operational_co2e_g": self.operational.co2e_g,
            "embodied_co2e_g": self.embodied.co2e_g,
        }
        if self.data_version:
            out["data_version"] = self.data_version
        if self.flags:
            out["flags"] = list(self.flags)
        if self.parts:
            out["segments"] = {name: part.to_json() for name, part in self.parts.items()}
        return out


class InputError(ValueError):
    """Bad input to a model: names the field, the value and what was expected.

    The CLI prints the message as is; the exporter counts it and keeps the rest of the batch.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown}: expected {expected}")
