"""Instrumentation: WSGI/ASGI middleware, LLM client wrappers and the host sampler.

Public: the names in ``__all__`` (imported lazily, so importing one integration never pulls in
frameworks, SDKs or the exporters). Every module below this package is internal: import from here,
or from the ``__all__`` of a subpackage (``otel_downstream.agent.client``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = [
    "ASGIMiddleware",
    "HostSampler",
    "MistralInstrumentor",
    "OpenAIInstrumentor",
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
    "HostSampler": "host.sampler",
    "configure": "pipeline",
    "metrics_asgi_app": "pipeline",
    "metrics_wsgi_app": "pipeline",
    "instrument_mistral": "genai.mistral_client",
    "uninstrument_mistral": "genai.mistral_client",
    "MistralInstrumentor": "genai.mistral_client",
    "instrument_openai": "genai.openai_client",
    "uninstrument_openai": "genai.openai_client",
    "OpenAIInstrumentor": "genai.openai_client",
}

if TYPE_CHECKING:
    from otel_downstream.agent.genai.mistral_client import (
        MistralInstrumentor,
        instrument_mistral,
        uninstrument_mistral,
    )
    from otel_downstream.agent.genai.openai_client import (
        OpenAIInstrumentor,
        instrument_openai,
        uninstrument_openai,
    )
    from otel_downstream.agent.host.sampler import HostSampler
    from otel_downstream.agent.http.asgi import ASGIMiddleware
    from otel_downstream.agent.http.wsgi import WSGIMiddleware
    from otel_downstream.agent.pipeline import configure, metrics_asgi_app, metrics_wsgi_app

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
