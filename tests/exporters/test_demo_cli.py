"""What a newcomer reads from ``otel-downstream demo``: plain help, and a summary that does not
point at a /metrics server the demo has already stopped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_downstream.agent import environment as env
from otel_downstream.exporters.cli.main import build_parser


def _help(command: str) -> None:
    """Print ``otel-downstream <command> --help`` (argparse exits after printing)."""
    with pytest.raises(SystemExit):
        build_parser(only=command).parse_args([command, "--help"])


def test_demo_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    build_parser().print_help()
    listing = capsys.readouterr().out
    assert "main job" not in listing and "embedded defaults" not in listing
    assert re.search(r"demo\s+simulate a small web shop", listing)
    _help("demo")
    text = " ".join(capsys.readouterr().out.split())
    assert "half a minute of simulated visitors" in text and "read back from /metrics" in text


def test_serve_help_names_the_variables_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    _help("serve")
    text = "".join(capsys.readouterr().out.split())  # argparse wraps long names anywhere
    for variable in (
        env.OTEL_DOWNSTREAM_SERVE_HOST,
        env.OTEL_DOWNSTREAM_SERVE_OTLP_HTTP_PORT,
        env.OTEL_DOWNSTREAM_SERVE_OTLP_GRPC_PORT,
        env.OTEL_DOWNSTREAM_SERVE_METRICS_PORT,
    ):
        assert variable in text, variable
    assert "envSERVE_HOST" not in text


@pytest.mark.e2e
def test_the_summary_says_metrics_stopped_unless_kept_serving() -> None:
    script = Path(sys.executable).with_name("otel-downstream")
    done = subprocess.run(
        [str(script), "demo", "--requests", "20", "--metrics-port", "0", "--host-interval", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(
        r"Metrics: http://127\.0\.0\.1:\d+/metrics \(stopped; rerun with --keep-serving\)",
        done.stdout,
    )
