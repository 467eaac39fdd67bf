"""``otel-downstream demo``: a small shop, its visitors and a clearly fake LLM API, on this machine.

Public (for tests and examples, never imported by the product at run time): the names in
``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = ["FakeLLMAPI", "LLMClients", "build_app", "plan_visits", "run_visits"]

_WHERE = {
    "FakeLLMAPI": "fake_llm.api",
    "LLMClients": "app",
    "build_app": "app",
    "plan_visits": "traffic",
    "run_visits": "traffic",
}

if TYPE_CHECKING:
    from otel_downstream.exporters.demo.app import LLMClients, build_app
    from otel_downstream.exporters.demo.fake_llm.api import FakeLLMAPI
    from otel_downstream.exporters.demo.traffic import plan_visits, run_visits

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
