"""``otel-downstream sample-host``: account this host as customer-hosted infrastructure.

For hosts where the service's own process cannot call ``configure(host_sampler=True)`` (an
appliance, a GPU box serving a self-hosted model): run this beside it. Samples are accounted here
and shown on ``/metrics``, or, with ``--otlp-endpoint``, sent as spans to ``otel-downstream serve``
(then no local ``/metrics`` unless ``--metrics-port`` is given, so nothing is scraped twice).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from otel_downstream.exporters.cli.signals import stop_on_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service-name", help="service_name label (default OTEL_SERVICE_NAME)")
    parser.add_argument(
        "--profile", help="auto, edge_gateway, mini_pc, server_1u or gpu_server (default auto)"
    )
    parser.add_argument("--country", help="ISO alpha-2 country of the host's electricity")
    parser.add_argument("--pue", type=float, help="power usage effectiveness of the room (>= 1)")
    parser.add_argument("--share", help="share of the host used by the service (0..1) or 'process'")
    parser.add_argument("--interval", type=float, help="seconds between samples (default 15)")
    parser.add_argument(
        "--embodied",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the hardware's embodied carbon, amortised over its lifetime",
    )
    parser.add_argument("--powercap-root", help="where RAPL counters live (/sys/class/powercap)")
    parser.add_argument(
        "--metrics-port", type=int, help="serve /metrics here (default 9464; none with OTLP)"
    )
    parser.add_argument("--metrics-addr", help="address for /metrics (default 127.0.0.1)")
    parser.add_argument("--otlp-endpoint", help="send samples as spans to this OTLP/HTTP endpoint")
    parser.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (default: until SIGTERM/Ctrl-C)",
    )


def run(args: argparse.Namespace) -> int:
    from otel_downstream.agent.host.sampler import HostSampler
    from otel_downstream.agent.pipeline import configure
    from otel_downstream.agent.pipeline import traces_url as otlp_traces_url

    traces_url = otlp_traces_url(args.otlp_endpoint) if args.otlp_endpoint else None
    metrics_port = args.metrics_port
    if metrics_port is None and not traces_url:
        metrics_port = 9464
    try:
        handle = configure(
            args.service_name,
            metrics_port=metrics_port,
            metrics_addr=args.metrics_addr,
            otlp_endpoint=traces_url,
            host_sampler=False,
        )
    except (OSError, ValueError) as exc:
        print(f"otel-downstream sample-host: {exc}", file=sys.stderr)
        return 2
    try:
        sampler = HostSampler(
            tracer_provider=handle.tracer_provider,
            interval_s=args.interval,
            profile=args.profile,
            country=args.country,
            pue=args.pue,
            share=args.share,
            include_embodied=args.embodied,
            powercap_root=args.powercap_root,
            service_name=handle.service_name,
        )
    except ValueError as exc:
        handle.shutdown()
        print(f"otel-downstream sample-host: {exc}", file=sys.stderr)
        return 2

    with stop_on_signals() as stop:
        try:
            sampler.start()
            started: dict[str, Any] = {
                "event": "sampling",
                "pid": os.getpid(),
                "profile": sampler.profile.name,
                "country": sampler.country,
                "interval_s": sampler.interval_s,
                "energy_source": "rapl" if sampler.measuring else "model",
            }
            if handle.metrics_address:
                host, port = handle.metrics_address
                started["metrics"] = f"http://{host}:{port}/metrics"
            if traces_url:
                started["otlp_endpoint"] = traces_url
            print(json.dumps(started), flush=True)
            stop.wait(args.duration)
        finally:
            sampler.stop()  # records the partial last interval before the pipeline flushes
            handle.shutdown()
    print(json.dumps({"event": "stopped", "pid": os.getpid()}), flush=True)
    return 0
