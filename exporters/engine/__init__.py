"""The footprint methods: network (SWD v4, v3, OneByte), customer devices, LLM calls, host power,
grid and water intensities, each with its cited data in ``exporters/data``.

Public: the names in ``__all__``. The engine imports neither the agent's middleware nor the
accounting (docs/architecture.md): a method is a pure function of its inputs and data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = ["Engine", "EngineConfig", "known_models", "llm_call", "transfer"]

_WHERE = {
    "Engine": "engine",
    "EngineConfig": "config",
    "known_models": "llm.registry",
    "llm_call": "llm.call",
    "transfer": "network.transfer",
}

if TYPE_CHECKING:
    from otel_downstream.exporters.engine.config import EngineConfig
    from otel_downstream.exporters.engine.engine import Engine
    from otel_downstream.exporters.engine.llm.call import llm_call
    from otel_downstream.exporters.engine.llm.registry import known_models
    from otel_downstream.exporters.engine.network.transfer import transfer

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
