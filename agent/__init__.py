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
    "ASGIMiddleware": "asgi",
    "WSGIMiddleware": "wsgi",
    "configure": "pipeline",
    "metrics_asgi_app": "pipeline",
    "metrics_wsgi_app": "pipeline",
    "instrument_mistral": "mistral",
    "instrument_openai": "openai",
    "uninstrument_mistral": "mistral",
    "uninstrument_openai": "openai",
}

if TYPE_CHECKING:
    from .asgi import ASGIMiddleware
    from .mistral import instrument_mistral, uninstrument_mistral
    from .openai import instrument_openai, uninstrument_openai
    from .pipeline import configure, metrics_asgi_app, metrics_wsgi_app
    from .wsgi import WSGIMiddleware


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
