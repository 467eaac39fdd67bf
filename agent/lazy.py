"""Package ``__init__`` modules that name their public API without importing it.

Each public package lists its names and the module that defines each; a name is imported on first
use. So importing one integration (or the attribute names) never pulls in frameworks, SDKs or the
exporters, and ``from otel_downstream.agent import configure`` still reads as one flat API.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public ``name`` lives in the module
    ``where[name]`` (relative to the package)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
