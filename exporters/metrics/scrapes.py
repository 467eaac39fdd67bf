"""When a scrape last read a registry to the end: what lets a new series show 0 before its value.

Prometheus' ``increase()`` and ``rate()`` count a counter's growth between the samples they have.
A label set that first appears between two scrapes with its value already counted is first seen
at that value, so its first increment is never counted (a demo run read 7.10 g of a true 11.27 g).
The pending sums therefore create a new series at 0 and hold its amount back until a scrape that
read it at 0 has *completed* (``accounting/pending_sums.py``). This module is how they know:

- every registry we serve is read through the scrape view (``exposition.safe_registry``), which
  notes the monotonic time just before it reads and, once the read has gone to the end, publishes
  it as the registry's "last completed scrape read started at" (:class:`ScrapeMarks`);
- in multiprocess mode the scrape runs in the worker serving ``/metrics`` while the values are
  written by every worker, so the same mark is also published as the modification time (in
  nanoseconds) of a small file in ``PROMETHEUS_MULTIPROC_DIR`` (:data:`MARK_FILE`), which the
  workers holding amounts read.

Times are ``time.monotonic_ns()``: the clock never steps, and on Linux (and macOS) it is one clock
for every process of the host, which is where the multiprocess directory lives.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry

__all__ = [
    "MARK_FILE",
    "ScrapeMarks",
    "file_mark",
    "marks_for",
    "publish_file_mark",
    "reading",
    "reading_step",
    "served_file_mark",
]

MARK_FILE: Final = "otel_downstream_scrape_mark"
"""In ``PROMETHEUS_MULTIPROC_DIR``: its mtime (ns) is the start of the last completed scrape read.
Not a ``*.db`` file, so prometheus-client's multiprocess collector never reads it."""

NO_SCRAPE: Final = -1
"""A mark no series' creation time is below: no scrape has completed yet."""

_FUTURE_SLACK_NS: Final = 60 * 10**9
"""A file mark this far ahead of the clock was written before a reboot (the monotonic clock
started again): it is replaced rather than trusted."""


class ScrapeMarks:
    """One registry's scrape state: whether our view serves it, and the last completed read."""

    __slots__ = ("__weakref__", "completed_ns", "views")

    def __init__(self) -> None:
        self.views = 0
        """Live scrape views over the registry: new series are held only while one exists (a
        view dropped, say when its port was taken, leaves nothing held for a scrape never due)."""
        self.completed_ns = NO_SCRAPE
        """Monotonic ns at which the last completed scrape read began (only moves forward)."""

    @property
    def served(self) -> bool:
        return self.views > 0

    def add_view(self, view: object) -> None:
        """Count ``view`` as serving the registry until it is garbage."""
        with _marks_lock:
            self.views += 1
        weakref.finalize(view, self._view_gone)

    def _view_gone(self) -> None:
        with _marks_lock:
            self.views -= 1

    def complete(self, started_ns: int) -> None:
        """A read that began at ``started_ns`` has gone to the end."""
        self.completed_ns = max(self.completed_ns, started_ns)


_marks: weakref.WeakKeyDictionary[CollectorRegistry, ScrapeMarks] = weakref.WeakKeyDictionary()
_marks_lock = threading.Lock()


def marks_for(registry: CollectorRegistry) -> ScrapeMarks:
    """The registry's :class:`ScrapeMarks` (created on first use; dropped with the registry)."""
    with _marks_lock:
        marks = _marks.get(registry)
        if marks is None:
            marks = _marks[registry] = ScrapeMarks()
        return marks


class _Reading(threading.local):
    marks: ScrapeMarks | None = None
    started_ns: int = 0


_reading = _Reading()


def reading(marks: ScrapeMarks) -> int | None:
    """When a scrape read of ``marks``' registry running on this thread began, or ``None``.

    A flush run by that read (the pre-collect hook) creates its new series inside the read, before
    any family is collected, so the read sees them at 0: their creation counts as its start."""
    if _reading.marks is marks:
        return _reading.started_ns
    return None


@contextlib.contextmanager
def reading_step(marks: ScrapeMarks, started_ns: int) -> Iterator[None]:
    """Around each step of a scrape read (set per step: a read is a generator the caller may
    leave between steps, so the thread-local must never outlive one)."""
    _reading.marks, _reading.started_ns = marks, started_ns
    try:
        yield
    finally:
        _reading.marks = None


# --- the file mark (multiprocess mode) --------------------------------------------------------------


def _path(directory: str) -> Path:
    return Path(directory, MARK_FILE)


def served_file_mark(directory: str) -> None:
    """Create the mark file (mtime 0: no scrape completed) if it is not there: its existence tells
    the workers that a scrape view serves this directory, so their new series are held.

    Never follows a symlink; a file it cannot create (permissions) leaves holding off."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(_path(directory), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.close(fd)
        os.utime(_path(directory), ns=(0, 0), follow_symlinks=False)


def file_mark(directory: str) -> int | None:
    """The file mark (monotonic ns), ``None`` when there is no mark file (no view serves the
    directory), :data:`NO_SCRAPE` when its time cannot be trusted (written before a reboot)."""
    try:
        mark = _path(directory).lstat().st_mtime_ns
    except OSError:
        return None
    if mark > time.monotonic_ns() + _FUTURE_SLACK_NS:
        return NO_SCRAPE
    return mark


def publish_file_mark(directory: str, started_ns: int) -> None:
    """Move the file mark forward to ``started_ns`` (never back, unless it predates a reboot).

    Two scrapers racing can leave the earlier of two marks: that only delays a release."""
    path = _path(directory)
    try:
        current = path.lstat().st_mtime_ns
    except FileNotFoundError:
        served_file_mark(directory)
        current = 0
    if current < started_ns or current > time.monotonic_ns() + _FUTURE_SLACK_NS:
        os.utime(path, ns=(started_ns, started_ns), follow_symlinks=False)
