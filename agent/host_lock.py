"""One host sampler per service and host: an advisory file lock that the sampling process holds.

Under gunicorn or uWSGI every worker runs ``configure(host_sampler=True)``; with a fixed share (the
whole host by default) each would record the service's share and the host would be counted once per
worker. Whoever holds the service's lock samples; the other workers stand by and take over when it is
released (the holder stopped) or its process died, since the kernel drops a dead process's ``flock``.
Each service has its own lock, so two services sharing a host each record their own share.

``flock`` locks belong to an open file, so two samplers in one process exclude each other too. On
a platform without ``fcntl`` (Windows) every sampler samples: there the share setting must divide
the host between processes.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_lock_path(service_name: str) -> str:
    """The lock every process of ``service_name`` on this host (container) finds by itself."""
    safe = _UNSAFE.sub("_", service_name)[:100] or "unknown_service"
    return str(Path(tempfile.gettempdir()) / f"otel-downstream-host-sampler-{safe}.lock")


class HostLock:
    """A non-blocking exclusive lock on ``path``; ``try_acquire`` may be called on every tick."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True while this object holds it.

        Raises ``OSError`` when the lock file can be neither created nor opened: the caller decides
        whether to sample anyway."""
        if self._fd is not None:
            return True
        if fcntl is None:
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _open(self) -> int:
        """Open for locking; a file another user created (0644 under the usual umask) is opened
        read-only, which is all ``flock`` needs, so users share one lock."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            return os.open(self.path, os.O_RDONLY)
        with contextlib.suppress(OSError):  # not our file: read-write access was enough
            os.fchmod(fd, 0o666)  # so that other users' workers can open it read-write too
        return fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file drops the flock
