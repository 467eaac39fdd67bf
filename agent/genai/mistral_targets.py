"""Where the Mistral SDK keeps the methods we wrap, in each layout it has shipped.

The 3.x layout (``mistralai.client``), the 1.x/2.x one (``mistralai``) and the Azure and GCP clients
3.x bundles (``mistralai.azure.client``, ``mistralai.gcp.client``) each name the same resources
differently. Kept apart from the wrapping (:mod:`.mistral_client`) so that following a new SDK
release touches only this table and its finders, never how a call is traced.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from otel_downstream.agent.genai.record import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
)

__all__ = ["HTTP_METHODS", "base_sdks", "owners", "packages"]


# (client attribute path, module, class, operation, methods -> streamed? (None: when the call
# passes stream=True))
_Target = tuple[str, str, str, str, dict[str, bool | None]]
_COMPLETIONS: dict[str, bool | None] = {
    "complete": False,
    "complete_async": False,
    "stream": True,
    "stream_async": True,
}
_CONVERSATIONS: dict[str, bool | None] = {
    f"{verb}{suffix}": streamed
    for verb in ("start", "append", "restart")
    for suffix, streamed in (
        ("", False),
        ("_async", False),
        ("_stream", True),
        ("_stream_async", True),
    )
}
_TARGETS: tuple[_Target, ...] = (
    ("chat", "chat", "Chat", OPERATION_CHAT, _COMPLETIONS),
    ("agents", "agents", "Agents", OPERATION_CHAT, _COMPLETIONS),
    ("fim", "fim", "Fim", OPERATION_TEXT_COMPLETION, _COMPLETIONS),
    (
        "embeddings",
        "embeddings",
        "Embeddings",
        OPERATION_EMBEDDINGS,
        {"create": False, "create_async": False},
    ),
    # POST /v1/responses: one method, streamed when called with stream=True
    (
        "responses",
        "responses",
        "Responses",
        OPERATION_CHAT,
        {"create": None, "create_async": None},
    ),
    (
        "beta.conversations",
        "conversations",
        "Conversations",
        OPERATION_CHAT,
        _CONVERSATIONS,
    ),
)
# Clients for other clouds that mistralai 3.x bundles, each with its own BaseSDK and Chat (GCP's also
# Fim): patched too when they import (the GCP one needs google-auth; without it, it is skipped).
# Their calls keep gen_ai.provider.name=mistral_ai: the GenAI conventions define no value for Mistral
# models hosted on Azure or Vertex AI (provider_name / the environment variable can say otherwise).
_CLOUD_PACKAGES = ("mistralai.azure.client", "mistralai.gcp.client")
HTTP_METHODS = ("do_request", "do_request_async")


def _package() -> str:
    """``mistralai.client`` (SDK 3.x) or ``mistralai`` (1.x/2.x)."""
    try:
        importlib.import_module("mistralai.client.basesdk")
    except ImportError:
        try:
            importlib.import_module("mistralai.basesdk")
        except ImportError as exc:
            raise ImportError(
                "instrument_mistral needs the mistralai SDK (>= 1.0): "
                "pip install 'otel-downstream[mistral]'"
            ) from exc
        return "mistralai"
    return "mistralai.client"


def packages() -> list[str]:
    """The SDK's own package, then each bundled cloud client package that imports."""
    found = [_package()]
    for name in _CLOUD_PACKAGES:
        try:
            importlib.import_module(f"{name}.basesdk")
        except Exception:  # absent from this SDK version, or its own dependencies are missing
            continue
        found.append(name)
    return found


def _module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def owners(client: Any, packages: list[str]) -> Iterator[tuple[Any, str, dict[str, bool | None]]]:
    """(object to patch, operation, methods) for one client's sub-SDKs, or for the SDK classes of
    every package in ``packages`` when ``client`` is None."""
    if client is not None:
        for attribute, _, _, operation, methods in _TARGETS:
            try:
                owner = client
                for part in attribute.split("."):
                    owner = getattr(owner, part)
            except (ImportError, AttributeError):
                continue  # this SDK version (or this cloud's client) has no such resource
            yield owner, operation, methods
        return
    for package in packages:
        for _, module, cls, operation, methods in _TARGETS:
            try:
                owner = getattr(_module(package, module), cls)
            except (ImportError, AttributeError):
                continue
            yield owner, operation, methods


def base_sdks(packages: list[str]) -> Iterator[Any]:
    for package in packages:
        yield _module(package, "basesdk").BaseSDK
