"""The watcher: a small process that removes a group's directory once every member and master is
gone, also when none of them could say so (SIGKILL, or a server that ends its workers by a
signal, as uvicorn does). One per directory, started by a member and recorded in ``watcher``;
run as ``python -m otel_downstream.agent.workers.watcher watch <dir>``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

from otel_downstream.agent.workers import directory as d
from otel_downstream.agent.workers.detect import identity

__all__ = ["ensure_watcher", "reap"]

WATCHER: Final = "watcher"
_WATCH_SECONDS: Final = 0.5


def ensure_watcher(path: str) -> None:
    """(Lock held.) Start the watcher of ``path`` unless it runs."""
    watcher = d.read_pid_record(Path(path) / WATCHER)
    if watcher is not None and identity(watcher[0]) == watcher[1]:
        return
    pid = _start(path)
    if pid is not None:
        d.write_atomic(Path(path) / WATCHER, f"{pid} {identity(pid)}")


def reap(path: str) -> bool:
    """(The watcher.) Remove the directory once no member and no master runs; ``True`` when
    there is nothing left to watch (removed, or another watcher took over)."""
    with d.locked(path, owned=False):  # never re-creates the directory
        watcher = d.read_pid_record(Path(path) / WATCHER)
        if watcher is None or watcher[0] != os.getpid():
            return True
        if d.live(path, d.MEMBER) or d.live(path, d.MASTER):
            return False
        d.wipe(path, keep_lock=False)
        return True


def _python() -> str | None:
    """A Python interpreter to run the watcher with (under uWSGI ``sys.executable`` is uWSGI)."""
    candidates = [sys.executable, str(Path(sys.exec_prefix) / "bin" / "python3")]
    for candidate in candidates:
        if candidate and Path(candidate).name.startswith("python") and Path(candidate).exists():
            return candidate
    return None


def _start(path: str) -> int | None:
    """Start the watcher of ``path``: detached, in a session of its own (a Ctrl-C meant for the
    server must not stop it before the server is gone), holding none of our descriptors."""
    import subprocess

    python = _python()
    if python is None:
        return None  # the directory is then wiped as stale at the next start
    process = subprocess.Popen(
        [python, "-m", "otel_downstream.agent.workers.watcher", "watch", path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process.pid


def watch_main(path: str) -> None:
    import time

    while True:
        time.sleep(_WATCH_SECONDS)
        try:
            if reap(path):
                return
        except OSError:
            return  # the directory is gone


if __name__ == "__main__" and sys.argv[1:2] == ["watch"]:
    watch_main(sys.argv[2])
