"""``otel-downstream demo``: the main job end to end on this machine, in well under a minute.

It wires what a user would: ``configure()`` (tracer provider, footprint processor, ``/metrics``),
the ASGI middleware around a small web shop (trusting one proxy hop for ``X-Forwarded-For``),
``instrument_openai``/``instrument_mistral`` on the shop's SDK clients, and the host sampler. The
shop runs under uvicorn on 127.0.0.1; the LLM provider is a local fake OpenAI/Mistral-compatible
API (a stand-in, never a real model) unless real endpoints are given. Seeded visitors then drive a
bounded traffic mix, and the summary is read back from ``/metrics``: what Prometheus would see.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["add_arguments", "run"]

_SERVICE = "demo-shop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=1500, help="HTTP requests to send (1500)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the traffic mix (7)")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, help="/metrics port (9464; 0 = any free port)"
    )
    parser.add_argument("--app-port", type=int, default=0, help="shop port (0 = any free port)")
    parser.add_argument("--concurrency", type=int, default=6, help="visitors at a time (6)")
    parser.add_argument(
        "--host-interval", type=float, default=2.0, help="host-sampler interval, seconds (2)"
    )
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the summary, keep the shop, fake API and /metrics up until Ctrl-C",
    )
    real = parser.add_argument_group(
        "real providers (default: the local fake API; real calls cost money)"
    )
    real.add_argument(
        "--openai-base-url", help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1"
    )
    real.add_argument(
        "--openai-api-key", help="key for --openai-base-url (else env OPENAI_API_KEY)"
    )
    real.add_argument(
        "--mistral-server-url", help="Mistral server URL, e.g. https://api.mistral.ai"
    )
    real.add_argument(
        "--mistral-api-key", help="key for --mistral-server-url (else env MISTRAL_API_KEY)"
    )


def _say(text: str) -> None:
    print(text, flush=True)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class _Stack:
    """Things started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def push(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def close(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:
                print(f"otel-downstream demo: while stopping: {exc}", file=sys.stderr)


def _llm_clients(args: argparse.Namespace, stack: _Stack, provider: Any) -> Any:
    """SDK clients, instrumented; each points at the fake API unless a real URL was given."""
    from mistralai.client import Mistral
    from openai import AsyncOpenAI

    from otel_downstream.agent import instrument_mistral, instrument_openai
    from otel_downstream.exporters.fake_llm_api import FakeLLMAPI, FakeLLMSettings

    from .demo_app import LLMClients

    fake = None
    if not (args.openai_base_url and args.mistral_server_url):
        # Long prompts (system + product context) and short token gaps, as a hosted model streams.
        settings = FakeLLMSettings(input_tokens=420, latency_s=0.05, chunk_delay_s=0.001)
        fake = FakeLLMAPI(settings).start()
        stack.push(fake.stop)
        _say(
            f"  fake LLM API at http://127.0.0.1:{fake.port}: a LOCAL STAND-IN for OpenAI and "
            "Mistral, not a real model (filler text, realistic token counts). For the real "
            "providers pass --openai-base-url/--openai-api-key and "
            "--mistral-server-url/--mistral-api-key (keys default to OPENAI_API_KEY/MISTRAL_API_KEY)."
        )
    if args.openai_base_url:
        key = args.openai_api_key or os.environ.get("OPENAI_API_KEY")
        openai = AsyncOpenAI(base_url=args.openai_base_url, api_key=key, max_retries=1)
        _say(f"  OpenAI: {args.openai_base_url} (real calls)")
    else:
        assert fake is not None
        openai = AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-demo-fake", max_retries=0)
    if args.mistral_server_url:
        key = args.mistral_api_key or os.environ.get("MISTRAL_API_KEY")
        mistral = Mistral(api_key=key, server_url=args.mistral_server_url)
        _say(f"  Mistral: {args.mistral_server_url} (real calls)")
    else:
        assert fake is not None
        mistral = Mistral(api_key="demo-fake", server_url=fake.mistral_server_url)
    instrument_openai(openai, tracer_provider=provider)
    instrument_mistral(mistral, tracer_provider=provider)
    return LLMClients(openai, mistral, fake_headers=fake is not None)


def _serve_app(app: Any, port: int, stack: _Stack) -> str:
    """The shop under uvicorn on 127.0.0.1, in a thread; returns its base URL."""
    import uvicorn

    sock = _bind(port)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="demo-uvicorn")
    thread.daemon = True
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    stack.push(stop)
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the shop's uvicorn server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _serve_metrics(registry: Any, port: int, stack: _Stack) -> str:
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise OSError(
            f"cannot serve /metrics on 127.0.0.1:{port} ({exc}); pass --metrics-port 0 for any "
            "free port"
        ) from exc

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    stack.push(stop)
    return f"http://127.0.0.1:{server.server_address[1]}/metrics"


def _progress(total_hint: int) -> Callable[[int, int], None]:
    step = max(1, total_hint // 10)
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.monotonic() - started, 1e-6)
            _say(f"  traffic: {done}/{total} requests ({100 * done // total}%), {rate:.0f} req/s")

    return show


def _wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(3600):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    try:
        import httpx  # noqa: F401
        import mistralai  # noqa: F401
        import openai  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(
            f"otel-downstream demo: missing dependency ({exc}); install with "
            'pip install "otel-downstream[demo]"',
            file=sys.stderr,
        )
        return 2
    if args.requests < 1 or args.concurrency < 1 or not args.host_interval > 0:
        print(
            "otel-downstream demo: --requests and --concurrency must be positive and "
            f"--host-interval > 0 (got {args.requests}, {args.concurrency}, {args.host_interval})",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.metrics_port <= 65535 or not 0 <= args.app_port <= 65535:
        print("otel-downstream demo: ports must be 0-65535", file=sys.stderr)
        return 2
    stack = _Stack()
    try:
        return _run(args, stack)
    except KeyboardInterrupt:
        print("otel-downstream demo: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"otel-downstream demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.close()


def _run(args: argparse.Namespace, stack: _Stack) -> int:
    import httpx
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from otel_downstream.agent import ASGIMiddleware, configure
    from otel_downstream.agent.host_sampler import HostSampler

    from .demo_app import build_app
    from .demo_report import render, summarize
    from .demo_traffic import plan_visits, run_visits

    started = time.monotonic()
    _say("[1/5] configure(): tracer provider, footprint processor, /metrics")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: _SERVICE}))
    registry = CollectorRegistry()
    handle = configure(_SERVICE, tracer_provider=provider, registry=registry, metrics_port=None)
    stack.push(provider.shutdown)
    stack.push(handle.shutdown)
    metrics_url = _serve_metrics(registry, args.metrics_port, stack)
    _say(f"  /metrics at {metrics_url}")

    _say("[2/5] LLM providers (OpenAI and Mistral SDKs, instrumented)")
    llm = _llm_clients(args, stack, provider)

    _say("[3/5] the shop: Starlette + ASGIMiddleware under uvicorn, host sampler")
    shop = ASGIMiddleware(
        build_app(llm, seed=args.seed),
        tracer_provider=provider,
        trusted_proxies=1,
        engagement_beacon=True,
    )
    base_url = _serve_app(shop, args.app_port, stack)
    sampler = HostSampler(tracer_provider=provider, interval_s=args.host_interval).start()
    stack.push(sampler.stop)
    _say(
        f"  shop at {base_url} (trusts 1 proxy hop of X-Forwarded-For); host sampler every "
        f"{args.host_interval:g} s, profile {sampler.profile.name}, country {sampler.country}, "
        f"{'RAPL-measured' if sampler.measuring else 'modelled'} power"
    )

    visits = plan_visits(args.requests, args.seed)
    _say(
        f"[4/5] traffic: {args.requests} requests from {len(visits)} visitors "
        f"({args.concurrency} at a time; seed {args.seed})"
    )
    stats = run_visits(
        visits, base_url, concurrency=args.concurrency, progress=_progress(args.requests)
    )
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.by_kind.items()))
    _say(f"  done in {stats.seconds:.1f} s: {kinds}")
    for failure, count in stats.failures.most_common(5):
        _say(f"  FAILED x{count}: {failure}")

    _say("[5/5] reading the footprint back from /metrics")
    sampler.stop()  # records the last partial interval
    handle.processor.force_flush()
    scrape = httpx.get(metrics_url, timeout=10.0)
    scrape.raise_for_status()
    _say(render(summarize(scrape.text), metrics_url))
    _say(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
    if args.keep_serving:
        _say(
            f"Keep serving: shop {base_url}, /metrics {metrics_url}; point Prometheus at it "
            "(see examples/README.md). Ctrl-C to stop."
        )
        _wait_for_signal()
        _say("Stopped.")
    return 1 if stats.failures else 0
