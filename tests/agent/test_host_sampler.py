"""The host sampler: energy integrates over time, counters fall back to the model, spans carry it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent import attributes as A
from otel_downstream.agent.faults import fault_counts, reset_faults
from otel_downstream.agent.host.power import builtin_profiles, static_watts
from otel_downstream.agent.host.sampler import HostSampler

from .test_rapl import make_zone, set_energy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_ns = 1_700_000_000_000_000_000

    def __call__(self) -> float:
        return self.now

    def wall(self) -> int:
        return self.wall_ns

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall_ns += int(seconds * 1e9)


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reset_faults()
    return provider, exporter


def sampler(provider: TracerProvider, clock: FakeClock, **kwargs: object) -> HostSampler:
    defaults: dict[str, object] = {
        "tracer_provider": provider,
        "profile": "server_1u",
        "country": "fr",
        "powercap_root": "/nonexistent-powercap",
        "cpu_reader": lambda: 0.37,
        "process_cpu_reader": lambda: 0.1,
        "clock": clock,
        "wall_clock_ns": clock.wall,
    }
    defaults.update(kwargs)
    return HostSampler(**defaults)  # type: ignore[arg-type]


def test_modelled_energy_of_known_utilisation_integrates_within_one_percent(spans) -> None:
    provider, exporter = spans
    clock = FakeClock()
    s = sampler(provider, clock)
    profile = builtin_profiles()["server_1u"]
    expected_watts = (
        profile.cpu_idle_w + 0.37 * (profile.cpu_max_w - profile.cpu_idle_w) + static_watts(profile)
    )
    for _ in range(40):  # ten minutes at 15 s
        clock.advance(15.0)
        s.sample_once()
    total = sum(
        span.attributes[A.DOWNSTREAM_HOST_ENERGY_JOULES] for span in exporter.get_finished_spans()
    )
    assert total == pytest.approx(expected_watts * 600.0, rel=0.01)
    span = exporter.get_finished_spans()[0]
    assert span.name == A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME
    assert span.attributes[A.DOWNSTREAM_HOST_ENERGY_METHOD] == "modelled"
    assert span.attributes[A.GEO_COUNTRY_ISO_CODE] == "FR"
    assert span.attributes[A.DOWNSTREAM_HOST_PROFILE] == "server_1u"
    assert span.end_time - span.start_time == 15_000_000_000


def test_measured_rapl_energy_is_used_with_wrap(spans, tmp_path: Path) -> None:
    provider, _exporter = spans
    clock = FakeClock()
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000, max_range=100_000_000)
    s = sampler(provider, clock, powercap_root=str(tmp_path), profile="edge_gateway")
    assert s.measuring
    clock.advance(10.0)
    set_energy(tmp_path, "intel-rapl:0", 40_001_000)  # 40 J
    first = s.sample_once()
    clock.advance(10.0)
    set_energy(tmp_path, "intel-rapl:0", 1_000)  # wrapped: 60 J - ... = 59.999 J + 0.001
    second = s.sample_once()
    assert first is not None and second is not None
    assert first.method == "measured"
    assert first.energy_j == pytest.approx(40.0)
    assert second.energy_j == pytest.approx(60.0)


def test_unreadable_counter_falls_back_to_model_and_is_counted_once_logged(
    spans, tmp_path: Path, caplog
) -> None:
    provider, _ = spans
    clock = FakeClock()
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    s = sampler(provider, clock, powercap_root=str(tmp_path), profile="edge_gateway")
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # container lost access
    with caplog.at_level(logging.WARNING, logger="otel_downstream"):
        for _ in range(3):
            clock.advance(10.0)
            sample = s.sample_once()
            assert sample is not None and sample.method == "modelled"
            assert sample.energy_j == pytest.approx((2.7 + 0.37 * (6.4 - 2.7)) * 10.0)
    assert fault_counts()["host_sampler"] == 3
    assert sum("host_sampler" in r.getMessage() for r in caplog.records) == 1


def test_clock_going_backwards_records_nothing_and_recovers(spans) -> None:
    provider, exporter = spans
    clock = FakeClock()
    s = sampler(provider, clock)
    clock.advance(-30.0)
    assert s.sample_once() is None
    assert fault_counts()["host_sampler"] == 1
    clock.advance(15.0)
    assert s.sample_once() is not None
    assert len(exporter.get_finished_spans()) == 1


def test_gpu_profile_without_nvml_models_gpus_and_says_so(spans) -> None:
    provider, _ = spans
    clock = FakeClock()
    s = sampler(provider, clock, profile="gpu_server", gpu_utilisation=0.25)
    assert fault_counts().get("host_sampler") == 1  # nvidia-ml-py absent, reported once
    clock.advance(1.0)
    sample = s.sample_once()
    assert sample is not None
    p = builtin_profiles()["gpu_server"]
    gpu = 8 * (p.gpu_idle_w + 0.25 * (p.gpu_max_w - p.gpu_idle_w))
    cpu = p.cpu_idle_w + 0.37 * (p.cpu_max_w - p.cpu_idle_w)
    assert sample.energy_j == pytest.approx(cpu + gpu + static_watts(p))


def test_process_share_and_embodied(spans) -> None:
    provider, exporter = spans
    clock = FakeClock()
    s = sampler(provider, clock, share="process", include_embodied=True)
    clock.advance(3600.0)
    sample = s.sample_once()
    assert sample is not None
    assert sample.share == pytest.approx(0.1 / 0.37)
    # 1533 kg over 4 years, one hour of it
    assert sample.embodied_co2e_g == pytest.approx(1533e3 / (4 * 365.25 * 24))
    span = exporter.get_finished_spans()[0]
    assert span.attributes[A.DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS] == pytest.approx(
        sample.embodied_co2e_g
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile": "mainframe"}, "unknown host profile 'mainframe'"),
        ({"profile_overrides": {"cpu_idle_w": -1.0}}, "cpu_idle_w=-1.0"),
        ({"profile_overrides": {"turbo": 1}}, "unknown host profile field"),
        ({"country": "France"}, "alpha-2"),
        ({"share": 1.5}, "within 0..1"),
        ({"share": "half"}, "'process'"),
        ({"pue": 0.5}, "pue=0.5"),
        ({"interval_s": 0.0}, "interval_s=0.0"),
        ({"gpu_utilisation": 1.5}, "gpu_utilisation=1.5"),
    ],
)
def test_misconfiguration_fails_at_construction_with_the_setting_named(
    spans, kwargs, message
) -> None:
    provider, _ = spans
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        sampler(provider, FakeClock(), **kwargs)


def test_environment_configures_the_sampler(spans, monkeypatch) -> None:
    provider, _ = spans
    monkeypatch.setenv("OTEL_DOWNSTREAM_HOST_PROFILE", "mini_pc")
    monkeypatch.setenv("OTEL_DOWNSTREAM_HOST_COUNTRY", "de")
    monkeypatch.setenv("OTEL_DOWNSTREAM_HOST_PUE", "1.4")
    monkeypatch.setenv("OTEL_DOWNSTREAM_HOST_SHARE", "0.5")
    s = HostSampler(tracer_provider=provider, powercap_root="/nonexistent")
    assert (s.profile.name, s.country, s.pue) == ("mini_pc", "DE", 1.4)


def test_real_psutil_thread_samples_and_stops_with_a_final_sample(spans) -> None:
    provider, exporter = spans
    s = HostSampler(tracer_provider=provider, interval_s=0.05, profile="auto", country="SE")
    assert s.profile.cpu_max_w > s.profile.cpu_idle_w > 0
    s.start()
    time.sleep(0.3)
    s.stop()
    finished = exporter.get_finished_spans()
    assert len(finished) >= 3
    for span in finished:
        assert 0 < span.attributes[A.DOWNSTREAM_HOST_ENERGY_JOULES] < 10_000
        assert span.attributes[A.DOWNSTREAM_HOST_ENERGY_METHOD] in {"modelled", "measured", "mixed"}
    seconds = sum(span.attributes[A.DOWNSTREAM_HOST_INTERVAL_SECONDS] for span in finished)
    assert 0.25 < seconds < 2.0


@pytest.mark.parametrize("with_dram", [True, False])
def test_memory_is_modelled_only_when_rapl_does_not_measure_it(
    spans, tmp_path: Path, with_dram
) -> None:
    provider, _ = spans
    clock = FakeClock()
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0, max_range=10**12)
    if with_dram:
        make_zone(tmp_path, "intel-rapl:0:2", "dram", 0, max_range=10**12)
    s = sampler(provider, clock, powercap_root=str(tmp_path), profile="server_1u")
    clock.advance(10.0)
    set_energy(tmp_path, "intel-rapl:0", 800_000_000)  # 800 J package
    if with_dram:
        set_energy(tmp_path, "intel-rapl:0:2", 200_000_000)  # 200 J memory, measured
    sample = s.sample_once()
    assert sample is not None and sample.method == "measured"
    profile = builtin_profiles()["server_1u"]
    storage = static_watts(profile) - profile.memory_gb * 0.392
    memory = 200.0 if with_dram else profile.memory_gb * 0.392 * 10.0
    assert sample.energy_j == pytest.approx(800.0 + memory + storage * 10.0)


def test_a_stopped_sampler_can_start_again(spans) -> None:
    provider, exporter = spans
    s = HostSampler(tracer_provider=provider, interval_s=0.02, profile="mini_pc")
    s.start()
    s.stop()
    before = len(exporter.get_finished_spans())
    s.start()
    time.sleep(0.15)
    s.stop()
    assert len(exporter.get_finished_spans()) >= before + 3


def _wait_for(predicate: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_one_sampler_per_host_the_other_stands_by_and_takes_over(tmp_path: Path) -> None:
    """Two samplers with a fixed share (two workers of one server): only the lock holder records;
    when it stops, the other takes over, starting its interval then (no time counted twice)."""
    recorders = []
    for _ in range(2):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        recorders.append((provider, exporter))
    lock = str(tmp_path / "host.lock")
    first, second = (
        HostSampler(tracer_provider=p, interval_s=0.02, profile="mini_pc", lock_path=lock)
        for p, _ in recorders
    )
    first.start()
    second.start()
    try:
        assert not first.standing_by and second.standing_by
        assert _wait_for(lambda: len(recorders[0][1].get_finished_spans()) >= 3)
        assert recorders[1][1].get_finished_spans() == ()
        first.stop()
        handed_over = time.time_ns()
        assert _wait_for(lambda: len(recorders[1][1].get_finished_spans()) >= 2)
        assert not second.standing_by
    finally:
        first.stop()
        second.stop()
    last_of_first = max(s.end_time or 0 for s in recorders[0][1].get_finished_spans())
    first_of_second = min(s.start_time or 0 for s in recorders[1][1].get_finished_spans())
    assert last_of_first <= handed_over <= first_of_second


def test_process_share_samplers_take_no_lock(tmp_path: Path, spans) -> None:
    provider, _ = spans
    lock = str(tmp_path / "host.lock")
    samplers = [
        HostSampler(
            tracer_provider=provider,
            interval_s=0.02,
            profile="mini_pc",
            share="process",
            lock_path=lock,
        ).start()
        for _ in range(2)
    ]
    try:
        assert not any(s.standing_by for s in samplers)
    finally:
        for s in samplers:
            s.stop()
    assert not (tmp_path / "host.lock").exists()


def test_unusable_lock_file_is_reported_once_and_sampling_goes_on(tmp_path: Path, spans) -> None:
    provider, exporter = spans
    lock = str(tmp_path / "missing-dir" / "host.lock")
    s = HostSampler(tracer_provider=provider, interval_s=0.02, profile="mini_pc", lock_path=lock)
    s.start()
    s.stop()
    assert not s.standing_by
    assert fault_counts() == {"host_sampler": 1}
    assert len(exporter.get_finished_spans()) == 1  # the final partial interval


def test_each_service_has_its_own_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two services sharing a host (shares 0.3 and 0.7) each record their own share; only the
    workers of one service exclude each other. The default lock is found by service name."""
    import tempfile

    from opentelemetry.sdk.resources import Resource

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    samplers = []
    for service, share in (("checkout", 0.3), ("search", 0.7), ("search", 0.7)):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        samplers.append(
            HostSampler(tracer_provider=provider, interval_s=60, profile="mini_pc", share=share)
        )
    for s in samplers:
        s.start()
    try:
        assert [s.standing_by for s in samplers] == [False, False, True]
        assert len(list(tmp_path.glob("otel-downstream-host-sampler-*.lock"))) == 2
    finally:
        for s in samplers:
            s.stop()


def test_the_service_name_given_names_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configure("shop", tracer_provider=p) labels metrics "shop" though p's resource may name no
    service: the sampler is told the name, so two such services do not share one lock."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    provider = TracerProvider()  # its resource names no service
    samplers = [
        HostSampler(tracer_provider=provider, interval_s=60, profile="mini_pc", service_name=name)
        for name in ("shop", "search")
    ]
    for s in samplers:
        s.start()
    try:
        assert [s.standing_by for s in samplers] == [False, False]
    finally:
        for s in samplers:
            s.stop()


def test_lock_names_keep_services_apart() -> None:
    """Names that differ only in characters a file name cannot hold still get their own lock."""
    from otel_downstream.agent.host.lock import default_lock_path

    names = ["支付", "订单", "checkout api", "checkout/api", "checkout_api", "x" * 300]
    paths = {default_lock_path(name) for name in names}
    assert len(paths) == len(names)
    assert all("/" not in Path(p).name and len(Path(p).name) < 160 for p in paths)


def test_a_planted_link_or_foreign_file_is_refused(tmp_path: Path, spans) -> None:
    """The lock path is predictable in a shared directory: a symbolic link there is never
    followed (the file it points to keeps its mode), and the sampler says so and samples."""
    import os

    from otel_downstream.agent.host.lock import HostLock

    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0o600)
    link = tmp_path / "host.lock"
    link.symlink_to(secret)
    with pytest.raises(OSError):
        HostLock(str(link)).try_acquire()
    assert secret.stat().st_mode & 0o777 == 0o600
    provider, exporter = spans
    s = HostSampler(tracer_provider=provider, interval_s=60, profile="mini_pc", lock_path=str(link))
    s.start()
    s.stop()
    assert not s.standing_by and fault_counts() == {"host_sampler": 1}
    assert len(exporter.get_finished_spans()) == 1
    if os.geteuid() == 0:  # a regular file of another user is refused too
        foreign = tmp_path / "foreign.lock"
        foreign.write_text("")
        os.chown(foreign, 65534, 65534)
        with pytest.raises(PermissionError):
            HostLock(str(foreign)).try_acquire()


_WORKER = """
import sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_downstream.agent.host.sampler import HostSampler
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
s = HostSampler(tracer_provider=provider, interval_s=0.02, profile="mini_pc", lock_path=sys.argv[1])
s.start()
print("standby" if s.standing_by else "sampling", flush=True)
while sys.stdin.readline().strip() == "state":  # run until told to stop
    print("standby" if s.standing_by else "sampling", flush=True)
s.stop()
print(len(exporter.get_finished_spans()), flush=True)
"""


def test_worker_processes_count_the_host_once_and_a_killed_holder_is_replaced(
    tmp_path: Path,
) -> None:
    """Real processes, as gunicorn's workers: the first holds the lock, the others stand by; when
    the holder is killed (no clean stop), the kernel drops its lock and a survivor takes over."""
    import subprocess
    import sys

    lock = str(tmp_path / "host.lock")

    def worker() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, lock],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    holder = worker()
    others: list[subprocess.Popen[str]] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "sampling"
        others += [worker() for _ in range(2)]
        states = [o.stdout.readline().strip() for o in others if o.stdout is not None]
        assert states == ["standby", "standby"]
        holder.kill()
        holder.wait(timeout=10)

        def states_now() -> list[str]:
            for o in others:
                assert o.stdin is not None and o.stdout is not None
                o.stdin.write("state\n")
                o.stdin.flush()
            return [o.stdout.readline().strip() for o in others if o.stdout is not None]

        assert _wait_for(lambda: sorted(states_now()) == ["sampling", "standby"])
        # stop the one standing by first, or it would take over from the other
        by_state = dict(zip(states_now(), others, strict=True))
        counts = {}
        for state in ("standby", "sampling"):
            out, _ = by_state[state].communicate("stop\n", timeout=20)
            counts[state] = int(out.strip())
        assert counts["standby"] == 0 and counts["sampling"] > 0, counts
    finally:
        for process in [holder, *others]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
