"""The Shift Project's OneByte model, operation for operation as npm @tgwf/co2 0.19.0 computes it.

OneByte counts data-centre and network energy per byte at fixed intensities (519 g/kWh grey; when
hosting is green, 0 for the data centre and 475 for the network). co2.js gives no breakdown and no
per-visit figure for it; the segment view here splits the same energy so callers can still see it.
"""

from __future__ import annotations

from typing import Final

from otel_downstream.exporters.engine.network.constants import OneByteConstants
from otel_downstream.exporters.engine.network.swd import ZERO_SEGMENT, SegmentFigures

__all__ = ["OneByte"]


class OneByte:
    name: Final = "onebyte"
    segment_names: Final[tuple[str, ...]] = ("data_center", "network")
    supports_visits: Final = False

    def __init__(self, c: OneByteConstants) -> None:
        self.c = c

    def compute(self, bytes_: float, green: bool) -> tuple[float, tuple[float, ...] | None]:
        if bytes_ < 1:
            return 0.0, None
        c = self.c
        if green:
            co2_dc = bytes_ * c.dc_kwh_per_byte * c.green_dc_intensity
            co2_net = bytes_ * c.network_kwh_per_byte * c.green_network_intensity
            return co2_dc + co2_net, (bytes_, co2_dc, co2_net)
        total = bytes_ * (c.dc_kwh_per_byte + c.network_kwh_per_byte) * c.grey_intensity
        co2_dc = bytes_ * c.dc_kwh_per_byte * c.grey_intensity
        co2_net = bytes_ * c.network_kwh_per_byte * c.grey_intensity
        return total, (bytes_, co2_dc, co2_net)

    def segments(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, SegmentFigures]:
        if raw is None:
            return dict.fromkeys(self.segment_names, ZERO_SEGMENT)
        bytes_, co2_dc, co2_net = raw
        c = self.c
        return {
            "data_center": (bytes_ * c.dc_kwh_per_byte, 0.0, co2_dc, 0.0),
            "network": (bytes_ * c.network_kwh_per_byte, 0.0, co2_net, 0.0),
        }

    def co2js(
        self, raw: tuple[float, ...] | None, visit: tuple[float, float, float] | None
    ) -> dict[str, float]:
        """co2.js returns a bare number for OneByte, even when asked for segments."""
        return {}
