"""NVIDIA GPU energy and utilisation through NVML, when ``nvidia-ml-py`` and a driver are present.

Total-energy counters (Volta and newer) are preferred; older GPUs fall back to instantaneous power
× elapsed time. Any NVML error makes the caller fall back to the GPU power model.
"""

from __future__ import annotations

from typing import Any


class NvmlUnavailable(RuntimeError):
    """NVML is not installed, has no driver, or failed: use the GPU power model instead."""


class NvmlReader:
    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise NvmlUnavailable("nvidia-ml-py is not installed") from exc
        self._nvml: Any = pynvml
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # pynvml raises NVMLError subclasses for every failure
            raise NvmlUnavailable(f"NVML initialisation failed: {exc}") from exc
        if not self._handles:
            raise NvmlUnavailable("NVML reports no GPU")
        self._last_mj = self._energy_mj()

    def _energy_mj(self) -> list[int] | None:
        try:
            return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]
        except Exception:  # not supported before Volta: use power × time
            return None

    def delta_joules(self, elapsed_s: float) -> float:
        try:
            now = self._energy_mj()
            if now is not None and self._last_mj is not None:
                delta = sum(max(b - a, 0) for a, b in zip(self._last_mj, now, strict=True)) / 1000.0
                self._last_mj = now
                return delta
            watts = sum(self._nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1000.0
            return float(watts * elapsed_s)
        except Exception as exc:
            raise NvmlUnavailable(f"NVML read failed: {exc}") from exc
