"""What the host sampler reads from: its settings, checked, and its CPU and energy readers.

Kept apart from ``host/sampler.py`` (the sampling thread and the span it records) so that the
sampler reads as a loop: a bad setting is refused here with a message naming it, and a reader that
cannot open leaves the power model in charge, said once through ``faults``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.host.rapl import RaplAbsent

__all__ = [
    "PROCESS_SHARE",
    "clamp",
    "country_code",
    "open_reader",
    "psutil_cpu",
    "psutil_process_cpu",
    "service_name_of",
    "share_setting",
]

PROCESS_SHARE = "process"


def service_name_of(provider: object) -> str:
    """``service.name`` of an SDK provider's resource, for the per-service host lock."""
    name = getattr(getattr(provider, "resource", None), "attributes", {}).get("service.name")
    return name if isinstance(name, str) and name else "unknown_service"


def clamp(value: float) -> float:
    """A utilisation or share within 0..1 (psutil can overshoot briefly)."""
    return min(max(float(value), 0.0), 1.0)


def open_reader(factory: Callable[[], Any], unavailable: type[Exception]) -> Any:
    """The reader ``factory`` makes, or None: the power model stands in for a missing counter."""
    try:
        return factory()
    except RaplAbsent:
        return None  # no counters at all is normal: the model is used, nothing to report
    except unavailable as exc:
        report_fault("host_sampler", exc)  # present but unusable: say so once, use the model
        return None


def country_code(code: str) -> str:
    """The host country setting as an ISO 3166 alpha-2 code, refused now if it is not one."""
    code = code.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError(f"host sampler country={code!r} must be an ISO 3166 alpha-2 code")
    return code


def share_setting(argument: float | str | None, from_env: str) -> float | str:
    """The share of the host this service is charged: a fixed 0..1, or ``"process"`` (measured)."""
    raw: float | str = argument if argument is not None else from_env
    if raw == PROCESS_SHARE:
        return PROCESS_SHARE
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"host sampler share={raw!r} must be a number in 0..1 or 'process'"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"host sampler share={raw!r} must be within 0..1")
    return value


def psutil_cpu() -> Callable[[], float]:
    """System CPU utilisation (0..1) since the previous call."""
    import psutil

    return lambda: psutil.cpu_percent(interval=None) / 100.0


def psutil_process_cpu() -> Callable[[], float]:
    """This process's CPU utilisation (0..1 of all cores) since the previous call."""
    import psutil

    process = psutil.Process()
    cores = psutil.cpu_count() or 1
    return lambda: process.cpu_percent(interval=None) / (100.0 * cores)
