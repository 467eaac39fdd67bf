"""µs per Engine call: http_request, llm_call, host_interval.

Baselines measured in the same run: the bare cost of building the two Footprint objects an HTTP span
yields (the floor any engine pays), and the full co2.js-exact ``network.transfer`` per request (what
the engine would cost without its per-(country, device class) rate cache). The exporter's target is
100k spans/s per core, i.e. about 10 µs per span for everything, so http_request must stay well
under that.

Run: ``.venv/bin/python -m tests.benchmarks.bench_engine``
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import cycle

from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.engine.network import transfer as network
from otel_downstream.exporters.footprint import Footprint, Impact

COUNTRIES = ("US", "DE", "FR", "IN", "BR", "ZZ", None, "JP")
CLASSES = ("smartphone", "desktop", "tablet", "unknown", "tv", "bot")


def _best_us(fn: Callable[[], object], n: int = 20_000, repeats: int = 5) -> float:
    fn()  # warm caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    keys = cycle([(c, d) for c in COUNTRIES for d in CLASSES])

    def floor() -> object:
        a = Impact(1.0, 2.0, 3.0)
        return (Footprint("network", "swd-v4", a), Footprint("customer_device", "swd-v4", a))

    default = Engine(EngineConfig())

    def http_default() -> object:
        country, cls = next(keys)
        return default.http_request(
            request_bytes=1200, response_bytes=48_000, country=country, device_class=cls
        )

    rich = Engine(
        EngineConfig(device_method="time", include_embodied=True, include_datacenter=True)
    )

    def http_rich() -> object:
        country, cls = next(keys)
        return rich.http_request(
            request_bytes=1200,
            response_bytes=48_000,
            country=country,
            device_class=cls,
            engagement_s=12.5,
        )

    def transfer() -> object:
        return network.transfer(49_200, grid_intensity={"network": "DEU", "device": "DEU"})

    def llm() -> object:
        return default.llm_call(
            provider="openai",
            model="gpt-4o-mini",
            input_tokens=800,
            output_tokens=250,
            latency_s=3.2,
        )

    def host() -> object:
        return default.host_interval(energy_j=450.0, country="DE", pue=1.3, share=0.25)

    floor_us = _best_us(floor)
    transfer_us = _best_us(transfer, n=5_000)
    rows = [
        ("baseline: build 2 Footprints", floor_us),
        ("baseline: network.transfer (full co2.js model)", transfer_us),
        ("http_request (default: swd-v4, 48 keys)", _best_us(http_default)),
        ("http_request (time + embodied + datacenter)", _best_us(http_rich)),
        ("llm_call (gpt-4o-mini, ecologits-prefill)", _best_us(llm)),
        ("host_interval", _best_us(host)),
    ]
    print(f"{'case':<50}{'µs/call':>10}{'x floor':>10}{'x transfer':>12}")
    for name, us in rows:
        print(f"{name:<50}{us:>10.2f}{us / floor_us:>10.1f}{us / transfer_us:>12.2f}")
    per_core = 1e6 / rows[2][1]
    print(f"http_request default: {per_core:,.0f} calls/s on one core")


if __name__ == "__main__":
    main()
