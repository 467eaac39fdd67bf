"""The installed layout: namespace package with the two mapped subpackages and their data."""

from __future__ import annotations

import importlib
from importlib import resources


def test_subpackages_import_from_namespace() -> None:
    agent = importlib.import_module("otel_downstream.agent")
    exporters = importlib.import_module("otel_downstream.exporters")
    assert "WSGIMiddleware" in agent.__all__
    assert "FootprintExporter" in exporters.__all__


def test_typed_markers_ship() -> None:
    for package in ("otel_downstream.agent", "otel_downstream.exporters"):
        assert resources.files(package).joinpath("py.typed").is_file()
