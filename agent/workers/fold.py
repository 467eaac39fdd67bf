"""Folding the files of dead workers, and the files a scrape reads.

Each worker writes its values into its own mmap files, and workers that a server recycles leave
theirs behind (counters never decrease): folded into one file per kind when a new member joins,
they keep every scrape's reading bounded. A scrape reads the same list under the group's lock, so
a fold never makes it read a value twice or miss one. Files are read defensively: a file shorter
than its header is one prometheus-client is creating (it holds nothing yet), and a file that
cannot be read (a worker killed while creating it, a damaged disk) is skipped by a scrape and set
aside by a fold, said once in the log and counted as a fault, never an error page nor a worker
that leaves its group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from otel_downstream.agent.faults import count_fault
from otel_downstream.agent.workers import directory as d

__all__ = ["UNREADABLE", "GroupCollector", "fold", "scrape_files"]

_logger = logging.getLogger("otel_downstream")

FOLDED: Final = "folded.json"
FOLD_AT: Final = 8
"""Files of dead workers, over all kinds, before they are folded into one file per kind."""
_FOLDABLE: Final = ("gauge_max", "counter", "histogram")
"""File kinds a fold may combine: counters and histograms add up, ``max`` gauges take the max."""
HEADER: Final = 8
"""Bytes before the first value: a file shorter than this is being created and holds nothing."""
UNREADABLE: Final = "agent.workers.unreadable_file"
"""``downstream_instrumentation_errors_total`` component of a multiprocess file that cannot be
read (one per file and process)."""
_SET_ASIDE: Final = ".unreadable"

_said: set[str] = set()


class UnreadableFile(Exception):
    """A multiprocess file whose values cannot be read."""


def read_values(path: str) -> list[tuple[str, float]]:
    """Every ``(key, value)`` of a multiprocess file; ``[]`` for one still being created.
    Raises :class:`UnreadableFile` for one that cannot be read."""
    from prometheus_client.mmap_dict import MmapedDict

    try:
        if Path(path).stat().st_size < HEADER:
            return []
        values = []
        read: Callable[[str], Iterator[tuple[str, float, float, int]]] = (
            MmapedDict.read_all_values_from_file
        )
        for key, value, _, _ in read(path):
            parsed = json.loads(key)
            if not isinstance(parsed, list) or len(parsed) != 4:
                raise ValueError(f"unexpected key {key[:80]!r}")
            values.append((key, value))
        return values
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise UnreadableFile(f"{path}: {exc}") from exc


def _unreadable(path: str, exc: Exception, what: str) -> None:
    """Say once (per file and process) that ``path`` cannot be read, and count it."""
    if path in _said:
        return
    _said.add(path)
    count_fault(UNREADABLE)
    _logger.warning("otel-downstream: %s (it holds no readable value): %s", what, exc)


def fold(path: str, live_members: set[int]) -> None:
    """(Lock held.) Fold the files of workers that are gone into one file per kind, so a scrape
    reads a bounded number of files however many workers were recycled.

    Nothing is read twice, or missed, by a scrape (which reads under the same lock): the folded
    file is written first, then ``folded.json`` is replaced in one step to name it and exclude
    what it holds, and only then are those files deleted. A fold cut short leaves files that
    ``folded.json`` either does not name yet (an unused folded file) or already excludes (sources
    not yet deleted). A source that cannot be read is set aside (renamed ``*.unreadable``)."""
    import psutil
    from prometheus_client.mmap_dict import MmapedDict

    directory = Path(path)
    manifest = read_manifest(directory)
    excluded = set(manifest["excluded"])
    archives: dict[str, str] = dict(manifest["archives"])
    dead: dict[str, list[str]] = {}
    for entry in os.scandir(path):
        split = _split_db(entry.name)
        if split is None or entry.name in excluded or not split[1].isdigit():
            continue
        pid = int(split[1])
        if pid in live_members or pid == os.getpid() or psutil.pid_exists(pid):
            continue  # a writer that may still write (or a pid now reused: folded later)
        dead.setdefault(split[0], []).append(entry.name)
    if sum(len(names) for names in dead.values()) < FOLD_AT:
        return
    generation = int(manifest["generation"]) + 1
    gone: list[str] = []
    for kind, names in dead.items():
        sources = ([archives[kind]] if kind in archives else []) + names
        values: dict[str, float] = {}
        for name in sources:
            try:
                read = read_values(str(directory / name))
            except UnreadableFile as exc:
                _unreadable(str(directory / name), exc, "a dead worker's file is set aside")
                with contextlib.suppress(OSError):
                    (directory / name).replace(directory / (name + _SET_ASIDE))
                continue
            for key, value in read:
                if key not in values:
                    values[key] = value
                elif kind == "gauge_max":
                    values[key] = max(values[key], value)
                else:
                    values[key] += value
        target = directory / f"{kind}_folded{generation}.db"
        d.unlink(target)  # left by a fold cut short: never named, never read
        folded = MmapedDict(str(target))  # type: ignore[no-untyped-call]
        try:
            for key, value in values.items():
                folded.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
        finally:
            folded.close()  # type: ignore[no-untyped-call]
        gone += sources
        archives[kind] = target.name
    write_manifest(directory, generation, archives, excluded | set(gone))  # the switch
    for name in gone:
        d.unlink(directory / name)
    write_manifest(directory, generation, archives, set())


def _split_db(name: str) -> tuple[str, str] | None:
    """``("counter", "1234")`` for ``counter_1234.db``; ``None`` for a kind never folded."""
    if not name.endswith(".db"):
        return None
    stem = name[:-3]
    for kind in _FOLDABLE:
        if stem.startswith(kind + "_"):
            return kind, stem[len(kind) + 1 :]
    return None


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / FOLDED).read_text(encoding="utf-8"))
        return {
            "generation": int(data["generation"]),
            "archives": {str(k): str(v) for k, v in data["archives"].items()},
            "excluded": [str(name) for name in data["excluded"]],
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"generation": 0, "archives": {}, "excluded": []}


def write_manifest(
    directory: Path, generation: int, archives: dict[str, str], excluded: set[str]
) -> None:
    text = json.dumps(
        {"generation": generation, "archives": archives, "excluded": sorted(excluded)}
    )
    d.write_atomic(directory / FOLDED, text)


@contextlib.contextmanager
def scrape_files(path: str) -> Iterator[list[str]]:
    """The ``*.db`` files a scrape of ``path`` must read, under the group's lock (when the
    directory has one), so no fold adds or removes one while it reads them, and without files a
    fold already holds. A new worker's file may still appear meanwhile: prometheus-client creates
    it outside our lock, empty for a moment (:class:`GroupCollector` reads it as empty)."""
    import fcntl

    directory = Path(path)
    with d.thread_lock:
        try:
            fd = os.open(directory / d.LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            fd = -1  # not a group's directory (or not yet): nothing folds it
        try:
            if fd >= 0:
                fcntl.lockf(fd, fcntl.LOCK_EX)
            manifest = read_manifest(directory)
            skip = set(manifest["excluded"])
            current = set(manifest["archives"].values())
            files = []
            for file in sorted(directory.glob("*.db")):
                if file.name in skip or ("_folded" in file.name and file.name not in current):
                    continue
                files.append(str(file))
            yield files
        finally:
            if fd >= 0:
                os.close(fd)


class GroupCollector:
    """prometheus-client's sum of every worker's files, read under the worker group's lock,
    without the files a fold of dead workers' files already holds, and without files that hold
    nothing yet (being created by a new worker, outside our lock) or cannot be read."""

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        merge = MultiProcessCollector.merge
        with scrape_files(self._path) as files:
            readable = [f for f in files if _has_header(f)]
            try:
                return merge(readable, accumulate=True)  # type: ignore[no-untyped-call]
            except Exception:  # some file cannot be read: find it, leave it out
                kept = []
                for file in readable:
                    try:
                        read_values(file)
                    except UnreadableFile as exc:
                        _unreadable(file, exc, "a scrape leaves out a file it cannot read")
                        continue
                    kept.append(file)
                return merge(kept, accumulate=True)  # type: ignore[no-untyped-call]


def _has_header(path: str) -> bool:
    try:
        return Path(path).stat().st_size >= HEADER
    except OSError:
        return False
