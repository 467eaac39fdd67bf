"""The footprint engine: one object the exporter calls per span, composing every model.

It applies its configuration (``engine_config.EngineConfig``, read once at construction) and the
composition rules of docs/methodology.md: network and device energy are
priced at the grid and water intensity of the customer's country, LLM calls at the provider's
zone, customer hosts at the configured country. Unknown countries use world averages and say so
(flag ``country_unknown``).

The exporter aims at 100k spans/s per core, so :meth:`Engine.http_request` looks up a cached
per-(country, device class) set of per-byte and per-second rates and only multiplies; building a
rate set (grid, water and device lookups) happens once per key.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from otel_downstream.exporters.engine import device, grid, water
from otel_downstream.exporters.engine.config import EngineConfig
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.llm.embeddings import EMBEDDING_METHOD
from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.footprint import (
    JOULES_PER_KWH,
    ZERO,
    Footprint,
    Impact,
    InputError,
)

__all__ = ["Engine", "EngineConfig"]

_MAX_CACHED_KEYS: Final = 4096
_NO_PARTS: Final[Mapping[str, Footprint]] = MappingProxyType({})
"""Shared empty ``parts``: skips Footprint's per-instance default factory on the hot path."""


@dataclass(frozen=True, slots=True)
class _Place:
    """Grid and water intensity where the energy is used."""

    alpha2: str
    g_per_kwh: float
    l_per_kwh: float
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ByteRate:
    """Network or data-centre footprint of one byte (linear in bytes for every SWD/OneByte method)."""

    segment: str
    method: str
    total: Impact
    embodied: Impact
    flags: tuple[str, ...]
    data_version: str

    def footprint(self, n: float) -> Footprint:
        e = self.embodied
        return Footprint(
            segment=self.segment,  # type: ignore[arg-type]
            method=self.method,
            total=self.total.scaled(n),
            embodied=ZERO if e is ZERO else e.scaled(n),
            parts=_NO_PARTS,
            flags=self.flags,
            data_version=self.data_version,
        )


@dataclass(frozen=True, slots=True)
class _HttpRates:
    network: _ByteRate
    datacenter: _ByteRate | None
    device_bytes: device.DeviceRate
    device_time: device.DeviceRate | None


def _check_number(field: str, value: object) -> float:
    """Fast path for the common int/float; anything else through the full check."""
    if type(value) is int or type(value) is float:
        number = float(value)
        if 0.0 <= number < math.inf:
            return number
    return device.check_quantity(field, value)


class Engine:
    """Footprints per span. Thread-safe; cheap after the first call per (country, device class)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig.from_env()
        cfg = self.config
        factors = network.per_byte_factors(cfg.network_method, green=cfg.green_hosting)
        self._network = factors.segments["network"]
        self._datacenter = factors.segments["data_center"]
        self._datacenter_g_per_kwh = factors.default_g_co2e_per_kwh
        # device_method "swd-v4" is the SWD v4 device segment whatever the network method.
        self._device = network.per_byte_factors("swd-v4").segments["device"]
        self._world_water = water.intensity(None, hydro_evaporation=cfg.hydro_evaporation)
        self._http: dict[tuple[str | None, str], _HttpRates] = {}
        self._places: dict[str | None, _Place] = {}
        self._lock = threading.Lock()
        self._data_version = f"{grid.DATA_VERSION}+{water.DATA_VERSION}"

    # --- places -----------------------------------------------------------------------------
    def _place(self, country: str | None) -> _Place:
        place = self._places.get(country)
        if place is not None:
            return place
        g = grid.intensity(country)
        if g.is_world_average and g.alpha2 == grid.UNKNOWN_COUNTRY:
            w = self._world_water
        else:
            w = water.intensity(g.alpha2, hydro_evaporation=self.config.hydro_evaporation)
        flags = g.flags
        if w.is_world_average and "country_unknown" not in flags:
            flags = (*flags, "water_country_unknown")
        place = _Place(g.alpha2, g.g_co2e_per_kwh, w.l_per_kwh, flags)
        with self._lock:
            if len(self._places) >= _MAX_CACHED_KEYS:
                self._places.clear()
            self._places[country] = place
        return place

    # --- HTTP requests ------------------------------------------------------------------------
    def _byte_rate(self, segment: str, factor: network.SegmentFactor, place: _Place) -> _ByteRate:
        """Per-byte footprint of a network-model segment used at ``place``."""
        op_kwh = factor.operational_kwh_per_byte
        grid_g = place.g_per_kwh
        if factor.fixed_g_co2e_per_kwh is not None:  # OneByte, SWD v3 green data centre
            grid_g = factor.fixed_g_co2e_per_kwh
        embodied = ZERO
        if self.config.include_embodied and factor.embodied_kwh_per_byte:
            embodied = Impact(
                0.0, factor.embodied_kwh_per_byte * factor.embodied_g_co2e_per_kwh, 0.0
            )
        operational = Impact(
            op_kwh * JOULES_PER_KWH,
            op_kwh * grid_g * factor.operational_co2e_scale,
            op_kwh * place.l_per_kwh,
        )
        return _ByteRate(
            segment,
            self.config.network_method,
            operational + embodied,
            embodied,
            place.flags,
            self._data_version,
        )

    def _http_rates(self, country: str | None, device_class: str) -> _HttpRates:
        device.check_device_class(device_class)
        cfg = self.config
        place = self._place(country)
        net = self._byte_rate("network", self._network, place)
        dc = None
        if cfg.include_datacenter:
            # The operator's data centre is not where the customer is; without its location the
            # model's own global intensity applies (and green hosting, via the factors).
            world = self._place(None)
            dc_place = _Place(world.alpha2, self._datacenter_g_per_kwh, world.l_per_kwh, ())
            dc = self._byte_rate("datacenter", self._datacenter, dc_place)
        by_bytes = device.per_byte_rate(
            device_class=device_class,
            operational_kwh_per_byte=self._device.operational_kwh_per_byte,
            embodied_kwh_per_byte=self._device.embodied_kwh_per_byte,
            embodied_g_per_kwh=self._device.embodied_g_co2e_per_kwh,
            grid_g_per_kwh=place.g_per_kwh,
            water_l_per_kwh=place.l_per_kwh,
            include_embodied=cfg.include_embodied,
            flags=place.flags,
        )
        by_time = None
        if cfg.device_method == "time":
            by_time = device.per_second_rate(
                device_class=device_class,
                grid_g_per_kwh=place.g_per_kwh,
                water_l_per_kwh=place.l_per_kwh,
                include_embodied=cfg.include_embodied,
                laptop_share=cfg.desktop_laptop_share,
                flags=place.flags,
            )
        rates = _HttpRates(net, dc, by_bytes, by_time)
        with self._lock:
            if len(self._http) >= _MAX_CACHED_KEYS:
                self._http.clear()
            self._http[(country, device_class)] = rates
        return rates

    def http_request(
        self,
        *,
        request_bytes: float,
        response_bytes: float,
        country: str | None,
        device_class: str,
        engagement_s: float | None = None,
    ) -> tuple[Footprint, ...]:
        """One Footprint per counted segment: network, customer_device (+ datacenter if enabled).

        With the ``time`` device method, ``customer_device`` comes only with ``engagement_s``.
        """
        total = _check_number("request_bytes", request_bytes) + _check_number(
            "response_bytes", response_bytes
        )
        rates = self._http.get((country, device_class))
        if rates is None:
            rates = self._http_rates(country, device_class)
        net = rates.network.footprint(total)
        if rates.device_time is None:
            counted: tuple[Footprint, ...] = (net, rates.device_bytes.footprint(total))
        elif engagement_s is not None:
            dev = rates.device_time.footprint(_check_number("engagement_s", engagement_s))
            counted = (net, dev)
        else:
            # Time method: the device is counted from engagement (the beacon's own span), never
            # from this request's bytes too, or a page with a beacon would be counted twice.
            counted = (net,)
        if rates.datacenter is None:
            return counted
        return (*counted, rates.datacenter.footprint(total))

    # --- LLM calls ----------------------------------------------------------------------------
    def llm_call(
        self,
        *,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        latency_s: float | None,
        zone: str | None = None,
        operation: str | None = None,
    ) -> Footprint:
        """The ai_inference footprint of one call, priced at the provider's zone.

        ``operation`` is ``gen_ai.operation.name``: embeddings are priced as a forward pass.
        """
        return llm.llm_call(
            provider=provider,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=latency_s,
            method=self.config.llm_method,
            zone=zone,
            include_embodied=self.config.include_embodied,
            operation=operation,
        )

    # --- customer-hosted infrastructure --------------------------------------------------------
    def host_interval(
        self,
        *,
        energy_j: float,
        country: str | None,
        pue: float = 1.0,
        share: float = 1.0,
        embodied_co2e_g: float = 0.0,
    ) -> Footprint:
        """A host sample: energy × PUE × the service's share, at the host country's grid/water."""
        energy = _check_number("energy_j", energy_j)
        pue_v = _check_number("pue", pue)
        if pue_v < 1.0:
            raise InputError("pue", pue, "a number >= 1")
        share_v = _check_number("share", share)
        if share_v > 1.0:
            raise InputError("share", share, "a number from 0 to 1")
        embodied_g = _check_number("embodied_co2e_g", embodied_co2e_g) * share_v
        place = self._place(country)
        kwh = energy * pue_v * share_v / JOULES_PER_KWH
        embodied = Impact(0.0, embodied_g, 0.0) if embodied_g else ZERO
        return Footprint(
            segment="customer_infrastructure",
            method="host-v1",
            total=Impact(kwh * JOULES_PER_KWH, kwh * place.g_per_kwh, kwh * place.l_per_kwh)
            + embodied,
            embodied=embodied,
            flags=place.flags,
            data_version=self._data_version,
        )

    def versions(self) -> dict[str, str]:
        """Method and data versions in use, for ``downstream_build_info``."""
        cfg = self.config
        return {
            "network_method": cfg.network_method,
            "device_method": device.METHOD_VERSIONS[cfg.device_method],
            "llm_method": cfg.llm_method,
            "embedding_method": EMBEDDING_METHOD,
            "host_method": "host-v1",
            "grid_data": grid.DATA_VERSION,
            "water_data": water.DATA_VERSION
            + ("+hydro-evaporation" if cfg.hydro_evaporation else ""),
            "device_data": device.DATA_VERSION,
            "network_data": network.DATA_VERSION,
            "llm_data": llm.DATA_VERSION,
        }
