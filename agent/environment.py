"""Every environment variable the project reads, one named constant each.

Configuration always goes argument → environment variable → default, and is read when an object is
constructed, never at import time. Each integration adds its variables to its own section below.
"""

from __future__ import annotations

import math
import os
from typing import Final

# --- Standard OpenTelemetry variables we honour ------------------------------------------------
OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
"""Service name label on every footprint metric (OTel standard)."""

# --- Footprint methods (engine) ----------------------------------------------------------------
OTEL_DOWNSTREAM_NETWORK_METHOD: Final = "OTEL_DOWNSTREAM_NETWORK_METHOD"
"""Network transfer method: ``swd-v4`` (default), ``swd-v3`` or ``onebyte``."""

OTEL_DOWNSTREAM_DEVICE_METHOD: Final = "OTEL_DOWNSTREAM_DEVICE_METHOD"
"""Customer-device method: ``swd-v4`` (per byte, default) or ``time`` (watts × engagement seconds)."""

OTEL_DOWNSTREAM_LLM_METHOD: Final = "OTEL_DOWNSTREAM_LLM_METHOD"
"""AI-inference method: ``ecologits-prefill`` (default), ``ecologits`` or ``mistral-lca-2025``."""

OTEL_DOWNSTREAM_GREEN_HOSTING: Final = "OTEL_DOWNSTREAM_GREEN_HOSTING"
"""``true`` when the service's own hosting is green (SWD data-centre segment)."""

OTEL_DOWNSTREAM_INCLUDE_DATACENTER: Final = "OTEL_DOWNSTREAM_INCLUDE_DATACENTER"
"""``true`` to also count the SWD data-centre segment (off: it is not Category D)."""

OTEL_DOWNSTREAM_INCLUDE_EMBODIED: Final = "OTEL_DOWNSTREAM_INCLUDE_EMBODIED"
"""``true`` to add embodied device/hardware carbon (consequential view; off by default)."""

OTEL_DOWNSTREAM_DESKTOP_LAPTOP_SHARE: Final = "OTEL_DOWNSTREAM_DESKTOP_LAPTOP_SHARE"
"""Share (0..1) of the ``desktop`` device class that is a laptop rather than a desktop + monitor."""

OTEL_DOWNSTREAM_HYDRO_EVAPORATION: Final = "OTEL_DOWNSTREAM_HYDRO_EVAPORATION"
"""``true`` to count reservoir evaporation of hydropower in the water intensity of electricity."""

# --- HTTP middleware (WSGI/ASGI) -----------------------------------------------------------------
# Client country (trusted proxies, CDN country header, GeoIP database) is configured in the
# "Client country" section and read by ``country.CountryResolver.from_env``.
OTEL_DOWNSTREAM_HTTP_EXCLUDED_PATHS: Final = "OTEL_DOWNSTREAM_HTTP_EXCLUDED_PATHS"
"""Comma-separated paths the middleware leaves alone (e.g. ``/metrics,/healthz``); ``/x/`` excludes below."""

OTEL_DOWNSTREAM_HTTP_CAPTURE_USER_AGENT: Final = "OTEL_DOWNSTREAM_HTTP_CAPTURE_USER_AGENT"
"""``true`` to record the raw ``user_agent.original`` (personal data; off by default)."""

OTEL_DOWNSTREAM_HTTP_CAPTURE_CLIENT_IP: Final = "OTEL_DOWNSTREAM_HTTP_CAPTURE_CLIENT_IP"
"""``true`` to record ``client.address`` (personal data; off by default)."""

OTEL_DOWNSTREAM_HTTP_TRUST_TRACE_CONTEXT: Final = "OTEL_DOWNSTREAM_HTTP_TRUST_TRACE_CONTEXT"
"""``true`` when every caller is one of your own services (behind a gateway that strips the
headers): the SERVER span becomes a child of the incoming ``traceparent``, taking its sampling
decision and ``tracestate``. Default ``false``: a public endpoint, whose span starts its own trace
and links to the caller's, so no client decides whether a request is sampled or what it weighs."""

OTEL_DOWNSTREAM_ENGAGEMENT_BEACON: Final = "OTEL_DOWNSTREAM_ENGAGEMENT_BEACON"
"""``true`` to accept engagement-time beacons (POST JSON ``{"seconds": s}``); off by default."""

OTEL_DOWNSTREAM_ENGAGEMENT_PATH: Final = "OTEL_DOWNSTREAM_ENGAGEMENT_PATH"
"""Path of the engagement beacon (default ``/.well-known/downstream/engagement``)."""

# --- Client country ----------------------------------------------------------------------------
OTEL_DOWNSTREAM_TRUSTED_PROXIES: Final = "OTEL_DOWNSTREAM_TRUSTED_PROXIES"
"""Number of reverse proxies in front of the app whose ``X-Forwarded-For``/``Forwarded`` entries are
trusted (default 0: only the TCP peer address is used)."""

OTEL_DOWNSTREAM_COUNTRY_HEADER: Final = "OTEL_DOWNSTREAM_COUNTRY_HEADER"
"""Request header a trusted CDN sets to the client's ISO country (e.g. ``CF-IPCountry``,
``CloudFront-Viewer-Country``) or a preset (``cloudflare``, ``cloudfront``, ``vercel``, ``appengine``);
unset = headers are not trusted for the country."""

OTEL_DOWNSTREAM_GEOIP_DB: Final = "OTEL_DOWNSTREAM_GEOIP_DB"
"""Path of a MaxMind/DB-IP/IPinfo ``.mmdb`` country or city database used before the built-in
offline table (needs the ``geoip`` extra)."""

OTEL_DOWNSTREAM_BUILTIN_GEOIP: Final = "OTEL_DOWNSTREAM_BUILTIN_GEOIP"
"""``false`` to switch off the built-in offline IP-to-country table (``iptocc``; default true)."""


# --- Customer-hosted infrastructure (host sampler) ----------------------------------------------
OTEL_DOWNSTREAM_HOST_PROFILE: Final = "OTEL_DOWNSTREAM_HOST_PROFILE"
"""Host power profile: ``auto`` (sized from this host, default), ``edge_gateway``, ``mini_pc``,
``server_1u`` or ``gpu_server`` (see ``exporters/data/host_profiles.csv``)."""

OTEL_DOWNSTREAM_HOST_INTERVAL: Final = "OTEL_DOWNSTREAM_HOST_INTERVAL"
"""Seconds between host samples (default 15)."""

OTEL_DOWNSTREAM_HOST_COUNTRY: Final = "OTEL_DOWNSTREAM_HOST_COUNTRY"
"""ISO country code where the customer's host draws its electricity (default ``ZZ``, world)."""

OTEL_DOWNSTREAM_HOST_PUE: Final = "OTEL_DOWNSTREAM_HOST_PUE"
"""Power usage effectiveness of the room the host sits in (default 1.0: no data-centre overhead)."""

OTEL_DOWNSTREAM_HOST_SHARE: Final = "OTEL_DOWNSTREAM_HOST_SHARE"
"""Share (0..1) of the host attributable to the service, or ``process`` to use this process's
share of CPU time (default 1.0)."""

OTEL_DOWNSTREAM_HOST_EMBODIED: Final = "OTEL_DOWNSTREAM_HOST_EMBODIED"
"""``true`` to add the hardware's embodied carbon, amortised over its lifetime (default false)."""

OTEL_DOWNSTREAM_HOST_POWERCAP_ROOT: Final = "OTEL_DOWNSTREAM_HOST_POWERCAP_ROOT"
"""Where to look for RAPL counters (default ``/sys/class/powercap``)."""

OTEL_DOWNSTREAM_HOST_GPU_UTILISATION: Final = "OTEL_DOWNSTREAM_HOST_GPU_UTILISATION"
"""GPU utilisation (0..1) assumed by the model when NVML cannot measure it (default 0.5, CCF's
fallback utilisation)."""


# --- LLM client wrappers (OpenAI, Mistral) -----------------------------------------------------
OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME: Final = "OTEL_DOWNSTREAM_OPENAI_PROVIDER_NAME"
"""``gen_ai.provider.name`` for OpenAI-SDK calls (default ``openai``, ``azure.ai.openai`` for Azure
clients); set it when the SDK talks to another OpenAI-compatible provider."""

OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME: Final = "OTEL_DOWNSTREAM_MISTRAL_PROVIDER_NAME"
"""``gen_ai.provider.name`` for Mistral-SDK calls (default ``mistral_ai``)."""


# --- Service (otel-downstream serve) ------------------------------------------------------------
PROMETHEUS_MULTIPROC_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own variable: the directory where each worker of a pre-fork server writes
its values, and from which one ``/metrics`` sums them."""


def prometheus_multiproc_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set, else ``None`` (read by the agent's ``/metrics``
    serving and by the metrics module alike, so neither imports the other for it)."""
    return os.environ.get(PROMETHEUS_MULTIPROC_DIR) or None


OTEL_DOWNSTREAM_SERVE_HOST: Final = "OTEL_DOWNSTREAM_SERVE_HOST"
"""Address every ``serve`` listener binds (default ``127.0.0.1``; ``0.0.0.0`` to accept remote)."""

OTEL_DOWNSTREAM_SERVE_OTLP_HTTP_PORT: Final = "OTEL_DOWNSTREAM_SERVE_OTLP_HTTP_PORT"
"""OTLP/HTTP port (default 4318; 0 picks a free port; negative disables)."""

OTEL_DOWNSTREAM_SERVE_OTLP_GRPC_PORT: Final = "OTEL_DOWNSTREAM_SERVE_OTLP_GRPC_PORT"
"""OTLP/gRPC port (default 4317; 0 picks a free port; negative disables)."""

OTEL_DOWNSTREAM_SERVE_METRICS_PORT: Final = "OTEL_DOWNSTREAM_SERVE_METRICS_PORT"
"""Port of ``/metrics``, ``/healthz`` and ``/readyz`` (default 9464; 0 picks a free port)."""

OTEL_DOWNSTREAM_SERVE_TOKEN: Final = "OTEL_DOWNSTREAM_SERVE_TOKEN"
"""Bearer token OTLP senders must present (``Authorization: Bearer <token>``); unset = no auth."""

OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES: Final = "OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES"
"""Largest OTLP request body accepted on the wire, compressed (default 16 MiB)."""

OTEL_DOWNSTREAM_SERVE_MAX_DECOMPRESSED_BYTES: Final = "OTEL_DOWNSTREAM_SERVE_MAX_DECOMPRESSED_BYTES"
"""Largest OTLP request after decompression, also the gRPC message limit (default 64 MiB)."""

OTEL_DOWNSTREAM_SERVE_MAX_CONCURRENT_EXPORTS: Final = "OTEL_DOWNSTREAM_SERVE_MAX_CONCURRENT_EXPORTS"
"""Exports processed at once before senders get 503/UNAVAILABLE and retry (default 16)."""

OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS: Final = "OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS"
"""Open OTLP/HTTP connections (one thread each) before new ones get 503 and close, and open gRPC
connections (default 256)."""

OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS_PER_SOURCE: Final = (
    "OTEL_DOWNSTREAM_SERVE_MAX_CONNECTIONS_PER_SOURCE"
)
"""Open OTLP/HTTP connections from one peer address before its new ones get 503 (default 64)."""

OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES_IN_FLIGHT: Final = (
    "OTEL_DOWNSTREAM_SERVE_MAX_BODY_BYTES_IN_FLIGHT"
)
"""OTLP/HTTP body bytes being received at once over all connections, counted as they arrive,
before a sender gets 503 and retries (default 256 MiB)."""

OTEL_DOWNSTREAM_SERVE_MAX_SPANS_PER_EXPORT: Final = "OTEL_DOWNSTREAM_SERVE_MAX_SPANS_PER_EXPORT"
"""Spans in one export before the whole export is refused (413 / RESOURCE_EXHAUSTED): the decoded
spans are what an export holds in memory (default 200,000)."""

OTEL_DOWNSTREAM_SERVE_MAX_SPAN_BYTES: Final = "OTEL_DOWNSTREAM_SERVE_MAX_SPAN_BYTES"
"""Encoded size of one span before that span alone is rejected (``span_too_large``; default 1 MiB):
it bounds the protobuf messages one span can make, which is what costs memory."""

OTEL_DOWNSTREAM_SERVE_REQUEST_TIMEOUT: Final = "OTEL_DOWNSTREAM_SERVE_REQUEST_TIMEOUT"
"""Seconds to receive one OTLP/HTTP request, head and body, before 503 (retryable), or one gRPC
request message before DEADLINE_EXCEEDED (default 30)."""

OTEL_DOWNSTREAM_SERVE_FIRST_BYTE_TIMEOUT: Final = "OTEL_DOWNSTREAM_SERVE_FIRST_BYTE_TIMEOUT"
"""Seconds a new OTLP/HTTP or ``/metrics`` connection may wait before sending the first byte of its
first request, after which it is closed (default 10; kept-alive connections wait the idle timeout).
"""


# --- Exporter / configure (in-process) ----------------------------------------------------------
OTEL_DOWNSTREAM_METRICS_PORT: Final = "OTEL_DOWNSTREAM_METRICS_PORT"
"""Port of the in-process ``/metrics`` server ``configure()`` starts (default 9464; 0 = none, mount
``metrics_wsgi_app()``/``metrics_asgi_app()`` instead)."""

OTEL_DOWNSTREAM_METRICS_ADDR: Final = "OTEL_DOWNSTREAM_METRICS_ADDR"
"""Address that ``/metrics`` server binds (default ``127.0.0.1``)."""

OTEL_DOWNSTREAM_MULTIPROCESS: Final = "OTEL_DOWNSTREAM_MULTIPROCESS"
"""``auto`` (default): in a pre-fork worker group (gunicorn, uWSGI, ``uvicorn --workers``,
``hypercorn -w``) ``configure()`` switches prometheus-client's multiprocess mode on in a directory
of its own, so the ``/metrics`` port serves the sum of every worker; ``true`` does so in any process;
``false`` never does (a ``PROMETHEUS_MULTIPROC_DIR`` you set is honoured either way)."""

OTEL_DOWNSTREAM_OTLP_ENDPOINT: Final = "OTEL_DOWNSTREAM_OTLP_ENDPOINT"
"""OTLP/HTTP traces URL (e.g. ``http://127.0.0.1:4318/v1/traces``) for exporting the sampled spans
alongside the footprint; unset = no span export."""

OTEL_DOWNSTREAM_HOST_SAMPLER: Final = "OTEL_DOWNSTREAM_HOST_SAMPLER"
"""``true`` for ``configure()`` to start the host sampler (default false)."""

OTEL_DOWNSTREAM_RECORD_UNSAMPLED: Final = "OTEL_DOWNSTREAM_RECORD_UNSAMPLED"
"""``true`` (default) to record, not drop, request/LLM/host spans the trace sampler drops, so the
footprint counts every one while the tracing backend still gets only the sampled ones."""


# --- Accounting (configure() and serve alike) -----------------------------------------------------
OTEL_DOWNSTREAM_MODEL_LABELS: Final = "OTEL_DOWNSTREAM_MODEL_LABELS"
"""Comma-separated model names always given their own ``gen_ai_request_model`` label (every model
the engine's registry knows is always allowed as well)."""

OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT: Final = "OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT"
"""Distinct other model names labelled before the rest become ``other`` (default 200)."""

OTEL_DOWNSTREAM_LABEL_SET_LIMIT: Final = "OTEL_DOWNSTREAM_LABEL_SET_LIMIT"
"""Distinct label sets per metric group (HTTP: service, country, device class; GenAI: service,
provider, model; host: service, country) before new sets are folded into ``ZZ``/``other``
(default 5000; totals stay exact)."""

OTEL_DOWNSTREAM_EDGE_SERVICES: Final = "OTEL_DOWNSTREAM_EDGE_SERVICES"
"""Comma-separated ``service.name`` values whose SERVER spans are customer requests; SERVER spans
of other services are internal hops and add no footprint. Unset = every service is an edge."""

OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY: Final = "OTEL_DOWNSTREAM_MIN_SAMPLING_PROBABILITY"
"""The lowest trace-sampling probability your own samplers use (default 1: no sampling trusted).
A span's ``ot=th`` weight is believed up to ``1 / probability``; a larger claim is capped there and
counted in ``downstream_unknown_total{kind="sampling_weight"}``, since a client can write any
threshold into the ``tracestate`` it sends."""

OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS: Final = "OTEL_DOWNSTREAM_NEW_SERIES_HOLD_SECONDS"
"""Seconds a new series stays at 0 at least before its first amount is added (default 0: until
one scrape has shown it at 0). Set it to the scrape interval when several Prometheus servers
scrape the same target (an HA pair), so each sees the series at 0 and counts its first increment."""


def env_str(name: str, default: str) -> str:
    """The variable's value, stripped, or ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean variable; an unrecognised value is a configuration error that names it."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use true or false")


def env_float(name: str, default: float) -> float:
    """Parse a finite float variable; a bad value is a configuration error that names it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={raw!r} is not a finite number")
    return value


def env_int(name: str, default: int) -> int:
    """Parse an integer variable; a bad value is a configuration error that names it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
