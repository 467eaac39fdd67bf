"""What the demo starts and stops: uvicorn in a thread, ``/metrics``, the instrumented LLM clients.

Everything started is pushed on a :class:`Stack` and stopped in reverse order, whatever happens, so
the demo leaves no server behind on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from otel_downstream.exporters.cli.signals import stop_on_signals

__all__ = ["Stack", "llm_clients", "say", "serve_app", "serve_metrics", "wait_for_signal"]


def say(text: str) -> None:
    print(text, flush=True)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Stack:
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


OPENAI_PLACEHOLDER_KEY = "not-needed"
"""The key sent to an OpenAI-compatible base URL when none is given: local servers (Ollama, vLLM)
ignore it, and the SDK refuses to start without one."""


def _mistral_class() -> Any:
    """The SDK's client class: newer mistralai releases keep it in ``mistralai.client``, 1.x (which
    the ``mistral`` extra allows) at the top level."""
    try:
        from mistralai.client import Mistral
    except ImportError:
        from mistralai import Mistral  # type: ignore[no-redef,attr-defined,unused-ignore]
    return Mistral


def _keys(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(OpenAI key, Mistral key) for the real URLs given, checked before anything starts."""
    openai_key = mistral_key = None
    if args.openai_base_url:
        openai_key = args.openai_api_key or os.environ.get("OPENAI_API_KEY")
        if not openai_key:
            openai_key = OPENAI_PLACEHOLDER_KEY
            say(
                f"  no --openai-api-key or OPENAI_API_KEY: sending {OPENAI_PLACEHOLDER_KEY!r}, which "
                "local servers (Ollama, vLLM) accept; a hosted API will answer 401"
            )
    if args.mistral_server_url:
        mistral_key = args.mistral_api_key or os.environ.get("MISTRAL_API_KEY")
        if not mistral_key:
            raise ValueError("--mistral-server-url needs --mistral-api-key or MISTRAL_API_KEY")
    return openai_key, mistral_key


def llm_clients(args: argparse.Namespace, stack: Stack, provider: Any) -> Any:
    """SDK clients, instrumented; each points at the fake API unless a real URL was given."""
    from openai import AsyncOpenAI

    from otel_downstream.agent import instrument_mistral, instrument_openai
    from otel_downstream.exporters.demo.app import LLMClients
    from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI, FakeLLMSettings

    Mistral = _mistral_class()
    openai_key, mistral_key = _keys(args)
    fake = None
    if not (args.openai_base_url and args.mistral_server_url):
        # Long prompts (system + product context) and short token gaps, as a hosted model streams.
        settings = FakeLLMSettings(input_tokens=420, latency_s=0.05, chunk_delay_s=0.001)
        fake = FakeLLMAPI(settings).start()
        stack.push(fake.stop)
        say(
            f"  fake LLM API at http://127.0.0.1:{fake.port}: a LOCAL STAND-IN for OpenAI and "
            "Mistral, not a real model (filler text, realistic token counts). For the real "
            "providers pass --openai-base-url/--openai-api-key and "
            "--mistral-server-url/--mistral-api-key (keys default to OPENAI_API_KEY/MISTRAL_API_KEY)."
        )
    if args.openai_base_url:
        openai = AsyncOpenAI(base_url=args.openai_base_url, api_key=openai_key, max_retries=1)
        say(f"  OpenAI: {args.openai_base_url} (real calls)")
    else:
        assert fake is not None
        openai = AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-demo-fake", max_retries=0)
    if args.mistral_server_url:
        mistral = Mistral(api_key=mistral_key, server_url=args.mistral_server_url)
        say(f"  Mistral: {args.mistral_server_url} (real calls)")
    else:
        assert fake is not None
        mistral = Mistral(api_key="demo-fake", server_url=fake.mistral_server_url)
    instrument_openai(openai, tracer_provider=provider)
    instrument_mistral(mistral, tracer_provider=provider)
    return LLMClients(openai, mistral, fake_headers=fake is not None)


def serve_app(app: Any, port: int, stack: Stack) -> str:
    """The shop under uvicorn on 127.0.0.1, in a thread; returns its base URL."""
    import uvicorn

    try:
        sock = _bind(port)
    except OSError as exc:
        raise OSError(
            f"cannot serve the shop on 127.0.0.1:{port} ({exc}); pass --app-port 0"
        ) from exc
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


def serve_metrics(registry: Any, port: int, stack: Stack) -> str:
    """``registry`` on http://127.0.0.1:``port``/metrics (0: any free port); returns the URL.

    Served through the scrape view, as ``configure()`` and ``serve`` serve theirs: labels always
    encode, and a new series shows 0 on its first scrape (docs/metrics.md, "Totals over time")."""
    from prometheus_client import start_http_server

    from otel_downstream.exporters.metrics.exposition import safe_registry

    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=safe_registry(registry))
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


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (``--keep-serving``), then restore the previous handlers."""
    with stop_on_signals() as stop:
        while not stop.wait(3600):
            pass
