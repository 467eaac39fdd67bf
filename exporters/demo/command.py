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
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Final

from otel_downstream.agent.environment import OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS
from otel_downstream.exporters.demo.servers import (
    Stack,
    llm_clients,
    say,
    serve_app,
    serve_metrics,
    wait_for_signal,
)

__all__ = ["add_arguments", "run"]

_SERVICE = "demo-shop"


DESCRIPTION = (
    "Run a small instrumented web shop on 127.0.0.1, send it about half a minute of simulated "
    "visitors (with calls to a local fake OpenAI/Mistral API unless real URLs are given), and "
    "print the energy, CO2e and water it caused, read back from /metrics."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
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
        "--openai-api-key",
        help="key for --openai-base-url (else env OPENAI_API_KEY, else a placeholder that local "
        "servers such as Ollama or vLLM accept)",
    )
    real.add_argument(
        "--mistral-server-url", help="Mistral server URL, e.g. https://api.mistral.ai"
    )
    real.add_argument(
        "--mistral-api-key", help="key for --mistral-server-url (else env MISTRAL_API_KEY)"
    )


def _progress(total_hint: int) -> Callable[[int, int], None]:
    step = max(1, total_hint // 10)
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.monotonic() - started, 1e-6)
            say(f"  traffic: {done}/{total} requests ({100 * done // total}%), {rate:.0f} req/s")

    return show


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
    stack = Stack()
    try:
        return _run(args, stack)
    except KeyboardInterrupt:
        print("otel-downstream demo: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # a setting that cannot work, named in the message
        print(f"otel-downstream demo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"otel-downstream demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.close()


KEEP_SERVING_HOLD_S: Final = 15.0
"""With ``--keep-serving`` a Prometheus may scrape the demo while it runs, and the summary's own
reads of ``/metrics`` are scrapes too: a new label set then stays at 0 this long (the scrape
interval of the shipped collector-config/prometheus.yml; examples/README.md uses 5 s) unless ``OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS`` says
otherwise, so that Prometheus also sees it at 0 and counts its first increment."""


@contextlib.contextmanager
def _scraped_by_others(keep_serving: bool) -> Iterator[None]:
    """While ``configure()`` reads its settings: the hold above, if the user set none."""
    if not keep_serving or os.environ.get(OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS):
        yield
        return
    os.environ[OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS] = str(KEEP_SERVING_HOLD_S)
    try:
        yield
    finally:
        os.environ.pop(OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS, None)


def _run(args: argparse.Namespace, stack: Stack) -> int:
    import httpx
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from otel_downstream.agent import ASGIMiddleware, configure
    from otel_downstream.agent.host.sampler import HostSampler
    from otel_downstream.exporters.demo.app import build_app
    from otel_downstream.exporters.demo.traffic import plan_visits, run_visits
    from otel_downstream.exporters.metrics.totals import render, summarize

    started = time.monotonic()
    say("[1/5] configure(): tracer provider, footprint processor, /metrics")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: _SERVICE}))
    registry = CollectorRegistry()
    with _scraped_by_others(args.keep_serving):
        handle = configure(_SERVICE, tracer_provider=provider, registry=registry, metrics_port=None)
    stack.push(provider.shutdown)
    stack.push(handle.shutdown)
    metrics_url = serve_metrics(registry, args.metrics_port, stack)
    say(f"  /metrics at {metrics_url}")

    say("[2/5] LLM providers (OpenAI and Mistral SDKs, instrumented)")
    llm = llm_clients(args, stack, provider)

    say("[3/5] the shop: Starlette + ASGIMiddleware under uvicorn, host sampler")
    shop = ASGIMiddleware(
        build_app(llm, seed=args.seed),
        tracer_provider=provider,
        trusted_proxies=1,
        engagement_beacon=True,
    )
    base_url = serve_app(shop, args.app_port, stack)
    sampler = HostSampler(tracer_provider=provider, interval_s=args.host_interval).start()
    stack.push(sampler.stop)
    say(
        f"  shop at {base_url} (trusts 1 proxy hop of X-Forwarded-For); host sampler every "
        f"{args.host_interval:g} s, profile {sampler.profile.name}, country {sampler.country}, "
        f"{'RAPL-measured' if sampler.measuring else 'modelled'} power"
    )

    visits = plan_visits(args.requests, args.seed)
    say(
        f"[4/5] traffic: {args.requests} requests from {len(visits)} visitors "
        f"({args.concurrency} at a time; seed {args.seed})"
    )
    stats = run_visits(
        visits, base_url, concurrency=args.concurrency, progress=_progress(args.requests)
    )
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats.by_kind.items()))
    say(f"  done in {stats.seconds:.1f} s: {kinds}")
    say("  (engagement beacons are accounted as device time on screen, not as requests)")
    for failure, count in stats.failures.most_common(5):
        say(f"  FAILED x{count}: {failure}")

    say("[5/5] reading the footprint back from /metrics")
    sampler.stop()  # records the last partial interval
    handle.processor.force_flush()
    # A series' first scrape shows it at 0, so that Prometheus counts its first increment
    # (docs/metrics.md, "Totals over time"): that scrape done, the next one shows the values.
    httpx.get(metrics_url, timeout=10.0).raise_for_status()
    time.sleep(handle.accountant.settings.new_series_hold_seconds)
    scrape = httpx.get(metrics_url, timeout=10.0)
    scrape.raise_for_status()
    shown_url = (
        metrics_url if args.keep_serving else f"{metrics_url} (stopped; rerun with --keep-serving)"
    )
    say(render(summarize(scrape.text), shown_url))
    say(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
    if args.keep_serving:
        say(
            f"Keep serving: shop {base_url}, /metrics {metrics_url}; point Prometheus at it "
            "(see examples/README.md). Ctrl-C to stop."
        )
        wait_for_signal()
        say("Stopped.")
    return 1 if stats.failures else 0
