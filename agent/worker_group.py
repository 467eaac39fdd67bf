"""Pre-fork worker groups: one multiprocess directory per group, so one ``/metrics`` sums them all.

Under gunicorn, uWSGI, ``uvicorn --workers`` or ``hypercorn -w``, every worker runs ``configure()``
and counts its own requests, while only one of them can bind the ``/metrics`` port. prometheus-client's
multiprocess mode makes the figures of every worker readable by the one that serves: each process
writes its values into its own mmap files in one directory, and a scrape sums them.

``join()`` sets that up before the metrics are built, when it detects such a server (or when
``OTEL_DOWNSTREAM_MULTIPROCESS=true``): the directory is named after the user and the ``/metrics``
address and port, so every worker (and every new worker after a restart or a reload) finds the same
one without being told. The first member creates it (mode 0700; one owned by another user, a
symlink or anything but a directory is refused, as is a parent anyone may write to without the
sticky bit). Each member records its pid and start time (so a reused pid is not taken for the
member that died), and the server's master (the process that starts new workers) is recorded
too. Nothing is wiped or removed while a member or a master runs: the files of dead workers stay,
since counters never decrease, and a reload that stops the old workers before the new ones have
joined (gunicorn's HUP, hypercorn's) keeps every count. The last member out removes the directory
when no master runs either; otherwise a watcher process (one per directory, started by the first
member, ``python -m otel_downstream.agent.worker_group watch <dir>``) removes it once every member
and master is gone, which also covers members that could not say so (SIGKILL, uvicorn ending its
workers by a signal). A directory left by a group killed outright, watcher included, is stale: its
contents are wiped at the next start, a counter reset Prometheus handles. A
``PROMETHEUS_MULTIPROC_DIR`` set by the user is used as it is and never wiped nor removed. In a
directory of ours, the files of workers that have ended are folded into one file per kind when a
new member joins (:meth:`WorkerGroup._fold`), so recycling does not make every scrape slower.

Every operation on the directory runs under a lock of its ``.lock`` file, taken anew each time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from otel_downstream.agent import environment as env

__all__ = ["WorkerGroup", "detect_server", "group_dir", "join", "reading"]

_logger = logging.getLogger("otel_downstream")

_LOCK: Final = ".lock"
_HOLDER: Final = "holder"
_MEMBER: Final = "member-"
_LEADER: Final = "master-"
_WATCHER: Final = "watcher"
_FOLDED: Final = "folded.json"
_FOLD_AT: Final = 8
"""Files of dead workers, over all kinds, before they are folded into one file per kind."""
_FOLDABLE: Final = ("gauge_max", "counter", "histogram")
"""File kinds a fold may combine: counters and histograms add up, ``max`` gauges take the max."""
_WATCH_SECONDS: Final = 0.5
_OWN_DIR: Final = "_OTEL_DOWNSTREAM_OWN_MULTIPROC_DIR"
"""Set beside ``PROMETHEUS_MULTIPROC_DIR`` when the directory is ours, so a process that inherits
both (the workers of a ``--preload`` master, a re-executed master) manages it as ours."""


class UnsafeDirectory(Exception):
    """The group's directory cannot be used safely (another user's, a symlink, a file)."""


def detect_server() -> str | None:
    """The pre-fork server this process is a worker (or a preloading master) of, else ``None``."""
    if os.name != "posix":
        return None  # no fork, no flock: multiprocess mode is the user's to set up
    if _uwsgi_module() is not None:
        return "uwsgi"
    modules = sys.modules
    if "gunicorn.arbiter" in modules and "gunicorn.workers.base" in modules:
        return "gunicorn"  # a worker forked by the arbiter, or the arbiter itself with --preload
    mp = modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        return "multiprocessing"  # uvicorn --workers, hypercorn -w: spawned by a supervisor
    return None


def _uwsgi_module() -> object | None:
    if "uwsgi" in sys.modules:
        return sys.modules["uwsgi"]
    try:  # built into the uWSGI binary only; no such module elsewhere
        import uwsgi
    except ImportError:
        return None
    return uwsgi if hasattr(uwsgi, "numproc") else None


def group_dir(addr: str, port: int) -> str:
    """The directory every member of the group serving ``addr:port`` agrees on."""
    safe = re.sub(r"[^A-Za-z0-9.]", "_", addr)[:64]
    return str(Path(tempfile.gettempdir()) / f"otel-downstream-{os.getuid()}-{safe}-{port}")


def _identity(pid: int) -> str | None:
    """The start time of process ``pid`` (what tells a reused pid apart), or ``None`` if dead."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{process.create_time():.3f}"
    except psutil.Error:
        return None


_thread_lock = threading.Lock()
"""Held with every lock of a group's ``.lock`` file: record locks belong to the process, so two
of its threads would both get one (and the first to close its descriptor would drop both)."""


def _reset_after_fork() -> None:
    global _thread_lock
    _thread_lock = threading.Lock()  # a lock a parent thread held stays held in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class WorkerGroup:
    """This process's membership of a worker group's multiprocess directory."""

    def __init__(self, path: str, server: str, *, owned: bool) -> None:
        self.path = path
        self._dir = Path(path)
        self.server = server
        self.owned = owned  # created and removed by us (never a directory the user set)
        self._pid: int | None = None
        self._leader: tuple[int, str] | None = None

    # --- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the group's lock; re-made if the last member removed the directory meanwhile.

        A POSIX record lock (``lockf``), not ``flock``: a forked child neither inherits it nor can
        keep it held through a copied descriptor. Record locks are per process, so a thread lock
        keeps this process's threads apart as well."""
        import fcntl

        with _thread_lock:
            for _ in range(20):
                if self.owned:
                    _ensure_private_dir(self.path)
                lock_path = self._dir / _LOCK
                flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(lock_path, flags, 0o600)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                    try:
                        if lock_path.stat().st_ino != os.fstat(fd).st_ino:
                            continue  # removed (and maybe re-made) while we waited: lock again
                    except FileNotFoundError:
                        continue
                    yield
                    return
                finally:
                    os.close(fd)  # releases the lock
            raise OSError(errno.EAGAIN, f"{self.path}: the lock file keeps being removed")

    # --- membership ----------------------------------------------------------------------------

    def enter(self, leader: int | None = None) -> None:
        """Register this process (``leader``: the server's master, which outlives its workers);
        wipe the directory first if it is stale: no member and no recorded master alive."""
        with self._locked():
            if self.owned and not self._live_members() and not self._live_leaders():
                self._wipe(keep_lock=True)
            self._leader = _leader_record(leader)
            self._register()
            if self.owned:
                self._ensure_watcher()
                self._fold()

    def after_fork(self) -> None:
        """In a forked child: register the child, whose master is the parent it forked from."""
        if self._pid is None:
            return
        with self._locked():
            self._leader = _leader_record(os.getppid())
            self._register()

    def leave(self) -> None:
        """Deregister this process. The last member out removes the directory (if ours), unless
        the server's master lives on: then a new worker is on its way (a reload, a recycled last
        worker), and a small watcher removes the directory once the master is gone."""
        if self._pid != os.getpid():
            return  # not a member (never entered, left already, or a child that never joined)
        self._pid = None
        with self._locked():
            _unlink(self._dir / f"{_MEMBER}{os.getpid()}")
            holder = self._read_holder()
            if holder is not None and holder[0] == os.getpid():
                _unlink(self._dir / _HOLDER)
            if self.owned and not self._live_members():
                if self._live_leaders():
                    self._ensure_watcher()
                else:
                    self._wipe(keep_lock=False)
                    with contextlib.suppress(OSError):
                        self._dir.rmdir()
        if self.owned and os.environ.get(_OWN_DIR) == self.path:
            os.environ.pop(env.PROMETHEUS_MULTIPROC_DIR, None)
            os.environ.pop(_OWN_DIR, None)

    def reap(self) -> bool:
        """(The watcher.) Remove the directory once no member and no master runs; ``True`` when
        there is nothing left to watch (removed, or another watcher took over)."""
        with self._locked():
            watcher = _read_pid_record(self._dir / _WATCHER)
            if watcher is None or watcher[0] != os.getpid():
                return True
            if self._live_members() or self._live_leaders():
                return False
            self._wipe(keep_lock=False)
            with contextlib.suppress(OSError):
                self._dir.rmdir()
            return True

    def _ensure_watcher(self) -> None:
        """(Lock held.) Start the watcher unless it runs: it removes the directory when every
        member and master is gone, also when none of them could say so (SIGKILL, or a server
        that ends its workers with a signal, as uvicorn does)."""
        watcher = _read_pid_record(self._dir / _WATCHER)
        if watcher is not None and _identity(watcher[0]) == watcher[1]:
            return
        pid = _start_watcher(self.path)
        if pid is not None:
            _write_atomic(self._dir / _WATCHER, f"{pid} {_identity(pid)}")

    def _register(self) -> None:
        pid = os.getpid()
        if self._leader is not None:  # kept after its workers leave: the master outlives them
            _write_atomic(self._dir / f"{_LEADER}{self._leader[0]}", self._leader[1])
        _write_atomic(self._dir / f"{_MEMBER}{pid}", _identity(pid) or "?")
        self._pid = pid

    def _live(self, prefix: str) -> list[int]:
        """Pids of the ``prefix`` records (members or masters) whose process still runs."""
        live = []
        for entry in os.scandir(self.path):
            if not entry.name.startswith(prefix):
                continue
            try:
                pid = int(entry.name[len(prefix) :])
                recorded = Path(entry.path).read_text(encoding="ascii").strip()
            except (ValueError, OSError):
                continue
            if pid != os.getpid() and _identity(pid) == recorded:
                live.append(pid)
        return live

    def _live_members(self) -> list[int]:
        return self._live(_MEMBER)

    def _live_leaders(self) -> list[int]:
        """The servers' masters recorded by members (gone or not) that still run."""
        return self._live(_LEADER)

    def _wipe(self, *, keep_lock: bool) -> None:
        for entry in os.scandir(self.path):
            if keep_lock and entry.name == _LOCK:
                continue
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                _unlink(Path(entry.path))

    # --- folding the files of dead workers -----------------------------------------------------

    def _fold(self) -> None:
        """(Lock held.) Fold the files of workers that are gone into one file per kind, so a
        scrape reads a bounded number of files however many workers were recycled.

        Nothing is read twice, or missed, by a scrape (which reads under the same lock): the
        folded file is written first, then ``folded.json`` is replaced in one step to name it and
        exclude what it holds, and only then are those files deleted. A fold cut short leaves
        files that ``folded.json`` either does not name yet (an unused folded file) or already
        excludes (sources not yet deleted)."""
        import psutil
        from prometheus_client.mmap_dict import MmapedDict

        manifest = _read_manifest(self._dir)
        excluded = set(manifest["excluded"])
        archives: dict[str, str] = dict(manifest["archives"])
        live = set(self._live_members())
        dead: dict[str, list[str]] = {}
        for entry in os.scandir(self.path):
            split = _split_db(entry.name)
            if split is None or entry.name in excluded or not split[1].isdigit():
                continue
            pid = int(split[1])
            if pid in live or pid == os.getpid() or psutil.pid_exists(pid):
                continue  # a writer that may still write (or a pid now reused: folded later)
            dead.setdefault(split[0], []).append(entry.name)
        if sum(len(names) for names in dead.values()) < _FOLD_AT:
            return
        generation = int(manifest["generation"]) + 1
        gone: list[str] = []
        for kind, names in dead.items():
            sources = ([archives[kind]] if kind in archives else []) + names
            values: dict[str, float] = {}
            for name in sources:
                read: Callable[[str], Iterator[tuple[str, float, float, int]]] = (
                    MmapedDict.read_all_values_from_file
                )
                for key, value, _, _ in read(str(self._dir / name)):
                    if key not in values:
                        values[key] = value
                    elif kind == "gauge_max":
                        values[key] = max(values[key], value)
                    else:
                        values[key] += value
            target = self._dir / f"{kind}_folded{generation}.db"
            _unlink(target)  # left by a fold cut short: never named, never read
            folded = MmapedDict(str(target))  # type: ignore[no-untyped-call]
            try:
                for key, value in values.items():
                    folded.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
            finally:
                folded.close()  # type: ignore[no-untyped-call]
            gone += sources
            archives[kind] = target.name
        _write_manifest(self._dir, generation, archives, excluded | set(gone))  # the switch
        for name in gone:
            _unlink(self._dir / name)
        _write_manifest(self._dir, generation, archives, set())

    # --- who serves /metrics -------------------------------------------------------------------

    def claim(self, try_bind: Callable[[], bool]) -> tuple[bool, bool]:
        """Under the group lock, ``try_bind()``: ``(True, True)`` if this process now serves,
        else ``(False, whether the port's holder is a live member of the group)``."""
        with self._locked():
            if try_bind():
                _write_atomic(self._dir / _HOLDER, f"{os.getpid()} {_identity(os.getpid())}")
                return True, True
            holder = self._read_holder()
            return False, holder is not None and _identity(holder[0]) == holder[1]

    def release(self) -> None:
        """This process stopped serving: forget it as the holder."""
        with self._locked():
            holder = self._read_holder()
            if holder is not None and holder[0] == os.getpid():
                _unlink(self._dir / _HOLDER)

    def holder_pid(self) -> int | None:
        """The pid recorded as serving ``/metrics`` (for the log)."""
        holder = self._read_holder()
        return holder[0] if holder else None

    def _read_holder(self) -> tuple[int, str] | None:
        return _read_pid_record(self._dir / _HOLDER)


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
        path = group_dir(addr, port)
        if server is None and mode == "auto":
            if not _has_live_members(path):
                return None  # a single process: no files, no per-span flush
            server = "joined"  # the port's group runs multiprocess mode: add to its sums
        group = WorkerGroup(path, server or "forced", owned=True)
        group.enter(leader_of(server))
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
    os.environ[env.PROMETHEUS_MULTIPROC_DIR] = os.environ[_OWN_DIR] = group.path
    _logger.info(
        "otel-downstream: %s worker group: multiprocess mode in %s", group.server, group.path
    )
    return group


def _join_given(given: str, server: str | None) -> WorkerGroup | None:
    """``PROMETHEUS_MULTIPROC_DIR`` is set: multiprocess mode is on whatever happens here; joining
    only lets the workers take the ``/metrics`` port over from one another."""
    if os.name != "posix" or not Path(given).is_dir():
        return None  # families.py says what is wrong with it
    group = WorkerGroup(given, server or "user", owned=os.environ.get(_OWN_DIR) == given)
    try:
        group.enter(leader_of(server))
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
    """Whether ``path`` is a group directory of ours with a live member (checked, not created)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    group = WorkerGroup(path, "joined", owned=False)
    with group._locked():
        return bool(group._live_members())


def _split_db(name: str) -> tuple[str, str] | None:
    """``("counter", "1234")`` for ``counter_1234.db``; ``None`` for a kind never folded."""
    if not name.endswith(".db"):
        return None
    stem = name[:-3]
    for kind in _FOLDABLE:
        if stem.startswith(kind + "_"):
            return kind, stem[len(kind) + 1 :]
    return None


def _read_manifest(directory: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads((directory / _FOLDED).read_text(encoding="utf-8"))
        return {
            "generation": int(data["generation"]),
            "archives": {str(k): str(v) for k, v in data["archives"].items()},
            "excluded": [str(name) for name in data["excluded"]],
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"generation": 0, "archives": {}, "excluded": []}


def _write_manifest(
    directory: Path, generation: int, archives: dict[str, str], excluded: set[str]
) -> None:
    import json

    text = json.dumps(
        {"generation": generation, "archives": archives, "excluded": sorted(excluded)}
    )
    _write_atomic(directory / _FOLDED, text)


@contextlib.contextmanager
def reading(path: str) -> Iterator[list[str]]:
    """The ``*.db`` files a scrape of ``path`` must read, held still while it reads them: under
    the group's lock (when the directory has one), without files a fold already holds."""
    import fcntl

    directory = Path(path)
    with _thread_lock:
        try:
            fd = os.open(directory / _LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            fd = -1  # not a group's directory (or not yet): nothing folds it
        try:
            if fd >= 0:
                fcntl.lockf(fd, fcntl.LOCK_EX)
            manifest = _read_manifest(directory)
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


def _read_pid_record(path: Path) -> tuple[int, str] | None:
    try:
        pid, identity = path.read_text(encoding="ascii").split()
        return int(pid), identity
    except (OSError, ValueError):
        return None


def _leader_record(pid: int | None) -> tuple[int, str] | None:
    if not pid or pid == os.getpid():
        return None
    identity = _identity(pid)
    return None if identity is None else (pid, identity)


def leader_of(server: str | None) -> int | None:
    """The process that outlives this worker and starts its replacements (the server's master),
    or ``None`` when this process is the master itself (gunicorn ``--preload``, uWSGI's master)."""
    if server == "gunicorn":
        frame = sys._getframe(1)
        while frame is not None:  # a worker runs its whole life inside the arbiter's spawn_worker
            code = frame.f_code
            if code.co_name == "spawn_worker" and code.co_filename.endswith("arbiter.py"):
                return os.getppid()
            frame = frame.f_back  # type: ignore[assignment]
        return None  # --preload: configure() runs in the arbiter before it forks
    if server == "uwsgi":
        uwsgi = _uwsgi_module()
        worker_id = getattr(uwsgi, "worker_id", lambda: 0)()
        return os.getppid() if worker_id else None
    if server == "multiprocessing":
        parent = sys.modules["multiprocessing"].parent_process()
        return None if parent is None else parent.pid
    return None


def _python() -> str | None:
    """A Python interpreter to run the watcher with (under uWSGI ``sys.executable`` is uWSGI)."""
    candidates = [sys.executable, str(Path(sys.exec_prefix) / "bin" / "python3")]
    for candidate in candidates:
        if candidate and Path(candidate).name.startswith("python") and Path(candidate).exists():
            return candidate
    return None


def _start_watcher(path: str) -> int | None:
    """Start the watcher of ``path``: detached, in a session of its own (a Ctrl-C meant for the
    server must not stop it before the server is gone), holding none of our descriptors."""
    import subprocess

    python = _python()
    if python is None:
        return None  # the directory is then wiped as stale at the next start
    process = subprocess.Popen(
        [python, "-m", "otel_downstream.agent.worker_group", "watch", path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process.pid


def _watch_main(path: str) -> None:
    import time

    group = WorkerGroup(path, "watcher", owned=False)  # never re-creates the directory
    while True:
        time.sleep(_WATCH_SECONDS)
        try:
            if group.reap():
                return
        except OSError:
            return  # the directory is gone


def _ensure_private_dir(path: str) -> None:
    """Create ``path`` (0700) or check the one there: a directory of ours, not a symlink."""
    parent = Path(path).parent
    pst = parent.stat()
    if pst.st_mode & stat.S_IWOTH and not pst.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{parent} is writable by anyone and not sticky")
    with contextlib.suppress(FileExistsError):
        Path(path).mkdir(mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeDirectory(f"{path} is not a directory (a symlink?): {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise UnsafeDirectory(f"{path} belongs to uid {st.st_uid}, not {os.getuid()}")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)
    tmp.replace(path)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


if __name__ == "__main__" and sys.argv[1:2] == ["watch"]:
    _watch_main(sys.argv[2])
