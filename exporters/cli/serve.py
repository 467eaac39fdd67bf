"""``otel-downstream serve``: run the OTLP receiver until SIGTERM/SIGINT, then drain and exit.

Each setting goes flag → environment variable → default. On start the command prints one JSON line
on stdout with the bound addresses (``{"event": "serving", ...}``), so scripts and tests that ask
for port 0 learn the ports the kernel chose.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from otel_downstream.agent import environment as env
from otel_downstream.exporters.cli.signals import stop_on_signals

if TYPE_CHECKING:
    from otel_downstream.exporters.otlp.service import ServiceConfig

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help=f"address to bind (default 127.0.0.1; env {env.OTEL_DOWNSTREAM_SERVE_HOST})"
    )
    parser.add_argument(
        "--otlp-http-port",
        type=int,
        help=f"OTLP/HTTP port (default 4318; -1 off; env {env.OTEL_DOWNSTREAM_SERVE_OTLP_HTTP_PORT})",
    )
    parser.add_argument(
        "--otlp-grpc-port",
        type=int,
        help=f"OTLP/gRPC port (default 4317; -1 off; env {env.OTEL_DOWNSTREAM_SERVE_OTLP_GRPC_PORT})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help=f"/metrics port (default 9464; -1 off; env {env.OTEL_DOWNSTREAM_SERVE_METRICS_PORT})",
    )
    parser.add_argument(
        "--auth-token",
        help=f"bearer token senders must present (prefer env {env.OTEL_DOWNSTREAM_SERVE_TOKEN} "
        "or --auth-token-file: flags show in the process list)",
    )
    parser.add_argument("--auth-token-file", type=Path, help="file holding the bearer token")
    parser.add_argument("--max-body-bytes", type=int, help="largest body on the wire (16 MiB)")
    parser.add_argument(
        "--max-decompressed-bytes",
        type=int,
        help="largest body after gunzip, gRPC message (64 MiB)",
    )
    parser.add_argument(
        "--max-concurrent-exports", type=int, help="exports at once before 503/retry (16)"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="open OTLP/HTTP connections (past it the oldest idle one is closed, or 503 when none "
        "is idle), and gRPC connections (256)",
    )
    parser.add_argument(
        "--max-connections-per-source",
        type=int,
        help="open OTLP/HTTP connections from one address before 503 (64)",
    )
    parser.add_argument(
        "--max-body-bytes-in-flight",
        type=int,
        help="OTLP/HTTP body bytes being read at once, all connections, before 503 (256 MiB)",
    )
    parser.add_argument(
        "--max-spans-per-export",
        type=int,
        help="spans in one export before 413 / RESOURCE_EXHAUSTED (200000)",
    )
    parser.add_argument(
        "--max-span-bytes",
        type=int,
        help="encoded size of one span before that span alone is rejected (1 MiB)",
    )
    parser.add_argument(
        "--min-sampling-probability",
        type=float,
        help="lowest sampling probability of your own samplers: span weights (ot=th) are believed "
        f"up to its inverse (default 1: none; env {env.OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        help="seconds to receive one OTLP/HTTP or /metrics request (head and body; else 503 and "
        "retry) or one gRPC request message (else DEADLINE_EXCEEDED) (30)",
    )
    parser.add_argument(
        "--first-byte-timeout",
        type=float,
        help="seconds a new OTLP/HTTP or /metrics connection may stay silent before it is closed "
        f"(10; env {env.OTEL_DOWNSTREAM_SERVE_FIRST_BYTE_TIMEOUT})",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )


_INT_SETTINGS: Final = {
    "otlp_http_port": env.OTEL_DOWNSTREAM_SERVE_OTLP_HTTP_PORT,
    "otlp_grpc_port": env.OTEL_DOWNSTREAM_SERVE_OTLP_GRPC_PORT,
    "metrics_port": env.OTEL_DOWNSTREAM_SERVE_METRICS_PORT,
    "max_body_bytes": env.OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES,
    "max_decompressed_bytes": env.OTEL_DOWNSTREAM_SERVE_MAX_DECOMPRESSED_BYTES,
    "max_concurrent_exports": env.OTEL_DOWNSTREAM_SERVE_MAX_CONCURRENT_EXPORTS,
    "max_connections": env.OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS,
    "max_connections_per_source": env.OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS_PER_SOURCE,
    "max_body_bytes_in_flight": env.OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES_IN_FLIGHT,
    "max_spans_per_export": env.OTEL_DOWNSTREAM_SERVE_MAX_SPANS_PER_EXPORT,
    "max_span_bytes": env.OTEL_DOWNSTREAM_SERVE_MAX_SPAN_BYTES,
}
"""Integer settings (flag dest = ServiceConfig field) and their variables: flag, env, default."""


def _config(args: argparse.Namespace) -> ServiceConfig:
    from otel_downstream.exporters.otlp.service import ServiceConfig

    base = ServiceConfig()
    token = args.auth_token or None
    if token is None and args.auth_token_file is not None:
        token = args.auth_token_file.read_text().strip() or None
    if token is None:
        token = os.environ.get(env.OTEL_DOWNSTREAM_SERVE_TOKEN, "").strip() or None
    numbers: dict[str, int] = {}
    for field, variable in _INT_SETTINGS.items():
        flag = getattr(args, field)
        numbers[field] = flag if flag is not None else env.env_int(variable, getattr(base, field))
    timeout = args.request_timeout
    if timeout is None:
        timeout = env.env_float(env.OTEL_DOWNSTREAM_SERVE_REQUEST_TIMEOUT, base.request_timeout_s)
    if not timeout > 0:
        raise ValueError(f"request_timeout_s={timeout}: expected a positive number of seconds")
    first_byte = args.first_byte_timeout
    if first_byte is None:
        first_byte = env.env_float(
            env.OTEL_DOWNSTREAM_SERVE_FIRST_BYTE_TIMEOUT, base.first_byte_timeout_s
        )
    if not first_byte > 0:
        raise ValueError(
            f"first_byte_timeout_s={first_byte}: expected a positive number of seconds"
        )
    config = ServiceConfig(
        host=args.host or env.env_str(env.OTEL_DOWNSTREAM_SERVE_HOST, base.host),
        auth_token=token,
        request_timeout_s=timeout,
        first_byte_timeout_s=first_byte,
        **numbers,
    )
    positive = (
        "max_body_bytes",
        "max_decompressed_bytes",
        "max_concurrent_exports",
        "max_connections",
        "max_connections_per_source",
        "max_body_bytes_in_flight",
        "max_spans_per_export",
        "max_span_bytes",
    )
    for field in positive:
        if getattr(config, field) < 1:
            raise ValueError(f"{field}={getattr(config, field)}: expected a positive integer")
    for field in ("otlp_http_port", "otlp_grpc_port", "metrics_port"):
        if getattr(config, field) > 65535:
            raise ValueError(f"{field}={getattr(config, field)}: expected a port up to 65535")
    return config


_LISTENERS: Final = (
    ("metrics", "metrics_port", "/metrics"),
    ("otlp_http", "otlp_http_port", "OTLP/HTTP"),
    ("otlp_grpc", "otlp_grpc_port", "OTLP/gRPC"),
)
"""Listeners in the order ``OtlpService.start`` binds them: (port name, config field, what)."""


def _bind_failure(config: ServiceConfig, bound: Mapping[str, int], exc: OSError) -> str:
    """The start error naming the listener and the host:port it tried (``bound``: the listeners
    already up, so the first configured one missing is the one that failed)."""
    for name, field, what in _LISTENERS:
        port = getattr(config, field)
        if port < 0 or name in bound:
            continue
        if f"{config.host}:{port}" in str(exc):  # the gRPC receiver names it already
            return str(exc)
        flag = "--" + field.replace("_", "-")
        reason = exc.strerror or str(exc)
        return f"cannot bind {what} to {config.host}:{port} ({flag}): {reason}"
    return str(exc)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        from otel_downstream.exporters.otlp.service import OtlpService
    except ImportError as exc:
        print(
            f"otel-downstream serve: missing dependency ({exc}); "
            'install with pip install "otel-downstream[service]"',
            file=sys.stderr,
        )
        return 2
    try:
        config = _config(args)
        accountant = None
        if args.min_sampling_probability is not None:
            from otel_downstream.exporters.accounting.accountant import Accountant
            from otel_downstream.exporters.accounting.settings import AccountingSettings

            settings = AccountingSettings.resolve(
                min_sampling_probability=args.min_sampling_probability
            )
            accountant = Accountant(settings=settings)
        service = OtlpService(config, accountant=accountant)
    except (OSError, ValueError) as exc:
        print(f"otel-downstream serve: {exc}", file=sys.stderr)
        return 2
    with stop_on_signals() as stop:
        try:
            ports = service.start()
        except OSError as exc:
            print(
                f"otel-downstream serve: {_bind_failure(config, service.ports, exc)}",
                file=sys.stderr,
            )
            return 1
        addresses = {name: f"{config.host}:{port}" for name, port in ports.items()}
        print(json.dumps({"event": "serving", "pid": os.getpid(), **addresses}), flush=True)
        logging.getLogger("otel_downstream.serve").info("serving %s", addresses)
        while not stop.wait(3600):
            pass
        logging.getLogger("otel_downstream.serve").info("stopping: draining requests in flight")
        service.stop()
        print(
            json.dumps({"event": "stopped", "pid": os.getpid(), **service.core.tally}), flush=True
        )
        return 0
