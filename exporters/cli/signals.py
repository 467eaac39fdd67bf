"""SIGINT/SIGTERM as a stop request for the long-running sub-commands (serve, sample-host, demo).

The handlers only set an event: the command's own thread then stops its servers in order, which a
``KeyboardInterrupt`` raised mid-shutdown could not guarantee. The previous handlers come back on
exit, so a test or an embedding process that calls ``run()`` keeps its own.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["stop_on_signals"]


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets while the block runs."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
