"""gunicorn with several workers, each measured, one /metrics summing them all.

Run it:   gunicorn -c examples/gunicorn_multiworker/gunicorn.conf.py
          -> the shop on http://127.0.0.1:8000 (2 workers), footprint metrics of every worker
             summed at http://127.0.0.1:8000/metrics

Each worker is its own process with its own counters, so prometheus-client's multiprocess mode
keeps every worker's values in files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` (served
by whichever worker answers) sums the files. The directory must exist before the workers start and
be emptied at each start; a dead worker's gauges are marked so they stop counting.
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

_METRICS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "otel-downstream-gunicorn")
)


def on_starting(server: Any) -> None:
    """Start from empty files: values of a previous run must not be summed again."""
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
    Path(_METRICS_DIR).mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
