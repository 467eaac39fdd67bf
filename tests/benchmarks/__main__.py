"""Run every ``bench_*.py`` module here in its own process and print its report.

Each benchmark measures its baseline (bare app, official instrumentation, reference tool) in the same
run and prints ratios against it, so figures from different machines stay comparable. Pass names
(e.g. ``python -m tests.benchmarks engine``) to run a subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    wanted = set(argv)
    failed = 0
    for path in sorted(here.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"\n=== {name} ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"tests.benchmarks.{path.stem}"])
        if rc:
            print(f"benchmark {name} failed with exit code {rc}", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
