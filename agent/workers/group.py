"""Membership of a worker group: joining it before the metrics are built, entering and leaving
its directory, and recording which member serves ``/metrics``.

Each member records its pid and start time (so a reused pid is not taken for the member that
died), and the server's master (the process that starts new workers) is recorded too. Nothing is
wiped or removed while a member or a master runs: the files of dead workers stay, since counters
never decrease. The last member out removes the directory when no master runs either; otherwise
the watcher (:mod:`.watcher`) does once every member and master is gone. A directory left by a
group killed outright, watcher included, is stale: wiped at the next start. Nothing here may make
a worker leave its group but a directory that cannot be used: a fold that fails is a fault.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from otel_downstream.agent import environment as env
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.workers import directory as d
from otel_downstream.agent.workers.detect import detect_server, identity, master_of, master_record
from otel_downstream.agent.workers.fold import fold
from otel_downstream.agent.workers.watcher import ensure_watcher

__all__ = ["WorkerGroup", "join"]

_logger = logging.getLogger("otel_downstream")

_HOLDER: Final = "holder"
OWN_DIR: Final = "_OTEL_DOWNSTREAM_OWN_MULTIPROC_DIR"
"""Set beside ``PROMETHEUS_MULTIPROC_DIR`` when the directory is ours, so a process that inherits
both (the workers of a ``--preload`` master, a re-executed master) manages it as ours."""


class WorkerGroup:
    """This process's membership of a worker group's multiprocess directory."""

    def __init__(self, path: str, server: str, *, owned: bool) -> None:
        self.path = path
        self._dir = Path(path)
        self.server = server
        self.owned = owned  # created and removed by us (never a directory the user set)
        self._pid: int | None = None
        self._master: tuple[int, str] | None = None

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return d.locked(self.path, owned=self.owned)

    def enter(self, master: int | None = None) -> None:
        """Register this process (``master``: the server's master, which outlives its workers);
        wipe the directory first if it is stale: no member and no recorded master alive."""
        with self._locked():
            if self.owned and not self._live_members() and not self._live_masters():
                d.wipe(self.path, keep_lock=True)
            self._master = master_record(master)
            self._register()
            if self.owned:
                ensure_watcher(self.path)
                try:
                    fold(self.path, set(self._live_members()))
                except Exception as exc:  # the files stay as they are: read, not folded
                    report_fault("agent.workers.fold", exc)

    def after_fork(self) -> None:
        """In a forked child: register the child, whose master is the parent it forked from."""
        if self._pid is None:
            return
        with self._locked():
            self._master = master_record(os.getppid())
            self._register()

    def leave(self) -> None:
        """Deregister this process. The last member out removes the directory (if ours), unless
        the server's master lives on: then a new worker is on its way (a reload, a recycled last
        worker), and the watcher removes the directory once the master is gone."""
        if self._pid != os.getpid():
            return  # not a member (never entered, left already, or a child that never joined)
        self._pid = None
        with self._locked():
            d.unlink(self._dir / f"{d.MEMBER}{os.getpid()}")
            holder = self._read_holder()
            if holder is not None and holder[0] == os.getpid():
                d.unlink(self._dir / _HOLDER)
            if self.owned and not self._live_members():
                if self._live_masters():
                    ensure_watcher(self.path)
                else:
                    d.wipe(self.path, keep_lock=False)
        if self.owned and os.environ.get(OWN_DIR) == self.path:
            os.environ.pop(env.PROMETHEUS_MULTIPROC_DIR, None)
            os.environ.pop(OWN_DIR, None)

    def _register(self) -> None:
        pid = os.getpid()
        if self._master is not None:  # kept after its workers leave: the master outlives them
            d.write_atomic(self._dir / f"{d.MASTER}{self._master[0]}", self._master[1])
        d.write_atomic(self._dir / f"{d.MEMBER}{pid}", identity(pid) or "?")
        self._pid = pid

    def _live_members(self) -> list[int]:
        return d.live(self.path, d.MEMBER)

    def _live_masters(self) -> list[int]:
        """The servers' masters recorded by members (gone or not) that still run."""
        return d.live(self.path, d.MASTER)

    # --- who serves /metrics -------------------------------------------------------------------

    def claim(self, try_bind: Callable[[], bool]) -> tuple[bool, bool]:
        """Under the group lock, ``try_bind()``: ``(True, True)`` if this process now serves,
        else ``(False, whether the port's holder is a live member of the group)``."""
        with self._locked():
            if try_bind():
                d.write_atomic(self._dir / _HOLDER, f"{os.getpid()} {identity(os.getpid())}")
                return True, True
            holder = self._read_holder()
            return False, holder is not None and identity(holder[0]) == holder[1]

    def release(self) -> None:
        """This process stopped serving: forget it as the holder."""
        with self._locked():
            holder = self._read_holder()
            if holder is not None and holder[0] == os.getpid():
                d.unlink(self._dir / _HOLDER)

    def holder_pid(self) -> int | None:
        """The pid recorded as serving ``/metrics`` (for the log)."""
        holder = self._read_holder()
        return holder[0] if holder else None

    def _read_holder(self) -> tuple[int, str] | None:
        return d.read_pid_record(self._dir / _HOLDER)


def join(addr: str, port: int | None) -> WorkerGroup | None:
    """Join (or start) this process's worker group before the metrics are built, or ``None`` for
    single-process mode. Sets ``PROMETHEUS_MULTIPROC_DIR`` when it switches multiprocess mode on.

    Raises nothing but a bad ``OTEL_DOWNSTREAM_MULTIPROCESS`` value: a directory that cannot be
    used is logged and the process goes on in single-process mode.
    """
    mode = env.env_str(env.OTEL_DOWNSTREAM_MULTIPROCESS, "auto").lower()
    if mode not in {"auto", "true", "false"}:
        raise ValueError(
            f"{env.OTEL_DOWNSTREAM_MULTIPROCESS}={mode!r}: expected auto, true or false"
        )
    given = env.prometheus_multiproc_dir()
    server = detect_server()
    try:
        if given is not None:
            return _join_given(given, server)
        if mode == "false" or not port or os.name != "posix":
            if server is not None and mode != "false" and not port:
                _logger.info(
                    "otel-downstream: %s worker with no /metrics port of ours: a mounted "
                    "metrics_wsgi_app() shows this worker's figures only unless %s is set",
                    server,
                    env.PROMETHEUS_MULTIPROC_DIR,
                )
            return None
        if server is None and mode == "auto":
            existing = d.group_dir(addr, port, create=False)
            if existing is None or not _has_live_members(existing):
                return None  # a single process: no files, no per-span flush
            server = "joined"  # the port's group runs multiprocess mode: add to its sums
        path = d.group_dir(addr, port)
        assert path is not None
        group = WorkerGroup(path, server or "forced", owned=True)
        group.enter(master_of(server))
    except Exception as exc:
        _logger.warning(
            "otel-downstream: multiprocess mode for this %s worker could not be set up (%s); "
            "it goes on in single-process mode, and its figures reach Prometheus only while it "
            "serves /metrics itself. Set %s to a directory of your own (empty at server start)",
            server or "pre-fork",
            exc,
            env.PROMETHEUS_MULTIPROC_DIR,
        )
        return None
    os.environ[env.PROMETHEUS_MULTIPROC_DIR] = os.environ[OWN_DIR] = group.path
    _logger.info(
        "otel-downstream: %s worker group: multiprocess mode in %s", group.server, group.path
    )
    return group


def _join_given(given: str, server: str | None) -> WorkerGroup | None:
    """``PROMETHEUS_MULTIPROC_DIR`` is set: multiprocess mode is on whatever happens here; joining
    only lets the workers take the ``/metrics`` port over from one another."""
    if os.name != "posix" or not Path(given).is_dir():
        return None  # families.py says what is wrong with it
    group = WorkerGroup(given, server or "user", owned=os.environ.get(OWN_DIR) == given)
    try:
        group.enter(master_of(server))
    except Exception as exc:
        _logger.warning(
            "otel-downstream: cannot record this process in %s=%s (%s): the /metrics port is "
            "served by whichever worker binds it first, and not taken over when it goes",
            env.PROMETHEUS_MULTIPROC_DIR,
            given,
            exc,
        )
        return None
    return group


def _has_live_members(path: str) -> bool:
    """Whether ``path`` (a directory of ours) has a live member (checked, not created)."""
    with d.locked(path, owned=False):
        return bool(d.live(path, d.MEMBER))
