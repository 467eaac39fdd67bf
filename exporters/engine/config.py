"""How the engine computes footprints: methods, what is included, water accounting.

Argument → ``OTEL_DOWNSTREAM_*`` environment variable → default, read once at construction
(:meth:`EngineConfig.from_env`), never at import. A bad value raises here, naming the setting, so
misconfiguration fails at start-up instead of inside a span.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from otel_downstream.agent import environment as env
from otel_downstream.exporters.engine import device
from otel_downstream.exporters.engine.llm import call as llm
from otel_downstream.exporters.engine.network import transfer as network

__all__ = ["EngineConfig"]

_FROM_ENV: Final[dict[str, tuple[str, Callable[[str, Any], Any]]]] = {
    "network_method": (env.OTEL_DOWNSTREAM_NETWORK_METHOD, env.env_str),
    "device_method": (env.OTEL_DOWNSTREAM_DEVICE_METHOD, env.env_str),
    "llm_method": (env.OTEL_DOWNSTREAM_LLM_METHOD, env.env_str),
    "green_hosting": (env.OTEL_DOWNSTREAM_GREEN_HOSTING, env.env_bool),
    "include_datacenter": (env.OTEL_DOWNSTREAM_INCLUDE_DATACENTER, env.env_bool),
    "include_embodied": (env.OTEL_DOWNSTREAM_INCLUDE_EMBODIED, env.env_bool),
    "desktop_laptop_share": (env.OTEL_DOWNSTREAM_DESKTOP_LAPTOP_SHARE, env.env_float),
    "hydro_evaporation": (env.OTEL_DOWNSTREAM_HYDRO_EVAPORATION, env.env_bool),
}
"""Each setting's variable and parser (the parsers name the variable in their errors)."""


@dataclass(frozen=True)
class EngineConfig:
    """How footprints are computed. Invalid values raise ValueError naming the setting."""

    network_method: str = "swd-v4"
    device_method: str = "swd-v4"
    llm_method: str = "ecologits-prefill"
    green_hosting: bool = False
    include_datacenter: bool = False
    include_embodied: bool = False
    desktop_laptop_share: float = dataclasses.field(default_factory=device.default_laptop_share)
    """Default 0.75: IDC 2023, notebooks ≈ three quarters of PC shipments (data/device_mix.csv)."""
    hydro_evaporation: bool = True
    """On by default, as in WRI's guidance and EcoLogits' AI figures (docs/methodology.md, Water)."""

    def __post_init__(self) -> None:
        for name, methods in (
            ("network_method", network.METHODS),
            ("device_method", device.METHODS),
            ("llm_method", llm.METHODS),
        ):
            value = getattr(self, name)
            if value not in methods:
                raise ValueError(f"{name}={value!r}: expected one of {', '.join(methods)}")
        share = self.desktop_laptop_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ValueError(f"desktop_laptop_share={share!r}: expected a number from 0 to 1")

    @classmethod
    def from_env(cls, **overrides: Any) -> EngineConfig:
        """Each setting from its argument, else its OTEL_DOWNSTREAM_* variable, else the default."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"EngineConfig.from_env: unknown setting(s) {sorted(unknown)}")
        base = cls()
        values = {
            name: overrides[name]
            if overrides.get(name) is not None
            else parse(variable, getattr(base, name))
            for name, (variable, parse) in _FROM_ENV.items()
        }
        return cls(**values)
