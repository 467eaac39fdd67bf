"""Instrumentation: WSGI/ASGI middleware, LLM client wrappers and the host sampler.

Names are imported lazily so that importing one integration (or ``attributes``) never pulls in
frameworks, SDKs or the exporters.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ASGIMiddleware",
    "WSGIMiddleware",
    "configure",
    "instrument_mistral",
    "instrument_openai",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "uninstrument_mistral",
    "uninstrument_openai",
]

_WHERE = {
    "ASGIMiddleware": "http.asgi",
    "WSGIMiddleware": "http.wsgi",
    "configure": "pipeline",
    "metrics_asgi_app": "pipeline",
    "metrics_wsgi_app": "pipeline",
    "instrument_mistral": "genai.mistral_client",
    "instrument_openai": "genai.openai_client",
    "uninstrument_mistral": "genai.mistral_client",
    "uninstrument_openai": "genai.openai_client",
}

if TYPE_CHECKING:
    from otel_downstream.agent.genai.mistral_client import instrument_mistral, uninstrument_mistral
    from otel_downstream.agent.genai.openai_client import instrument_openai, uninstrument_openai
    from otel_downstream.agent.http.asgi import ASGIMiddleware
    from otel_downstream.agent.http.wsgi import WSGIMiddleware
    from otel_downstream.agent.pipeline import configure, metrics_asgi_app, metrics_wsgi_app


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
