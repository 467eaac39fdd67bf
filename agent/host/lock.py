"""One host sampler per service and host: an advisory file lock that the sampling process holds.

Under gunicorn or uWSGI every worker runs ``configure(host_sampler=True)``; with a fixed share (the
whole host by default) each would record the service's share and the host would be counted once per
worker. Whoever holds the service's lock samples; the other workers stand by and take over when it is
released (the holder stopped) or its process died, since the kernel drops a dead process's ``flock``.
Each service has its own lock, so two services sharing a host each record their own share; locks
are per user, since a lock file in a shared directory must not be another user's to hold.

``flock`` locks belong to an open file, so two samplers in one process exclude each other too. On
a platform without ``fcntl`` (Windows) every sampler samples: there the share setting must divide
the host between processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def default_lock_path(service_name: str) -> str:
    """The lock every process of ``service_name`` run by this user on this host (container) finds
    by itself: a readable part of the name plus a digest of all of it, so that names differing
    only in characters a file name cannot hold still get their own lock."""
    readable = _UNSAFE.sub("_", service_name)[:60] or "service"
    digest = hashlib.sha256(service_name.encode()).hexdigest()[:12]
    user = os.getuid() if hasattr(os, "getuid") else 0
    name = f"otel-downstream-host-sampler-{user}-{readable}-{digest}.lock"
    return str(Path(tempfile.gettempdir()) / name)


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

        Raises ``OSError`` when the lock file cannot be used (missing directory, or a file or link
        this user does not own at that path): the caller decides whether to sample anyway."""
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
        """Open the lock file, never through a symbolic link, and only if this user owns it: the
        path is predictable in a shared temporary directory, where another user could plant a link
        or hold a file of their own to stop the sampler."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)  # flock needs no write access
        try:
            info = os.fstat(fd)
            mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
            if not stat.S_ISREG(info.st_mode) or not mine:
                raise PermissionError(f"{self.path}: not a regular file of this user")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file drops the flock
