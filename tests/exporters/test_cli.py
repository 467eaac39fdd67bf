"""The ``otel-downstream`` dispatcher: help lists every sub-command without importing them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_downstream.exporters.cli import main as cli


def test_help_lists_every_command_and_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_help_imports_no_sub_command_module() -> None:
    code = (
        "import sys\n"
        "from otel_downstream.exporters.cli import main as cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m, _ in cli.COMMANDS.values()\n"
        "          if m in sys.modules or f'otel_downstream.exporters.cli.{m}' in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip().endswith("[]")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
