"""The README stays true to the code: every variable, every sub-command, the two commands."""

from __future__ import annotations

from pathlib import Path

from otel_downstream.agent import environment
from otel_downstream.exporters.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_environment_variable_is_documented() -> None:
    names = [
        v for k, v in vars(environment).items() if k.startswith("OTEL_") and isinstance(v, str)
    ]
    assert len(names) > 30
    missing = [name for name in names if f"`{name}`" not in README]
    assert missing == []


def test_every_sub_command_is_mentioned() -> None:
    for name in COMMANDS:
        assert f"otel-downstream {name}" in README


def test_the_two_commands_come_first() -> None:
    head = README.split("## Three ways", 1)[0]
    assert "make demo" in head and "make test" in head


def test_linked_documents_exist() -> None:
    import re

    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
