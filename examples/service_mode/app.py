"""Service mode: the app only traces; ``otel-downstream serve`` turns its spans into /metrics.

Run it (three terminals, or ``docker compose -f examples/docker-compose.yml up`` for the full
stack with Prometheus and Grafana):

    otel-downstream serve                        # OTLP in on :4318/:4317, /metrics on :9464
    python examples/service_mode/app.py          # the shop on http://127.0.0.1:8000
    python examples/service_mode/traffic.py      # visitors, so there is something to count

With a Collector in between on the same host, it takes 4318/4317, so start serve elsewhere (the
port the Collector config sends to, gRPC off so the sampled tracing copy cannot reach serve):

    otel-downstream serve --otlp-http-port 14318 --otlp-grpc-port -1
    otelcol-contrib --config collector-config/otelcol-serve.yaml

The app exports spans over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default
http://127.0.0.1:4318: the Collector, or serve directly). The middleware, the LLM wrappers and the
host sampler add the footprint attributes; nothing is accounted in the app process, so replicas
of serve behind a Collector can scale apart from the app. The shop is the one ``otel-downstream
demo`` runs, with its LLM calls going to a local fake OpenAI/Mistral API (a stand-in, not a model).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

try:  # newer mistralai releases keep the SDK in mistralai.client, 1.x at the top level
    from mistralai.client import Mistral
except ImportError:
    from mistralai import Mistral  # type: ignore[no-redef,attr-defined]
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_downstream.agent import (
    ASGIMiddleware,
    HostSampler,
    instrument_mistral,
    instrument_openai,
)
from otel_downstream.exporters.demo import FakeLLMAPI, LLMClients, build_app


def create_app(
    otlp_endpoint: str | None = None, *, service_name: str = "shop", host_interval_s: float = 15.0
) -> tuple[Any, TracerProvider, Callable[[], None]]:
    """(ASGI app, its tracer provider, close) with spans exported to ``otlp_endpoint``.

    ``otlp_endpoint`` is the full traces URL (``http://host:4318/v1/traces``); None reads the
    standard ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` variables.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    fake = FakeLLMAPI().start()
    openai = AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-fake", max_retries=0)
    mistral = Mistral(api_key="fake", server_url=fake.mistral_server_url)
    instrument_openai(openai, tracer_provider=provider)
    instrument_mistral(mistral, tracer_provider=provider)
    app = ASGIMiddleware(
        build_app(LLMClients(openai, mistral)),
        tracer_provider=provider,
        trusted_proxies=1,  # one load balancer in front writes X-Forwarded-For
        engagement_beacon=True,
    )
    sampler = HostSampler(tracer_provider=provider, interval_s=host_interval_s).start()

    def close() -> None:
        sampler.stop()
        provider.shutdown()  # flushes the last batch to the Collector
        fake.stop()

    return app, provider, close


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="The demo shop, exporting spans over OTLP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    app, _, close = create_app()
    print(f"shop on http://{args.host}:{args.port}; spans -> OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)")
    try:
        uvicorn.run(app, host=args.host, port=args.port, lifespan="off")
    finally:
        close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
