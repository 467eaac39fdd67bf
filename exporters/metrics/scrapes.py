"""When a scrape last read a registry to the end: what lets a new series show 0 before its value.

Prometheus' ``increase()`` and ``rate()`` count a counter's growth between the samples they have.
A label set that first appears between two scrapes with its value already counted is first seen
at that value, so its first increment is never counted (a demo run read 7.10 g of a true 11.27 g).
The pending sums therefore create a new series at 0 and hold its amount back until a scrape that
read it at 0 has *completed* (``accounting/pending_sums.py``). This module is how they know: every
registry we serve is read through the scrape view (``exposition.safe_registry``), which
notes the monotonic time just before it reads and, once the read has gone to the end, publishes it
as the registry's "last completed scrape read started at" (:class:`ScrapeMarks`).

In process only: in multiprocess mode the workers hold nothing back (a killed worker would lose
it); the scrape view shows a label set it never exposed at 0 itself (``seen_series.py``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry

__all__ = ["ScrapeMarks", "marks_for", "reading", "reading_step"]

NO_SCRAPE: Final = -1
"""A mark no series' creation time is below: no scrape has completed yet."""


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
