"""One host sampler per host: an advisory file lock that the sampling process holds.

Under gunicorn or uWSGI every worker runs ``configure(host_sampler=True)``; with a fixed share (the
whole host by default) each would record the whole host and the host would be counted once per
worker. Whoever holds this lock samples; the others stand by and take over when it is released
(the holder stopped) or its process died, since the kernel drops a dead process's ``flock``.

``flock`` locks belong to an open file, so two samplers in one process exclude each other too. On
a platform without ``fcntl`` (Windows) every sampler samples: there the share setting must divide
the host between processes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

DEFAULT_LOCK_PATH = str(Path(tempfile.gettempdir()) / "otel-downstream-host-sampler.lock")
"""Shared by every process of this host (container) that uses the default temporary directory."""


class HostLock:
    """A non-blocking exclusive lock on ``path``; ``try_acquire`` may be called on every tick."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True while this object holds it.

        Raises ``OSError`` when the lock file cannot be opened (e.g. another user's file): the
        caller decides whether to sample anyway."""
        if self._file is not None:
            return True
        if fcntl is None:
            return True
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        file = os.fdopen(handle, "r+b")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        except BaseException:
            file.close()
            raise
        self._file = file
        return True

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing the last descriptor of the open file drops the flock
