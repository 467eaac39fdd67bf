"""Sustainable Web Design v4 and v3, operation for operation as npm @tgwf/co2 0.19.0 computes them.

Floating-point sums depend on their order, so each expression below follows the order of the
corresponding co2.js expression (``sustainable-web-design-v4.js`` / ``-v3.js``); the fixtures in
``tests/exporters/fixtures/co2js_swd_*.json`` hold the package's own answers and the tests compare
with ``==``. The models return the total and a flat ``raw`` tuple of every intermediate co2.js
reports; the breakdown views are built from it only when someone asks, which keeps a call cheap.

Segment figures are ``(operational_kwh, embodied_kwh, operational_co2e_g, embodied_co2e_g)``.
"""

from __future__ import annotations

from typing import Final

from otel_downstream.exporters.engine.network.constants import SwdV3Constants, SwdV4Constants

__all__ = ["SegmentFigures", "SwdV3", "SwdV4"]

SegmentFigures = tuple[float, float, float, float]
ZERO_SEGMENT: Final[SegmentFigures] = (0.0, 0.0, 0.0, 0.0)


class SwdV4:
    """SWD v4: per-segment operational and embodied energy per GB, green hosting factor on the DC."""

    name: Final = "swd-v4"
    segment_names: Final[tuple[str, ...]] = ("data_center", "network", "device")
    supports_visits: Final = True

    def __init__(self, c: SwdV4Constants) -> None:
        self.c = c

    def compute(
        self,
        bytes_: float,
        ghf: float,
        grid: tuple[float, float, float],
        visit: tuple[float, float, float] | None,
    ) -> tuple[float, tuple[float, ...] | None]:
        """``(total g, raw)``; ``grid`` is g/kWh for (data_center, network, device); ``visit`` is
        (first, return, reload) for perVisit, None for perByte."""
        if bytes_ < 1:
            return 0.0, None
        c = self.c
        i_dc, i_net, i_dev = grid
        gb = bytes_ / c.bytes_per_gb
        od = gb * c.op_dc
        on = gb * c.op_network
        ov = gb * c.op_device
        cd = od * i_dc
        cn = on * i_net
        cv = ov * i_dev
        ed = gb * c.emb_dc
        en = gb * c.emb_network
        ev = gb * c.emb_device
        g = c.global_intensity
        xd = ed * g
        xn = en * g
        xv = ev * g
        if visit is None:
            total = (cd * (1 - ghf) + xd) + (cn + xn) + (cv + xv)
            return total, (od, on, ov, ed, en, ev, cd, cn, cv, xd, xn, xv, ghf)
        first_ratio, return_ratio, reload_ratio = visit
        first = cd * (1 - ghf) + xd + cn + xn + cv + xv
        again = first * reload_ratio
        total = first * first_ratio + again * return_ratio
        return total, (od, on, ov, ed, en, ev, cd, cn, cv, xd, xn, xv, ghf, first, again)

    def segments(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, SegmentFigures]:
        if raw is None:
            return dict.fromkeys(self.segment_names, ZERO_SEGMENT)
        od, on, ov, ed, en, ev, cd, cn, cv, xd, xn, xv, ghf = raw[:13]
        out = {
            "data_center": (od, ed, cd * (1 - ghf), xd),
            "network": (on, en, cn, xn),
            "device": (ov, ev, cv, xv),
        }
        if visit is None:
            return out
        return {name: _weighted(fig, visit) for name, fig in out.items()}

    def co2js(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, float]:
        """The segment fields co2.js returns with ``results: "segment"`` (before total/rating)."""
        if raw is None:
            return {}
        _, _, _, _, _, _, cd, cn, cv, xd, xn, xv = raw[:12]
        out = {
            "dataCenterOperationalCO2e": cd,
            "networkOperationalCO2e": cn,
            "consumerDeviceOperationalCO2e": cv,
            "dataCenterEmbodiedCO2e": xd,
            "networkEmbodiedCO2e": xn,
            "consumerDeviceEmbodiedCO2e": xv,
            "totalEmbodiedCO2e": xd + xn + xv,
            "totalOperationalCO2e": cd + cn + cv,
            "dataCenterCO2e": cd + xd,
            "networkCO2e": cn + xn,
            "consumerDeviceCO2e": cv + xv,
        }
        if visit is not None:
            out["firstVisitCO2e"] = raw[13]
            out["returnVisitCO2e"] = raw[14]
        return out


class SwdV3:
    """SWD v3: 0.81 kWh/GB split into device, network, production (hardware) and data-centre shares."""

    name: Final = "swd-v3"
    segment_names: Final[tuple[str, ...]] = ("data_center", "network", "device", "production")
    supports_visits: Final = True

    def __init__(self, c: SwdV3Constants) -> None:
        self.c = c

    def compute(
        self,
        bytes_: float,
        green: bool,
        grid: tuple[float, float, float],
        visit: tuple[float, float, float] | None,
    ) -> tuple[float, tuple[float, ...]]:
        c = self.c
        i_dc, i_net, i_dev = grid
        if visit is None and bytes_ < 1:
            # co2.js v3 perByte counts fractions of a byte as zero bytes; perVisit does not.
            bytes_ = 0
        usage = bytes_ / c.bytes_per_gb * c.kwh_per_gb
        e_dev = usage * c.share_device
        e_net = usage * c.share_network
        e_prod = usage * c.share_production
        e_dc = usage * c.share_dc
        i_prod = c.global_intensity
        if green:
            i_dc = c.renewables_intensity
        if visit is None:
            co2_dev = e_dev * i_dev
            co2_net = e_net * i_net
            co2_prod = e_prod * i_prod
            co2_dc = e_dc * i_dc
            total = co2_dev + co2_net + co2_prod + co2_dc
            return total, (e_dev, e_net, e_prod, e_dc, co2_dev, co2_net, co2_prod, co2_dc)
        first_ratio, return_ratio, reload_ratio = visit
        raw: list[float] = []
        for energy, intensity in ((e_dev, i_dev), (e_net, i_net), (e_prod, i_prod), (e_dc, i_dc)):
            first = energy * first_ratio
            again = energy * return_ratio * reload_ratio
            raw += (first, again, first * intensity, again * intensity)
        # Array.reduce without a seed: the first value starts the sum (no 0.0 + x).
        total = raw[2]
        for value in (raw[3], raw[6], raw[7], raw[10], raw[11], raw[14], raw[15]):
            total += value
        return total, tuple(raw)

    def segments(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, SegmentFigures]:
        assert raw is not None
        if visit is None:
            e_dev, e_net, e_prod, e_dc, co2_dev, co2_net, co2_prod, co2_dc = raw
        else:
            e_dev, e_net, e_prod, e_dc = (raw[i] + raw[i + 1] for i in (0, 4, 8, 12))
            co2_dev, co2_net, co2_prod, co2_dc = (raw[i] + raw[i + 1] for i in (2, 6, 10, 14))
        return {
            "data_center": (e_dc, 0.0, co2_dc, 0.0),
            "network": (e_net, 0.0, co2_net, 0.0),
            "device": (e_dev, 0.0, co2_dev, 0.0),
            # SWD v3's "production" share is the embodied energy of the hardware.
            "production": (0.0, e_prod, 0.0, co2_prod),
        }

    def co2js(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, float]:
        assert raw is not None
        keys = ("consumerDeviceCO2", "networkCO2", "productionCO2", "dataCenterCO2")
        if visit is None:
            return dict(zip(keys, raw[4:8], strict=True))
        out: dict[str, float] = {}
        for n, key in enumerate(keys):
            out[f"{key} - first"] = raw[4 * n + 2]
            out[f"{key} - subsequent"] = raw[4 * n + 3]
        return out


def _weighted(fig: SegmentFigures, visit: tuple[float, float, float]) -> SegmentFigures:
    """A per-load figure weighted like co2.js weights the visit total: x·first + (x·reload)·return."""
    first_ratio, return_ratio, reload_ratio = visit
    a, b, c, d = (x * first_ratio + x * reload_ratio * return_ratio for x in fig)
    return (a, b, c, d)
