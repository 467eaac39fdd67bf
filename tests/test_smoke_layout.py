"""The installed layout: namespace package with the two mapped subpackages and their data."""

from __future__ import annotations

import importlib
import re
from importlib import resources
from pathlib import Path

PUBLIC = {
    "otel_downstream.agent": [
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
    ],
    "otel_downstream.agent.client": [
        "CountryResolver",
        "CountryResult",
        "DeviceInfo",
        "address_country",
        "classify",
        "headers_from_asgi",
        "headers_from_environ",
        "peer_from_asgi",
        "peer_from_environ",
        "warm_up",
    ],
    "otel_downstream.exporters": [
        "AccountingSettings",
        "Engine",
        "EngineConfig",
        "Footprint",
        "FootprintExporter",
        "FootprintSpanProcessor",
        "Impact",
    ],
    "otel_downstream.exporters.engine": [
        "Engine",
        "EngineConfig",
        "known_models",
        "llm_call",
        "transfer",
    ],
    "otel_downstream.exporters.metrics": [
        "CO2E",
        "ENERGY",
        "FUNCTIONAL_UNITS",
        "GEN_AI_CALLS",
        "GEN_AI_TOKENS",
        "REQUESTS",
        "REQUEST_CO2E",
        "TRANSFER_BYTES",
        "WATER",
    ],
    "otel_downstream.exporters.demo": [
        "FakeLLMAPI",
        "LLMClients",
        "build_app",
        "plan_visits",
        "run_visits",
    ],
}
"""Every public name, by package: what README, docs and examples may import. Changing it is a
decision (a new public name, or a break for users), so this list changes with it."""


def test_public_api_is_exactly_this() -> None:
    for package_name, names in PUBLIC.items():
        package = importlib.import_module(package_name)
        assert package.__all__ == names, package_name
        for name in names:
            assert getattr(package, name) is not None, f"{package_name}.{name}"
        assert dir(package) == sorted(names)


_IMPORT = re.compile(r"from (otel_downstream[\w.]*) import (\([^)]*\)|[^\n]*)")


def test_readme_docs_and_examples_import_only_public_names() -> None:
    """Users copy what the docs show: a deep import there is an internal module made public."""
    root = Path(__file__).resolve().parents[1]
    texts = [root / "README.md", *(root / "docs").glob("*.md"), *(root / "examples").rglob("*.py")]
    seen = 0
    for path in texts:
        for match in _IMPORT.finditer(path.read_text(encoding="utf-8")):
            module, names = match.group(1), match.group(2)
            allowed = PUBLIC.get(module)
            assert allowed is not None, f"{path.name}: imports from internal module {module}"
            listed = re.sub(r"#[^\n]*", "", names).strip("() \n")
            for item in listed.split(","):
                name = item.split(" as ")[0].strip()
                if name:
                    assert name in allowed, f"{path.name}: {module}.{name} is not public"
            seen += 1
    assert seen > 10


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
