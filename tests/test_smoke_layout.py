"""The installed layout: namespace package with the two mapped subpackages and their data."""

from __future__ import annotations

import importlib
from importlib import resources


def test_public_api_is_exactly_this() -> None:
    agent = importlib.import_module("otel_downstream.agent")
    exporters = importlib.import_module("otel_downstream.exporters")
    assert agent.__all__ == [
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
    assert exporters.__all__ == ["Footprint", "FootprintExporter", "Impact"]
    for package in (agent, exporters):
        for name in package.__all__:
            assert getattr(package, name) is not None


def test_importing_the_agent_imports_no_framework_sdk_or_exporter() -> None:
    import subprocess
    import sys

    code = (
        "import sys, otel_downstream.agent as a; a.__dir__();"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'flask', 'django', 'starlette',"
        " 'openai', 'mistralai', 'prometheus_client'} or m.startswith('otel_downstream.exporters')];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_typed_markers_ship() -> None:
    for package in ("otel_downstream.agent", "otel_downstream.exporters"):
        assert resources.files(package).joinpath("py.typed").is_file()
