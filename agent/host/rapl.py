"""Linux RAPL energy counters under ``/sys/class/powercap``, read as joules per interval.

Only package zones and their ``dram`` sub-zones are summed: ``core``/``uncore`` are already inside
the package figure and ``psys`` covers the whole SoC, so adding them would count energy twice.
Counters wrap at ``max_energy_range_uj``; a reading that goes backwards by more than a plausible
wrap (or implies an impossible power) is discarded rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/sys/class/powercap")
# No single RAPL zone draws this much; a larger figure means a reset or a misread, not energy.
MAX_PLAUSIBLE_WATTS_PER_ZONE = 2000.0


class RaplUnavailable(RuntimeError):
    """A RAPL counter could not be used: the caller falls back to the power model."""


class RaplAbsent(RaplUnavailable):
    """This host exposes no RAPL zone at all (VMs, containers, non-x86): normal, not a fault."""


@dataclass(frozen=True, slots=True)
class _Zone:
    name: str
    energy_path: Path
    max_range_uj: int


class RaplReader:
    """Reads energy deltas from every counted zone; construct once, then call ``delta_joules``."""

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        self._zones = _discover(Path(root))
        if not self._zones:
            raise RaplAbsent(f"no RAPL package zones under {root}")
        self._last: list[int] = [self._read(z) for z in self._zones]

    @property
    def zone_names(self) -> tuple[str, ...]:
        return tuple(z.name for z in self._zones)

    @property
    def measures_memory(self) -> bool:
        """Whether a ``dram`` zone is summed, so memory power must not be modelled as well."""
        return any(z.name.count(":") == 2 for z in self._zones)

    def delta_joules(self, elapsed_s: float) -> float:
        """Energy since the previous call, summed over zones, with wrap-around handled.

        Raises ``RaplUnavailable`` when a counter cannot be read (permissions, hot-unplug) or
        jumps implausibly; the previous readings are kept, so the next interval starts clean.
        """
        current = [self._read(z) for z in self._zones]
        total_uj = 0
        limit_uj = MAX_PLAUSIBLE_WATTS_PER_ZONE * max(elapsed_s, 0.0) * 1e6
        for zone, before, now in zip(self._zones, self._last, current, strict=True):
            delta = now - before
            if delta < 0:
                delta += zone.max_range_uj  # one wrap of the counter
            if delta < 0 or delta > limit_uj:
                self._last = current
                raise RaplUnavailable(
                    f"RAPL zone {zone.name}: implausible change {before} -> {now} µJ "
                    f"over {elapsed_s:.3f} s"
                )
            total_uj += delta
        self._last = current
        return total_uj / 1e6

    @staticmethod
    def _read(zone: _Zone) -> int:
        try:
            return int(zone.energy_path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise RaplUnavailable(f"cannot read {zone.energy_path}: {exc}") from exc


def _discover(root: Path) -> list[_Zone]:
    try:
        entries = sorted(p for p in root.iterdir() if p.name.startswith("intel-rapl:"))
    except OSError:
        return []
    zones: list[_Zone] = []
    for path in entries:
        depth = path.name.count(":")
        try:
            name = (path / "name").read_text().strip()
        except OSError:
            continue
        counted = (depth == 1 and name.startswith("package")) or (depth == 2 and name == "dram")
        if not counted:
            continue
        try:
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            max_range = 0
        zones.append(_Zone(path.name, path / "energy_uj", max_range))
    return zones
