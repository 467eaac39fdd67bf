"""The accountant's settings, read in one place so ``configure()`` and ``serve`` agree.

Each setting goes argument → environment variable → default, read by
:meth:`AccountingSettings.resolve` once, when the caller builds the
:class:`~otel_downstream.exporters.accounting.accountant.Accountant` (never at import). Before this,
only ``configure()`` read the model-label variables and ``serve`` silently ignored them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from otel_downstream.agent import environment as env

__all__ = [
    "DEFAULT_LABEL_SET_LIMIT",
    "DEFAULT_MODEL_LIMIT",
    "DEFAULT_PROVIDER_LIMIT",
    "DEFAULT_SERVICE_LIMIT",
    "AccountingSettings",
]

DEFAULT_MODEL_LIMIT: Final = 200
DEFAULT_PROVIDER_LIMIT: Final = 32
DEFAULT_SERVICE_LIMIT: Final = 100
DEFAULT_LABEL_SET_LIMIT: Final = 5000
"""Distinct label sets per metric group (HTTP: service, country, device class; GenAI: service,
provider, model; host: service, country) before new ones are folded. A service seen from 50
countries on 5 device classes uses 250; the cap stops the product of the per-label limits
(100 x 250 x 8 = 200,000 sets, each several series) that an attacker can reach."""


@dataclass(frozen=True, slots=True)
class AccountingSettings:
    """Every setting of an accountant: label bounds, edge services, the sampling floor.

    Build it with :meth:`resolve`, which reads the environment for what is not given; the plain
    constructor reads nothing (its defaults are the built-in ones) but checks the values alike.
    """

    allowed_models: tuple[str, ...] = ()
    """Model names kept as label values besides every model the engine knows."""
    model_limit: int = DEFAULT_MODEL_LIMIT
    provider_limit: int = DEFAULT_PROVIDER_LIMIT
    service_limit: int = DEFAULT_SERVICE_LIMIT
    label_set_limit: int = DEFAULT_LABEL_SET_LIMIT
    edge_services: frozenset[str] = frozenset()
    """Services whose SERVER spans are customer requests; empty means every service."""
    min_sampling_probability: float = 1.0
    """The lowest probability our own samplers use: a span's sampling weight is believed up to its
    inverse (a client writes what it likes into the ``tracestate`` it sends)."""
    new_series_hold_seconds: float = 0.0
    """How long a new series stays at 0 at least (and until a scrape has shown it at 0) before its
    value is added: 0 when one Prometheus scrapes the target, its scrape interval when several do
    (an HA pair), so each one sees the series at 0 and counts its first increment."""

    def __post_init__(self) -> None:
        """Reject a value the accountant cannot use, naming the variable that sets it."""
        if not 0.0 < self.min_sampling_probability <= 1.0:
            raise ValueError(
                f"{env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY}={self.min_sampling_probability}: "
                "expected a probability in (0, 1]"
            )
        if self.model_limit < 0:
            raise ValueError(
                f"{env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT}={self.model_limit}: expected a count >= 0"
            )
        if not 0.0 <= self.new_series_hold_seconds <= 86_400.0:
            raise ValueError(
                f"{env.OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS}={self.new_series_hold_seconds}: "
                "expected seconds in [0, 86400]"
            )
        if self.label_set_limit < 1:
            raise ValueError(
                f"{env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT}={self.label_set_limit}: "
                "expected a count >= 1"
            )

    @property
    def max_weight(self) -> float:
        """The largest sampling adjusted count a span is believed to stand for."""
        return 1.0 / self.min_sampling_probability

    @classmethod
    def resolve(
        cls,
        *,
        allowed_models: Iterable[str] | None = None,
        model_limit: int | None = None,
        provider_limit: int | None = None,
        service_limit: int | None = None,
        label_set_limit: int | None = None,
        edge_services: Iterable[str] | None = None,
        min_sampling_probability: float | None = None,
        new_series_hold_seconds: float | None = None,
    ) -> AccountingSettings:
        """Each argument, else its variable, else the default; a bad value names the setting.

        ``provider_limit`` and ``service_limit`` have no variable: argument, else default.
        """
        if allowed_models is None:
            allowed_models = _names(env.env_str(env.OTEL_DOWNSTREAM_MODEL_LABELS, ""))
        if model_limit is None:
            model_limit = env.env_int(env.OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT, DEFAULT_MODEL_LIMIT)
        if label_set_limit is None:
            label_set_limit = env.env_int(
                env.OTEL_DOWNSTREAM_LABEL_SET_LIMIT, DEFAULT_LABEL_SET_LIMIT
            )
        if edge_services is None:
            edge_services = _names(env.env_str(env.OTEL_DOWNSTREAM_EDGE_SERVICES, ""))
        if min_sampling_probability is None:
            min_sampling_probability = env.env_float(
                env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY, 1.0
            )
        if new_series_hold_seconds is None:
            new_series_hold_seconds = env.env_float(
                env.OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS, 0.0
            )
        return cls(
            allowed_models=tuple(allowed_models),
            model_limit=model_limit,
            provider_limit=DEFAULT_PROVIDER_LIMIT if provider_limit is None else provider_limit,
            service_limit=DEFAULT_SERVICE_LIMIT if service_limit is None else service_limit,
            label_set_limit=label_set_limit,
            edge_services=frozenset(s.strip() for s in edge_services if s.strip()),
            min_sampling_probability=min_sampling_probability,
            new_series_hold_seconds=new_series_hold_seconds,
        )


def _names(raw: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [name.strip() for name in raw.split(",") if name.strip()]
