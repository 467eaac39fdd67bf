"""The ``otel-downstream`` command: a thin dispatcher over one module per sub-command.

Each sub-command module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported
only when chosen, so ``otel-downstream estimate`` never pays for the OTLP service's imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# sub-command -> (module under otel_downstream.exporters.cli, or a full module path; one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "estimate": (
        "estimate",
        "what-if footprints for a transfer, a device session or an LLM call",
    ),
    "serve": ("serve", "receive OTLP traces and serve footprint metrics on /metrics"),
    "demo": (
        "otel_downstream.exporters.demo.command",
        "simulate a small web shop and its LLM calls here, then print their footprint",
    ),
    "report": ("report", "totals by segment, country, device class and model"),
    "sample-host": ("sample_host", "sample this host's energy as customer-hosted infrastructure"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of sub-command ``only`` (the one being run) filled in."""
    parser = argparse.ArgumentParser(
        prog="otel-downstream",
        description="Downstream footprint (energy, CO2e, water) of web and AI services.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:  # the others stay unimported: `--help` lists them from COMMANDS
            _load(module).add_arguments(sub_parser)
    return parser


def _load(module: str) -> Any:
    """The sub-command module (typed loosely: each only promises add_arguments and run)."""
    return importlib.import_module(module if "." in module else f"{__package__}.{module}")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in COMMANDS), None)
    try:
        parser = build_parser(only=chosen)
    except ImportError as exc:
        print(f"otel-downstream: {chosen}: missing optional dependency ({exc})", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    module = _load(COMMANDS[args.command][0])
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
