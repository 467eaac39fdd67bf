"""The group's private directory: where it is, making and checking it, its lock and its records.

Every worker of a group must find the same directory without being told, and no other local user
may be able to take its name: the base is ``$XDG_RUNTIME_DIR`` when it is ours and 0700, else
``~/.cache/otel-downstream`` (0700) when ``~/.cache`` exists and is ours, else the temporary
directory, where another user may create the name first. A name there that is not a directory of
ours is skipped for the next of a few numbered alternatives, checked in the same order by every
worker.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from otel_downstream.agent.workers.detect import identity

__all__ = ["UnsafeDirectory", "group_dir", "locked"]

LOCK: Final = ".lock"
MEMBER: Final = "member-"
MASTER: Final = "master-"
ALTERNATIVES: Final = 8
"""Names tried in the temporary directory (``<name>``, ``<name>.1`` ...) when taken by others."""


class UnsafeDirectory(Exception):
    """The group's directory cannot be used safely (another user's, a symlink, a file)."""


def _private(path: Path) -> bool:
    """Whether ``path`` is a real directory of ours that nobody else may write to."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def base_dir() -> tuple[Path, bool]:
    """Where group directories are made, and whether others may create names there."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if (
        runtime
        and Path(runtime).is_absolute()
        and _private(Path(runtime))
        and not stat.S_IMODE(os.lstat(runtime).st_mode) & 0o077
    ):
        return Path(runtime), False
    home = os.environ.get("HOME", "")
    if home and Path(home).is_absolute() and _private(Path(home)) and os.access(home, os.W_OK):
        cache = Path(home) / ".cache"  # never made here: its existence must not change while
        try:  # a server's workers start (a server may create a missing home as they do)
            if _private(cache):
                ours = cache / "otel-downstream"
                with contextlib.suppress(FileExistsError):
                    ours.mkdir(mode=0o700)
                if _private(ours):
                    return ours, False
        except OSError:
            pass
    return Path(tempfile.gettempdir()), True


def _candidates(addr: str, port: int) -> list[Path]:
    safe = re.sub(r"[^A-Za-z0-9.]", "_", addr)[:64]
    base, shared = base_dir()
    name = f"otel-downstream-{os.getuid()}-{safe}-{port}"
    first = base / name
    return [first] + ([base / f"{name}.{n}" for n in range(1, ALTERNATIVES)] if shared else [])


def group_dir(addr: str, port: int, *, create: bool = True) -> str | None:
    """The directory every member of the group serving ``addr:port`` agrees on: the first
    candidate that is a directory of ours, or free (then created 0700 when ``create``; else
    ``None``: no group yet). Names taken by others are skipped, the same way by every worker."""
    candidates = _candidates(addr, port)
    if create:
        _check_parent(candidates[0].parent)
    for path in candidates:
        if create:
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None  # not created (create=False): the group would be made here
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            return str(path)
    raise UnsafeDirectory(
        f"{candidates[0]} and its {ALTERNATIVES - 1} alternatives are taken by other users"
    )


def _check_parent(parent: Path) -> None:
    pst = parent.stat()
    if pst.st_mode & stat.S_IWOTH and not pst.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{parent} is writable by anyone and not sticky")


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (0700) or check the one there: a directory of ours, not a symlink."""
    _check_parent(Path(path).parent)
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


thread_lock = threading.Lock()
"""Held with every lock of a group's ``.lock`` file: record locks belong to the process, so two
of its threads would both get one (and the first to close its descriptor would drop both)."""


def _reset_after_fork() -> None:
    global thread_lock
    thread_lock = threading.Lock()  # a lock a parent thread held stays held in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def locked(path: str, *, owned: bool) -> Iterator[None]:
    """Hold the group's lock; the directory is re-made (``owned``) if the last member removed it
    meanwhile.

    A POSIX record lock (``lockf``), not ``flock``: a forked child neither inherits it nor can
    keep it held through a copied descriptor. Record locks are per process, so a thread lock
    keeps this process's threads apart as well."""
    import fcntl

    with thread_lock:
        for _ in range(20):
            if owned:
                ensure_private_dir(path)
            lock_path = Path(path) / LOCK
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
        raise OSError(errno.EAGAIN, f"{path}: the lock file keeps being removed")


def live(path: str, prefix: str) -> list[int]:
    """(Lock held.) Pids of the ``prefix`` records (members or masters) whose process runs."""
    pids = []
    for entry in os.scandir(path):
        if not entry.name.startswith(prefix):
            continue
        try:
            pid = int(entry.name[len(prefix) :])
            recorded = Path(entry.path).read_text(encoding="ascii").strip()
        except (ValueError, OSError):
            continue
        if pid != os.getpid() and identity(pid) == recorded:
            pids.append(pid)
    return pids


def wipe(path: str, *, keep_lock: bool) -> None:
    """(Lock held.) Remove every file of the directory (and the directory, unless ``keep_lock``)."""
    for entry in os.scandir(path):
        if keep_lock and entry.name == LOCK:
            continue
        if entry.is_file(follow_symlinks=False) or entry.is_symlink():
            unlink(Path(entry.path))
    if not keep_lock:
        with contextlib.suppress(OSError):
            Path(path).rmdir()


def read_pid_record(path: Path) -> tuple[int, str] | None:
    try:
        pid, started = path.read_text(encoding="ascii").split()
        return int(pid), started
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)
    tmp.replace(path)


def unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
