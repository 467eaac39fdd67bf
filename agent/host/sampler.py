"""Customer-hosted infrastructure: sample this host's energy and hand it to the footprint pipeline.

Every interval the sampler turns readings into joules (RAPL and NVML counters when the host exposes
them, otherwise the power model of :mod:`.power`) and records one INTERNAL span named
``downstream.host.sample`` carrying ``downstream.host.*`` attributes. Spans, not metrics, so that the
same processor accounts them in-process and ``otel-downstream serve`` accounts them over OTLP: the
dashboards need nothing new. Energy → CO₂e and water happens in the exporter, off this thread.

The sampler never harms the host process: every failure falls back to the model (said once,
counted through ``faults``) and the thread is a daemon that stops on ``stop()`` with a final sample.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from otel_downstream.agent import attributes as A
from otel_downstream.agent import environment as env
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.host.inputs import (
    clamp,
    country_code,
    open_reader,
    psutil_cpu,
    psutil_process_cpu,
    service_name_of,
    share_setting,
)
from otel_downstream.agent.host.lock import HostLock, default_lock_path
from otel_downstream.agent.host.nvml import NvmlReader, NvmlUnavailable
from otel_downstream.agent.host.power import (
    HostProfile,
    cpu_watts,
    embodied_grams_per_second,
    gpu_watts,
    memory_watts,
    resolve_profile,
    storage_watts,
)
from otel_downstream.agent.host.rapl import DEFAULT_ROOT, RaplReader, RaplUnavailable

DEFAULT_INTERVAL_S = 15.0


@dataclass(frozen=True, slots=True)
class HostSample:
    """One interval's reading, as recorded on the span."""

    interval_s: float
    energy_j: float
    method: str  # "measured", "modelled" or "mixed" (measured CPU, modelled GPU/storage)
    cpu_utilisation: float
    share: float
    embodied_co2e_g: float


class HostSampler:
    """Samples host energy every ``interval_s`` seconds on a daemon thread.

    Arguments win over ``OTEL_DOWNSTREAM_HOST_*`` variables, which win over defaults; all are read
    here, once. A bad value raises ``ValueError`` now, naming the setting, rather than later on the
    sampling thread.

    With a fixed share, a started sampler records only while it holds its service's host lock
    (see :mod:`.lock`; the service is ``service_name``, else the provider's ``service.name``;
    ``lock_path`` overrides where it lives), so the workers of one server
    count the service's share once; the others stand by. With ``share="process"`` each process
    records its own share and takes no lock. ``host_lock=False`` turns the lock off.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        interval_s: float | None = None,
        profile: str | None = None,
        profile_overrides: dict[str, Any] | None = None,
        country: str | None = None,
        pue: float | None = None,
        share: float | str | None = None,
        include_embodied: bool | None = None,
        powercap_root: str | None = None,
        gpu_utilisation: float | None = None,
        cpu_reader: Callable[[], float] | None = None,
        process_cpu_reader: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        host_lock: bool = True,
        lock_path: str | None = None,
        service_name: str | None = None,
    ) -> None:
        self.interval_s = (
            interval_s
            if interval_s is not None
            else env.env_float(env.OTEL_DOWNSTREAM_HOST_INTERVAL, DEFAULT_INTERVAL_S)
        )
        if not self.interval_s > 0:
            raise ValueError(f"host sampler interval_s={self.interval_s!r} must be > 0")
        self.profile: HostProfile = resolve_profile(
            profile or env.env_str(env.OTEL_DOWNSTREAM_HOST_PROFILE, "auto"), profile_overrides
        )
        self.country = country_code(country or env.env_str(env.OTEL_DOWNSTREAM_HOST_COUNTRY, "ZZ"))
        self.pue = pue if pue is not None else env.env_float(env.OTEL_DOWNSTREAM_HOST_PUE, 1.0)
        if not self.pue >= 1.0:
            raise ValueError(f"host sampler pue={self.pue!r} must be >= 1.0")
        self._share_mode = share_setting(share, env.env_str(env.OTEL_DOWNSTREAM_HOST_SHARE, "1.0"))
        self.include_embodied = (
            include_embodied
            if include_embodied is not None
            else env.env_bool(env.OTEL_DOWNSTREAM_HOST_EMBODIED, False)
        )
        self.gpu_utilisation = (
            gpu_utilisation
            if gpu_utilisation is not None
            else env.env_float(env.OTEL_DOWNSTREAM_HOST_GPU_UTILISATION, 0.5)
        )
        if not 0.0 <= self.gpu_utilisation <= 1.0:
            raise ValueError(
                f"host sampler gpu_utilisation={self.gpu_utilisation!r} must be within 0..1"
            )
        root = powercap_root or env.env_str(
            env.OTEL_DOWNSTREAM_HOST_POWERCAP_ROOT, str(DEFAULT_ROOT)
        )
        self._rapl = open_reader(lambda: RaplReader(root), RaplUnavailable)
        self._nvml = open_reader(NvmlReader, NvmlUnavailable) if self.profile.gpu_count else None
        self._cpu_reader = cpu_reader or psutil_cpu()
        self._process_cpu_reader = process_cpu_reader or psutil_process_cpu()
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("otel_downstream.agent.host.sampler")
        self._host_lock = (
            HostLock(lock_path or default_lock_path(service_name or service_name_of(provider)))
            if host_lock and isinstance(self._share_mode, float)
            else None
        )
        self._standby = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last = clock()
        self._last_wall_ns = wall_clock_ns()
        self._cpu_reader()  # prime psutil's "since last call" counters
        self._process_cpu_reader()

    @property
    def measuring(self) -> bool:
        """Whether a hardware energy counter is in use (else the power model)."""
        return self._rapl is not None

    @property
    def standing_by(self) -> bool:
        """Whether a started sampler is waiting for another process to release the host lock."""
        return self._standby

    def start(self) -> HostSampler:
        if self._thread is None:
            self._stop.clear()  # a sampler stopped earlier can be started again
            self._standby = not self._take_lock()
            if not self._standby:
                self._restart_interval()  # time before start() is not this sampler's to count
            self._thread = threading.Thread(
                target=self._run, name="otel-downstream-host-sampler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and record the partial last interval, so no energy is lost; a second
        ``stop()`` records nothing."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return  # never started, or stopped already: no interval of ours to close
        thread.join(timeout)
        if not self._standby:
            self._safe_sample()
        self._standby = False
        if self._host_lock is not None:
            self._host_lock.release()

    def sample_once(self) -> HostSample | None:
        """Account the time since the previous sample; None when no time has passed."""
        with self._lock:
            now = self._clock()
            now_wall = self._wall_clock_ns()
            elapsed = now - self._last
            start_wall = self._last_wall_ns
            self._last, self._last_wall_ns = now, now_wall
            if elapsed <= 0:
                if elapsed < 0:
                    report_fault("host_sampler", RuntimeError(f"clock went back {-elapsed:.3f} s"))
                return None
            sample = self._measure(elapsed)
            self._record(sample, start_wall, max(now_wall, start_wall))
            return sample

    def _measure(self, elapsed: float) -> HostSample:
        cpu_u = clamp(self._cpu_reader())
        share = (
            self._share_mode if isinstance(self._share_mode, float) else self._process_share(cpu_u)
        )
        measured_parts = 0
        modelled_parts = 0
        # storage is always modelled (no counter covers it); memory too, unless RAPL's dram
        # zones measured it this interval, or it would be counted twice
        energy = storage_watts(self.profile) * elapsed
        cpu_j = self._read_counter(self._rapl, elapsed, RaplUnavailable)
        if cpu_j is None:
            energy += (cpu_watts(self.profile, cpu_u) + memory_watts(self.profile)) * elapsed
            modelled_parts += 1
        else:
            energy += cpu_j
            if not self._rapl.measures_memory:
                energy += memory_watts(self.profile) * elapsed
            measured_parts += 1
        if self.profile.gpu_count:
            gpu_j = self._read_counter(self._nvml, elapsed, NvmlUnavailable)
            if gpu_j is None:
                energy += gpu_watts(self.profile, self.gpu_utilisation) * elapsed
                modelled_parts += 1
            else:
                energy += gpu_j
                measured_parts += 1
        method = "modelled" if not measured_parts else "measured" if not modelled_parts else "mixed"
        embodied = (
            embodied_grams_per_second(self.profile) * elapsed if self.include_embodied else 0.0
        )
        return HostSample(elapsed, energy, method, cpu_u, share, embodied)

    def _read_counter(
        self, reader: Any, elapsed: float, unavailable: type[Exception]
    ) -> float | None:
        if reader is None:
            return None
        try:
            return float(reader.delta_joules(elapsed))
        except unavailable as exc:
            report_fault("host_sampler", exc)  # this interval is modelled instead
            return None

    def _process_share(self, system_u: float) -> float:
        process_u = clamp(self._process_cpu_reader())
        return 1.0 if system_u <= 0 else clamp(process_u / system_u)

    def _record(self, sample: HostSample, start_ns: int, end_ns: int) -> None:
        attrs: dict[str, Any] = {
            A.DOWNSTREAM_HOST_ENERGY_JOULES: sample.energy_j,
            A.DOWNSTREAM_HOST_ENERGY_METHOD: sample.method,
            A.DOWNSTREAM_HOST_INTERVAL_SECONDS: sample.interval_s,
            A.DOWNSTREAM_HOST_PROFILE: self.profile.name,
            A.DOWNSTREAM_HOST_PUE: self.pue,
            A.DOWNSTREAM_HOST_SHARE: sample.share,
            A.GEO_COUNTRY_ISO_CODE: self.country,
        }
        if sample.embodied_co2e_g:
            attrs[A.DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS] = sample.embodied_co2e_g
        span = self._tracer.start_span(
            A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME,
            kind=trace.SpanKind.INTERNAL,
            start_time=start_ns,
            attributes=attrs,
        )
        span.end(end_time=end_ns)

    def _safe_sample(self) -> None:
        try:
            self.sample_once()
        except Exception as exc:
            report_fault("host_sampler", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self._standby:
                if self._take_lock():
                    self._standby = False
                    self._restart_interval()  # the time before was the previous holder's
                continue
            self._safe_sample()

    def _take_lock(self) -> bool:
        """True when this sampler may record: it holds the host lock, or needs none."""
        if self._host_lock is None:
            return True
        try:
            return self._host_lock.try_acquire()
        except OSError as exc:
            report_fault("host_sampler", exc)  # said once; sampling beats silently not sampling
            self._host_lock = None
            return True

    def _restart_interval(self) -> None:
        with self._lock:
            self._last = self._clock()
            self._last_wall_ns = self._wall_clock_ns()
