"""Reading the factor tables shipped in ``exporters/data/``.

Through ``importlib.resources``, so the tables load from a wheel or a zip as well as from a checkout.
Callers read lazily (on first use, then cache what they build), never at import.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from typing import Any, Final

DATA_PACKAGE: Final = "otel_downstream.exporters.data"


def read_text(name: str) -> str:
    """The UTF-8 text of one data file."""
    return resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def read_csv(name: str) -> list[dict[str, str]]:
    """The rows of one CSV data file, keyed by its header."""
    return list(csv.DictReader(io.StringIO(read_text(name))))


def read_json(name: str) -> Any:
    """One JSON data file, parsed."""
    return json.loads(read_text(name))
