"""gunicorn with several workers, each measured, one /metrics summing them all.

Run it:   gunicorn -c examples/gunicorn_multiworker/gunicorn.conf.py
          -> the shop on http://127.0.0.1:8000 (2 workers), footprint metrics of every worker
             summed at http://127.0.0.1:8000/metrics

Each worker is its own process with its own counters, so prometheus-client's multiprocess mode
keeps every worker's values in files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` (served
by whichever worker answers) sums the files. The directory must exist before the workers start, be
empty at each start and belong to one master; a dead worker's gauges are marked so they stop
counting.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
chdir = str(Path(__file__).resolve().parent)
wsgi_app = "app:application"
control_socket_disable = (
    True  # gunicorn >= 27 opens ~/.gunicorn/gunicorn.ctl otherwise; not needed here
)
# No preload_app: each worker imports app.py after the fork and calls configure() itself, so no
# tracer, thread or socket is shared across the fork.

_OWN_DIR_MARK = "OTEL_DOWNSTREAM_EXAMPLE_MULTIPROC_DIR"
"""Where this config put its own directory: a re-exec'd master (USR2) inherits both variables, and
must make a fresh directory rather than empty the one the old master's workers still write to."""

_chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_user_dir = _chosen if _chosen and _chosen != os.environ.get(_OWN_DIR_MARK) else None
_own_dir: str | None = _chosen if _chosen and _chosen == os.environ.get(_OWN_DIR_MARK) else None
"""Ours to remove on exit. Set here too, not only in on_starting: HUP re-reads this file in the
same master without running on_starting, and the directory made before is still this master's.
(A USR2 master also starts with it, then on_starting gives it a fresh one.)"""


def on_starting(server: Any) -> None:
    """Each master counts in a directory of its own, empty at start.

    A fixed shared path would let a second master (another port, a test run) wipe the files the
    first one's workers are writing. Without ``PROMETHEUS_MULTIPROC_DIR`` a fresh temporary
    directory is made (and removed on exit); a directory you set is emptied, so values of a previous
    run are not summed again, and is yours to keep apart from other masters.
    """
    global _own_dir
    if _user_dir is not None:
        shutil.rmtree(_user_dir, ignore_errors=True)
        Path(_user_dir).mkdir(parents=True)
        return
    _own_dir = tempfile.mkdtemp(prefix="otel-downstream-gunicorn-")
    # Set before the workers fork: they import prometheus_client, which reads it, after the fork.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWN_DIR_MARK] = _own_dir


def on_exit(server: Any) -> None:
    if _own_dir is not None:
        shutil.rmtree(_own_dir, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
