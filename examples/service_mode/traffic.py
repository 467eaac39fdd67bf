"""Visitors for the service-mode shop: the demo's seeded traffic mix, once or every N seconds.

    python examples/service_mode/traffic.py --url http://127.0.0.1:8000 --requests 300 --every 30

Phones, desktops, TVs, consoles, watches and crawlers from several countries (sent as one
trusted X-Forwarded-For hop), loading pages, calling the API, uploading and asking the assistants.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from otel_downstream.exporters.demo import plan_visits, run_visits


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--every", type=float, default=0.0, help="repeat every N s (0 = once)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    round_ = 0
    while True:
        stats = run_visits(plan_visits(args.requests, args.seed + round_), args.url)
        print(f"round {round_}: {stats.requests} requests in {stats.seconds:.1f} s", flush=True)
        for failure, count in stats.failures.most_common(3):
            print(f"  failed x{count}: {failure}", flush=True)
        round_ += 1
        if args.every <= 0:
            return 1 if stats.failures else 0
        time.sleep(args.every)


if __name__ == "__main__":
    raise SystemExit(main())
