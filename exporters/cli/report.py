"""``otel-downstream report``: footprint totals from a ``/metrics`` endpoint or a saved scrape.

The counters in Prometheus are the ledger: this reads one exposition (from ``configure()``'s
endpoint, from ``serve``, or from a file saved with ``curl``) and prints the totals by segment,
country, device class and model with per-request, per-call, per-1,000-token and per-user intensities,
or the same as JSON for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from otel_downstream.exporters.metrics.totals import render, summarize

DEFAULT_URL = "http://127.0.0.1:9464/metrics"
MAX_BYTES = 64 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help=f"scrape this /metrics URL (default {DEFAULT_URL})")
    source.add_argument("--file", help="read a saved exposition (Prometheus text); '-' for stdin")
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")


def _read(args: argparse.Namespace) -> tuple[str, str]:
    if args.file == "-":
        return sys.stdin.read(MAX_BYTES), "stdin"
    if args.file:
        return Path(args.file).read_text(encoding="utf-8"), args.file
    url = args.url or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--url={url!r}: expected an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read(MAX_BYTES).decode("utf-8"), url
    except urllib.error.HTTPError as exc:  # the server answered, with an error status
        raise OSError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:  # refused, unknown host, timeout: name what was tried
        raise OSError(f"cannot read {url}: {exc.reason}") from exc
    except (OSError, UnicodeDecodeError) as exc:  # reset mid-body, timeout reading, not UTF-8
        raise OSError(f"cannot read {url}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    try:
        text, source = _read(args)
        summary = summarize(text)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"otel-downstream report: {exc}", file=sys.stderr)
        return 1
    if not summary.total.energy_j and not summary.requests and not summary.llm_calls:
        print(
            f"otel-downstream report: no downstream_* footprint metrics in {source}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(summary), indent=2, sort_keys=True))
    else:
        print(render(summary, source, title=f"Downstream footprint from {source}"))
    return 0
