"""Multiprocess mode: a new series is shown at 0 by the scrape, not held back by the workers.

Every worker writes every span's amounts into its own files at once, so a worker that is killed
(``SIGKILL``, an OOM kill) loses nothing it had answered. The "first scrape shows 0" that lets
Prometheus' ``increase()`` count a new label set's first increment (docs/metrics.md, "Totals over
time") is done here, on the summed page: the scrape view keeps, in the multiprocess directory, an
append-only record of every label set (metric name and labels, a histogram's ``le`` left out, so
all its buckets, sum and count go together) it has exposed, with the time it was first exposed.
A counter or histogram label set that is not in the record is exposed at 0 and recorded; from the
next scrape, and once ``OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS`` have passed since it was first
exposed (an HA pair), it shows its value. Whichever process serves reads the same record, so a
takeover never shows a known series at 0 again (that would read as a counter reset and count it
twice); a directory wiped as stale starts a new record, with its counters.

The record (:data:`SEEN_FILE`, not a ``*.db`` file) is read and appended under the directory's
lock. It fails safe: a series is shown at 0 only while the record can vouch that it was never
shown otherwise. A record that cannot be opened, or has a line that is not ours (other than a last
line cut short by a kill, which no scrape served), or is full (:data:`SEEN_LIMIT` label sets),
stops the zeroing (a fault is counted): values are shown as they are, a new series' first
increment may then be missed, but nothing is ever counted twice.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from prometheus_client.metrics_core import Metric

from otel_downstream.agent import environment as env
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.workers.fold import scrape_files

__all__ = ["SEEN_FILE", "SEEN_LIMIT", "SeenSeries"]

SEEN_FILE: Final = "otel_downstream_seen_series"
"""In the multiprocess directory: one line per label set exposed, ``<ns> <json key>``."""

SEEN_LIMIT: Final = 200_000
"""Label sets recorded at most (the label sets themselves are bounded far below this)."""

FAULT: Final = "exporters.metrics.seen_series"

_MAGIC: Final = b"otel-downstream-seen-series v1"
_ZEROED: Final = ("counter", "histogram")


def _boot_id() -> str:
    """This boot (monotonic times from another boot mean nothing), or ``-`` where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip() or "-"
    except OSError:
        return "-"


class SeenSeries:
    """The label sets of one multiprocess directory already exposed (a per-process cache of the
    record, re-read from where it left off at every scrape)."""

    def __init__(self, directory: str) -> None:
        self._dir = directory
        self._path = Path(directory, SEEN_FILE)
        self.hold_ns = round(_hold_seconds() * 1e9)
        self._boot = _boot_id()
        self._header = b""
        self._file: tuple[int, int] | None = None
        self._offset = 0
        self._first: dict[str, int] = {}
        """Label set key -> monotonic ns at which it was first exposed (``-1``: another boot)."""
        self._broken = False
        """The record cannot vouch for what was exposed: nothing is zeroed."""
        self._other_boot = False

    def expose(self, families: Iterable[Metric]) -> Iterator[Metric]:
        """``families`` with every counter and histogram label set not yet exposed (or within
        the hold) at 0; the new ones are recorded before anything is returned."""
        keyed = [(family, _keys(family)) for family in families]
        now = time.monotonic_ns()
        omit: set[str] = set()
        try:
            with scrape_files(self._dir):
                zero = self._decide(keyed, now)
        except Exception as exc:  # the record could not be read this time (EMFILE, EIO...)
            report_fault(FAULT, exc)
            zero = {key for key in _all(keyed) if self._held(key, now)}
            omit = {key for key in _all(keyed) if key not in self._first}
        for family, keys in keyed:
            if keys is None or (zero.isdisjoint(keys) and omit.isdisjoint(keys)):
                yield family
                continue
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [
                s._replace(value=0.0) if key in zero and not s.name.endswith("_created") else s
                for s, key in zip(family.samples, keys, strict=True)
                if key not in omit
            ]
            yield copy

    def _held(self, key: str, now: int) -> bool:
        """A known label set still within the hold."""
        first = self._first.get(key)
        return first is not None and 0 <= first <= now and now - first < self.hold_ns

    def _decide(self, keyed: list[tuple[Metric, list[str] | None]], now: int) -> set[str]:
        """(Directory lock held.) The keys to show at 0 now; records the new ones."""
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self._path, flags, 0o600)
        try:
            torn = self._sync(fd)
            zero: set[str] = set()
            new: dict[str, None] = {}
            for key in _all(keyed):
                if key not in self._first and not self._broken:
                    if len(self._first) + len(new) < SEEN_LIMIT:
                        new[key] = None
                    else:  # full: stop zeroing rather than guess
                        self._broken = True
                        report_fault(FAULT, OverflowError(f"{SEEN_LIMIT} label sets seen"))
                elif self._held(key, now):
                    zero.add(key)
            if self._broken:
                return set()
            if new:  # shown at 0 even if the write fails: never shown otherwise until recorded
                text = "".join(f"{now} {key}\n" for key in new).encode("ascii")
                try:
                    os.write(fd, (b"\x00\n" if torn else b"") + text)  # read back next scrape
                except OSError as exc:
                    report_fault(FAULT, exc)
            return zero.union(new)
        finally:
            os.close(fd)

    def _sync(self, fd: int) -> bool:
        """(Lock held.) Read what was appended since the last scrape (from the start if the file
        is another one: wiped and made again). ``True`` when the file ends in a line cut short."""
        st = os.fstat(fd)
        ident = (st.st_dev, st.st_ino)
        if st.st_size == 0:
            header = b"%s %s %s\n" % (_MAGIC, secrets.token_hex(8).encode(), self._boot.encode())
            os.write(fd, header)
            self._reset(ident, header)
            return False
        head = os.pread(fd, 128, 0).split(b"\n", 1)[0] + b"\n"
        if ident != self._file or head != self._header or st.st_size < self._offset:
            self._reset(ident, head)
            parts = head.split()
            if len(parts) != 4 or b" ".join(parts[:2]) != _MAGIC:
                self._broken = True
                report_fault(FAULT, ValueError(f"{self._path}: not a record of ours"))
                return False
            self._other_boot = parts[3].decode("ascii", "replace") != self._boot
        lines = os.pread(fd, st.st_size - self._offset, self._offset).split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for line in lines:
            self._offset += len(line) + 1
            if line.endswith(b"\x00"):
                continue  # a line cut short (its writer killed mid-write), closed by the next
            try:
                stamp, key = line.decode("ascii").split(" ", 1)
                json.loads(key)
                first = -1 if self._other_boot else int(stamp)
            except ValueError:
                self._broken = True
                report_fault(FAULT, ValueError(f"{self._path}: a line that is not ours"))
                return False
            self._first.setdefault(key, first)
        return bool(tail)

    def _reset(self, ident: tuple[int, int], header: bytes) -> None:
        """A record read from its start (``header`` is its first line)."""
        self._file, self._header, self._offset, self._first = ident, header, len(header), {}
        self._broken = self._other_boot = False


def _all(keyed: list[tuple[Metric, list[str] | None]]) -> dict[str, None]:
    """Every label set key of a page, once each, in order."""
    return dict.fromkeys(key for _, keys in keyed for key in keys or ())


def _keys(family: Metric) -> list[str] | None:
    """Each sample's label set key (``le`` left out), or ``None`` for a family never zeroed."""
    if family.type not in _ZEROED:
        return None
    made: dict[tuple[tuple[str, str], ...], str] = {}
    keys = []
    for sample in family.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        key = made.get(labels)
        if key is None:
            key = made[labels] = json.dumps([family.name, labels])
        keys.append(key)
    return keys


def _hold_seconds() -> float:
    """``OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS`` (0 when unset or not a usable number)."""
    try:
        hold = env.env_float(env.OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS, 0.0)
    except ValueError as exc:
        report_fault(FAULT, exc)
        return 0.0
    return hold if 0.0 <= hold <= 86_400.0 else 0.0
