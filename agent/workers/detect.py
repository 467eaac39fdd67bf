"""Which pre-fork server this process runs under, which process is its master, and whether a
recorded process still runs.

Apart from the directory code because it reads the process, not the file system: the server is
known from the modules it imported, its master from the call stack or the parent process, and a
reused pid is told apart from the recorded one by its start time.
"""

from __future__ import annotations

import os
import sys

__all__ = ["detect_server", "identity", "master_of", "master_record"]


def detect_server() -> str | None:
    """The pre-fork server this process is a worker (or a preloading master) of, else ``None``."""
    if os.name != "posix":
        return None  # no fork, no lockf: multiprocess mode is the user's to set up
    if uwsgi_module() is not None:
        return "uwsgi"
    modules = sys.modules
    if "gunicorn.arbiter" in modules and "gunicorn.workers.base" in modules:
        return "gunicorn"  # a worker forked by the arbiter, or the arbiter itself with --preload
    mp = modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        return "multiprocessing"  # uvicorn --workers, hypercorn -w: spawned by a supervisor
    return None


def uwsgi_module() -> object | None:
    if "uwsgi" in sys.modules:
        return sys.modules["uwsgi"]
    try:  # built into the uWSGI binary only; no such module elsewhere
        import uwsgi
    except ImportError:
        return None
    return uwsgi if hasattr(uwsgi, "numproc") else None


def identity(pid: int) -> str | None:
    """The start time of process ``pid`` (what tells a reused pid apart), or ``None`` if dead."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{process.create_time():.3f}"
    except psutil.Error:
        return None


def master_of(server: str | None) -> int | None:
    """The server's master: the process that outlives this worker and starts its replacements;
    ``None`` when this process is the master itself (gunicorn ``--preload``, uWSGI's master)."""
    if server == "gunicorn":
        frame = sys._getframe(1)
        while frame is not None:  # a worker runs its whole life inside the arbiter's spawn_worker
            code = frame.f_code
            if code.co_name == "spawn_worker" and code.co_filename.endswith("arbiter.py"):
                return os.getppid()
            frame = frame.f_back  # type: ignore[assignment]
        return None  # --preload: configure() runs in the arbiter before it forks
    if server == "uwsgi":
        uwsgi = uwsgi_module()
        worker_id = getattr(uwsgi, "worker_id", lambda: 0)()
        return os.getppid() if worker_id else None
    if server == "multiprocessing":
        parent = sys.modules["multiprocessing"].parent_process()
        return None if parent is None else parent.pid
    return None


def master_record(pid: int | None) -> tuple[int, str] | None:
    """``(pid, start time)`` of the master ``pid``, or ``None`` (no master, or this process)."""
    if not pid or pid == os.getpid():
        return None
    started = identity(pid)
    return None if started is None else (pid, started)
