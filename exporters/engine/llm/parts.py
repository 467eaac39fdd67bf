"""The usage/embodied (and decode/prefill) breakdown of an LLM footprint, built only when read.

The exporter reads ``Footprint.total`` and ``embodied`` for every span but the breakdown only for
``estimate --json`` and the docs, so the parts are a read-only mapping that builds its Footprints
on first access from the raw figures the call already computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from otel_downstream.exporters.engine.llm.ecologits_model import Coefficients
from otel_downstream.exporters.footprint import JOULES_PER_KWH, Footprint, Impact

# (energy kWh, usage kgCO2e, water L, embodied kgCO2e, prefill IT kWh, prefill s): llm_ecologits.evaluate
Raw = tuple[float, float, float, float, float, float]
# (method, low-bound coefficients, high-bound coefficients or None, include embodied), per plan
PartsPlan = tuple[str, Coefficients, "Coefficients | None", bool]


def _usage(raw: Raw) -> Impact:
    return Impact(raw[0] * JOULES_PER_KWH, raw[1] * 1000.0, raw[2])


def _prefill(c: Coefficients, raw: Raw) -> Impact:
    energy_kwh = c.pue * raw[4]
    return Impact(
        energy_kwh * JOULES_PER_KWH,
        energy_kwh * c.kg_co2e_per_kwh * 1000.0,
        raw[4] * c.water_l_per_it_kwh,
    )


def _embodied(raw: Raw) -> Impact:
    return Impact(0.0, raw[3] * 1000.0, 0.0)


def _mean(a: Impact, b: Impact) -> Impact:
    return Impact(
        (a.energy_j + b.energy_j) / 2, (a.co2e_g + b.co2e_g) / 2, (a.water_l + b.water_l) / 2
    )


def _minus(a: Impact, b: Impact) -> Impact:
    return Impact(a.energy_j - b.energy_j, a.co2e_g - b.co2e_g, a.water_l - b.water_l)


class LlmParts(Mapping[str, Footprint]):
    """``usage`` (with ``decode``/``prefill`` under ecologits-prefill) and ``embodied``."""

    __slots__ = ("_built", "_hi", "_lo", "_plan")

    def __init__(self, plan: PartsPlan, lo: Raw, hi: Raw) -> None:
        # Three stores and nothing else: this runs once per span, the breakdown rarely.
        self._plan = plan
        self._lo = lo
        self._hi = hi

    def _part(
        self,
        lo: Impact,
        hi: Impact | None,
        sub: Mapping[str, Footprint] | None = None,
        *,
        embodied: bool = False,
    ) -> Footprint:
        if hi is None:
            total, low, high = lo, None, None
        else:
            total, low, high = _mean(lo, hi), lo, hi
        return Footprint(
            "ai_inference",
            self._plan[0],
            total,
            low,
            high,
            embodied=total if embodied else Impact(0.0, 0.0, 0.0),
            parts=MappingProxyType(dict(sub) if sub else {}),
        )

    def _build(self) -> Mapping[str, Footprint]:
        method, low, high, embodied = self._plan
        ranged = high is not None
        use_lo = _usage(self._lo)
        use_hi = _usage(self._hi) if ranged else None
        sub: dict[str, Footprint] = {}
        if method == "ecologits-prefill":
            pre_lo = _prefill(low, self._lo)
            pre_hi = _prefill(high, self._hi) if high is not None else None
            dec_hi = _minus(use_hi, pre_hi) if use_hi is not None and pre_hi is not None else None
            sub["decode"] = self._part(_minus(use_lo, pre_lo), dec_hi)
            sub["prefill"] = self._part(pre_lo, pre_hi)
        parts = {"usage": self._part(use_lo, use_hi, sub)}
        if embodied:
            parts["embodied"] = self._part(
                _embodied(self._lo), _embodied(self._hi) if ranged else None, embodied=True
            )
        return MappingProxyType(parts)

    def _parts(self) -> Mapping[str, Footprint]:
        try:
            return self._built
        except AttributeError:
            self._built: Mapping[str, Footprint] = self._build()
            return self._built

    def __getitem__(self, key: str) -> Footprint:
        return self._parts()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts())

    def __len__(self) -> int:
        return 2 if self._plan[3] else 1

    def __repr__(self) -> str:
        return f"LlmParts({dict(self._parts())!r})"
