"""Host sampler CPU cost: CPU seconds per sample, and the share of one core at the default interval.

Baseline in the same run: one bare ``psutil.cpu_percent()`` call, the least any sampler must do.
Target (issue 6): ≤ 1 % of one core at the default 15 s interval.
"""

from __future__ import annotations

import time

import psutil
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_downstream.agent.host.sampler import DEFAULT_INTERVAL_S, HostSampler

N = 2000


def cpu_seconds_per_call(fn: object, n: int) -> float:
    call = fn  # type: ignore[assignment]
    start = time.process_time()
    for _ in range(n):
        call()  # type: ignore[operator]
    return (time.process_time() - start) / n


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sampler = HostSampler(tracer_provider=provider, profile="auto", country="FR")
    bare = cpu_seconds_per_call(lambda: psutil.cpu_percent(interval=None), N)
    ours = cpu_seconds_per_call(sampler.sample_once, N)
    share = ours / DEFAULT_INTERVAL_S
    print(f"bare psutil.cpu_percent        : {bare * 1e6:8.1f} µs CPU per call")
    print(
        f"HostSampler.sample_once (+span): {ours * 1e6:8.1f} µs CPU per sample ({ours / bare:.1f}x bare)"
    )
    print(
        f"share of one core at {DEFAULT_INTERVAL_S:.0f} s interval: {share * 100:.5f} % (target <= 1 %)"
    )
    print(f"RAPL counters in use: {sampler.measuring}")


if __name__ == "__main__":
    main()
