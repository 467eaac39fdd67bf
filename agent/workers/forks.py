"""Forked children of a process that serves ``/metrics``: the workers of a ``--preload`` master,
or the app's own fork. Each such child holds a copy of the listening socket but no thread serving
it, so every tracked server is told, in the child, to close it and stand by. Apart from the server
because the hook is process-wide and installed once, for ``os.fork`` and uWSGI's fork from C.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["after_fork_in_child", "track", "untrack"]


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_tracked: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_hook_lock = threading.Lock()
_hook_installed = False


def track(server: ForkAware) -> None:
    """Tell ``server`` of every fork from now on (installs the hook the first time)."""
    _install_hook()
    _tracked.add(server)


def untrack(server: ForkAware) -> None:
    _tracked.discard(server)


def after_fork_in_child() -> None:
    """Run in every forked child of a process serving ``/metrics`` (``os.register_at_fork``; under
    uWSGI, which forks from C, its ``postfork`` hook)."""
    for server in list(_tracked):
        server._after_fork_in_child()


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        _hook_installed = True
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_fork_in_child)
    try:
        from uwsgidecorators import postfork
    except Exception:  # not under uWSGI (its decorators import the uwsgi module)
        return
    postfork(after_fork_in_child)
