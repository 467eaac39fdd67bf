"""Serving ``/metrics``: the registry a scrape reads, and ``configure()``'s own-port server.

Kept apart from ``pipeline.py`` (which wires tracing and accounting) because serving is its own
concern with its own failure modes: a port another worker holds, multiprocess mode summing every
worker's files. ``metrics_wsgi_app()``/``metrics_asgi_app()`` stay in ``pipeline.py`` since they
serve the registry of the current ``configure()`` handle.

In a worker group (:mod:`.workers`) one member binds the port and serves the sum of every
member's files; every other member keeps a daemon thread that retries the bind once a second, so a
new member takes over within about a second when the one serving dies (SIGKILL), is recycled
(``--max-requests``) or replaced (a reload that starts new workers before stopping the old ones).
Binds are made under the group's lock, beside a record of who serves, so a member that cannot bind
knows whether the port is held by its own group (nothing to say) or by another process (its
figures are not reaching Prometheus: said in the log, counted in
``downstream_metrics_unserved_total``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from otel_downstream.agent import environment as env
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.workers.fold import GroupCollector
from otel_downstream.agent.workers.forks import track, untrack

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from otel_downstream.agent.workers.group import WorkerGroup

__all__ = ["MetricsServer", "exposition_registry"]

_logger = logging.getLogger("otel_downstream")

RETRY_SECONDS: Final = 1.0
"""How often a member that does not serve ``/metrics`` tries to take the port over."""
_FOREIGN_AFTER: Final = 3
"""Failed binds in a row, with no live member recorded as serving, before the port is said to be
held outside the group (a member that is just exiting has deregistered before its socket closes)."""

PORT_IN_USE: Final = "port_in_use"
PORT_OUTSIDE_GROUP: Final = "port_outside_group"


class MetricsServer:
    """``configure()``'s ``/metrics`` on ``addr:port``: serving, or standing by to take over."""

    def __init__(
        self,
        registry: CollectorRegistry,
        addr: str,
        port: int,
        *,
        group: WorkerGroup | None = None,
        on_unserved: Callable[[str], None] | None = None,
    ) -> None:
        self.addr = addr
        self.port = port
        self.group = group
        self._registry = registry
        self._served: CollectorRegistry | None = None  # built on the first bind: it marks the
        # registry as served, which a process that serves nothing must not do
        self._on_unserved = on_unserved
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._standby: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._warned = False
        self._said_standby = False
        self._misses = 0
        self._pid = os.getpid()

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound address while this process serves, else ``None``."""
        server = self._server
        if server is None:
            return None
        host, bound = server.server_address[:2]
        return str(host), int(bound)

    @property
    def serving(self) -> bool:
        return self._server is not None

    def start(self) -> MetricsServer:
        """Bind now if the port is free; in a group, else stand by. A port that is neither free
        nor held by the group is logged (the app starts all the same)."""
        track(self)
        if self.group is not None:
            try:
                served, ours = self.group.claim(self._try_bind)
            except _AddressError as exc:
                raise exc.error from None  # a setting to fix, said at configure()
            except Exception as exc:  # the group's directory failed us: serve as one process
                report_fault("agent.workers", exc)
                self.group = None
            else:
                if not served:
                    self._note_miss(ours)
                    self._start_standby()
                return self
        try:
            if not self._try_bind():
                self._unserved(PORT_IN_USE)
        except _AddressError as exc:
            raise exc.error from None
        return self

    def stop(self) -> None:
        """Stop serving (or standing by), and leave the port to the group."""
        self._stop.set()
        standby = self._standby
        if standby is not None and standby is not threading.current_thread():
            standby.join(RETRY_SECONDS + 5)
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(5)
            if self.group is not None:
                try:
                    self.group.release()
                except Exception as exc:
                    report_fault("agent.metrics_http", exc)
        untrack(self)

    def close_listener(self) -> None:
        """Release the port at once (a member on its way out), without waiting for the thread."""
        server = self._server
        if server is not None:
            with contextlib.suppress(OSError):
                server.socket.close()

    # --- binding --------------------------------------------------------------------------------

    def _try_bind(self) -> bool:
        """Bind and serve; ``False`` if the port is taken. Other errors (a wrong address, a
        privileged port) are raised: a setting to fix."""
        from prometheus_client import start_http_server

        try:
            _probe(self.addr, self.port)
            if self._served is None:
                self._served = exposition_registry(self._registry)
            server, thread = start_http_server(self.port, addr=self.addr, registry=self._served)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise _AddressError(exc) from exc
            return False
        with self._lock:
            self._server, self._thread = server, thread
        return True

    def _start_standby(self) -> None:
        self._standby = threading.Thread(
            target=self._stand_by, name="otel-downstream-metrics-standby", daemon=True
        )
        self._standby.start()

    def _stand_by(self) -> None:
        group = self.group
        assert group is not None
        while not self._stop.wait(RETRY_SECONDS):
            try:
                served, ours = group.claim(self._try_bind)
            except Exception as exc:  # the directory went away, a bad address: never the app's
                report_fault("agent.metrics_http", exc)
                continue
            if served:
                if self._stop.is_set():  # stop() raced the bind: undo it
                    self.stop()
                    return
                _logger.info(
                    "otel-downstream: this worker (pid %s) now serves /metrics on %s:%s for its "
                    "worker group",
                    os.getpid(),
                    self.addr,
                    self.port,
                )
                return
            self._note_miss(ours)

    def _note_miss(self, ours: bool) -> None:
        if ours:
            if not self._said_standby and self.group is not None:
                self._said_standby = True
                _logger.info(
                    "otel-downstream: /metrics on %s:%s is served by another worker of this "
                    "group (pid %s), with this worker's figures",
                    self.addr,
                    self.port,
                    self.group.holder_pid(),
                )
            self._misses = 0
            return
        self._misses += 1
        if self._misses >= _FOREIGN_AFTER:
            self._unserved(PORT_OUTSIDE_GROUP)

    def _unserved(self, reason: str) -> None:
        """Say (once) that this process's figures do not reach Prometheus, and count it."""
        if self._warned:
            return
        self._warned = True
        if reason == PORT_OUTSIDE_GROUP:
            why = (
                "it is held by a process outside this worker group (another program, or an app "
                "not running multiprocess mode); this worker keeps trying to take it over"
            )
        else:
            why = "it is already in use"
        _logger.warning(
            "otel-downstream: cannot serve /metrics on %s:%s: %s. This process's figures (pid %s) "
            "are NOT reaching Prometheus; accounting goes on. Set %s (and %s) to a free port, or "
            "pass metrics_port=None and mount metrics_wsgi_app(); for a pre-fork server whose "
            "workers are not detected, set %s=true or %s to a directory of your own",
            self.addr,
            self.port,
            why,
            os.getpid(),
            env.OTEL_DOWNSTREAM_METRICS_PORT,
            env.OTEL_DOWNSTREAM_METRICS_ADDR,
            env.OTEL_DOWNSTREAM_MULTIPROCESS,
            env.PROMETHEUS_MULTIPROC_DIR,
        )
        if self._on_unserved is not None:
            try:
                self._on_unserved(reason)
            except Exception as exc:
                report_fault("agent.metrics_http", exc)

    # --- fork ------------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """A forked child (the workers of a ``--preload`` master, or the app's own fork) holds a
        copy of the listening socket but no thread serving it: close it, and stand by."""
        if self._pid == os.getpid():
            return  # run already (uWSGI with --py-call-osafterfork calls both hooks)
        self._pid = os.getpid()
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.socket.close()
        self._lock = threading.Lock()
        self._standby = None
        self._misses = 0
        self._warned = self._said_standby = False  # a new process: its own log lines
        if self._stop.is_set():
            return
        self._stop = threading.Event()
        if self.group is not None:
            try:
                self.group.after_fork()
                self._start_standby()
            except Exception as exc:
                report_fault("agent.metrics_http", exc)


class _AddressError(Exception):
    """The address cannot be bound for another reason than being taken (carried through the
    group's lock, so it is not mistaken for a failure of the group's directory)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _probe(addr: str, port: int) -> None:
    """Bind ``addr:port`` and let go: ``EADDRINUSE`` if it is taken, before anything is built."""
    family, _, _, _, sockaddr = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(sockaddr)


def exposition_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """The registry to serve: under multiprocess mode, one summing every worker's files; either
    way seen through ``safe_registry``, so no label value can make the page unencodable."""
    from prometheus_client import CollectorRegistry as Registry

    from otel_downstream.exporters.metrics.exposition import safe_registry

    path = env.prometheus_multiproc_dir()
    if path is None:
        return safe_registry(registry)
    summed = Registry()
    summed.register(GroupCollector(path))
    return safe_registry(summed)
