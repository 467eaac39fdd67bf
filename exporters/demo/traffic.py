"""The demo's visitors: a seeded, bounded traffic mix driven with httpx against the demo app.

Each simulated visitor has a device (a real User-Agent string the classifier maps to its class) and
a country (a public address that the offline ``iptocc`` table places there, sent the way a load
balancer would: appended to ``X-Forwarded-For``, which the app trusts one hop deep). People load
pages with their assets (cached after the first page), call the JSON API, upload files, ask the
two assistants (OpenAI and Mistral, streamed or not) and report how long pages stayed visible
(engagement beacons); crawlers fetch robots.txt and pages without cookies. The plan is built up
front from the seed, so a run is bounded (exactly ``requests`` HTTP requests) and repeatable.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from otel_downstream.exporters.demo.visitors import (
    ASSETS,
    COUNTRIES,
    DEVICES,
    MISTRAL_MODELS,
    OPENAI_MODELS,
)

__all__ = ["Step", "TrafficStats", "Visit", "plan_visits", "run_visits"]

_PROMPTS: Final = (
    "Which of these jackets is warmest for -10 °C?",
    "Summarise the reviews of the trail shoes in three bullet points.",
    "Compare the two tents for a family of four, weight and price.",
    "Write a short gift note for a cyclist.",
)
_FORGED: Final = "203.0.113.7"
"""A left-most X-Forwarded-For entry some clients forge; only the trusted hop's entry counts."""


@dataclass(frozen=True, slots=True)
class Step:
    """One HTTP request of a visit."""

    kind: str
    method: str
    path: str
    body: bytes | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A visitor and the requests of their visit, in order."""

    device_class: str
    user_agent: str
    country: str
    ip: str
    forged_prefix: bool
    steps: tuple[Step, ...]


@dataclass
class TrafficStats:
    """What the visitors did and saw (the footprint itself is read from /metrics)."""

    by_kind: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    visits: int = 0
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.by_kind.values())


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in weighted], [w for _, w in weighted])[0]


def _llm_step(rng: random.Random, provider: str) -> Step:
    models = OPENAI_MODELS if provider == "openai" else MISTRAL_MODELS
    stream = rng.random() < 0.6
    payload = {
        "prompt": rng.choice(_PROMPTS),
        "model": _pick(rng, models),
        "stream": stream,
        "max_tokens": rng.randint(40, 320),
    }
    path = "/api/chat" if provider == "openai" else "/api/assistant"
    kind = f"llm-{provider}" + ("-stream" if stream else "")
    return Step(kind, "POST", path, json=payload)


def _beacon(rng: random.Random, page: str) -> Step:
    seconds = round(rng.lognormvariate(3.0, 0.8), 1)  # median ~20 s on a page
    return Step(
        "beacon",
        "POST",
        "/.well-known/downstream/engagement",
        json={"seconds": seconds, "page": page},
    )


def _person_steps(
    rng: random.Random, device_class: str, blob: bytes, first: tuple[Step, ...] = ()
) -> list[Step]:
    steps = [Step("page", "GET", "/")]
    steps += [Step("asset", "GET", path) for path in ASSETS]  # cached after the first page
    steps += first
    steps.append(_beacon(rng, "/"))
    chatty = device_class in {"smartphone", "desktop", "tablet"}
    for _ in range(rng.randint(2, 6)):
        roll = rng.random()
        if roll < 0.30:
            product = rng.randint(1, 48)
            steps += [Step("page", "GET", f"/products/{product}"), _beacon(rng, "/products/{id}")]
        elif roll < 0.55:
            steps.append(Step("api", "GET", f"/api/products?page={rng.randint(1, 6)}"))
        elif roll < 0.65 and device_class in {"smartphone", "desktop", "tablet"}:
            size = rng.randint(20_000, len(blob))
            steps.append(Step("upload", "POST", "/api/upload", body=blob[:size]))
        elif roll < 0.83 or not chatty:
            steps.append(_llm_step(rng, "openai"))
        else:
            steps.append(_llm_step(rng, "mistral"))
    return steps


def _bot_steps(rng: random.Random) -> list[Step]:
    steps = [Step("robots", "GET", "/robots.txt")]
    steps += [
        Step("page", "GET", f"/products/{rng.randint(1, 48)}") for _ in range(rng.randint(2, 6))
    ]
    if rng.random() < 0.3:
        steps.append(Step("api", "GET", "/api/products?page=1"))
    return steps


def plan_visits(requests: int, seed: int) -> list[Visit]:
    """Visits totalling exactly ``requests`` requests (the last one cut short), from ``seed``."""
    if requests < 1:
        raise ValueError(f"requests={requests!r}: expected a positive number of requests")
    rng = random.Random(seed)
    blob = rng.randbytes(400_000)
    device_names = list(DEVICES)
    device_weights = [DEVICES[d][0] for d in device_names]
    country_names = list(COUNTRIES)
    country_weights = [COUNTRIES[c][0] for c in country_names]
    visits: list[Visit] = []
    left = requests
    while left > 0:
        # Cycle through every device class and country first, so even a short run shows them all.
        n = len(visits)
        if n < len(device_names):
            device_class = device_names[n]
        else:
            device_class = rng.choices(device_names, device_weights)[0]
        if n < len(country_names):
            country = country_names[(n * 5) % len(country_names)]
        else:
            country = rng.choices(country_names, country_weights)[0]
        # The first two visitors ask each assistant once, so even a short run shows both providers.
        first = (_llm_step(rng, ("openai", "mistral")[n]),) if n < 2 else ()
        if device_class == "bot":
            steps = _bot_steps(rng)
        else:
            steps = _person_steps(rng, device_class, blob, first)
        steps = steps[:left]
        left -= len(steps)
        visits.append(
            Visit(
                device_class=device_class,
                user_agent=rng.choice(DEVICES[device_class][1]),
                country=country,
                ip=COUNTRIES[country][1],
                forged_prefix=rng.random() < 0.1,
                steps=tuple(steps),
            )
        )
    return visits


class _Drive:
    """State the visitor threads share: the tallies, the progress callback and the stop flag."""

    def __init__(self, base_url: str, total: int, progress: Callable[[int, int], None] | None):
        self.base_url = base_url
        self.total = total
        self.progress = progress
        self.stats = TrafficStats()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = 0

    def record(self, kind: str, failure: str | None) -> None:
        with self.lock:
            self.stats.by_kind[kind] += 1
            if failure is not None:
                self.stats.failures[failure] += 1
            self.done += 1
            done = self.done
        if self.progress is not None:
            self.progress(done, self.total)

    def visit(self, visit: Visit) -> None:
        xff = f"{_FORGED}, {visit.ip}" if visit.forged_prefix else visit.ip
        headers = {"user-agent": visit.user_agent, "x-forwarded-for": xff}
        bot = visit.device_class == "bot"
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0) as client:
            for step in visit.steps:
                if self.stop.is_set():  # interrupted: leave the remaining steps unsent
                    return
                if bot:
                    client.cookies.clear()  # crawlers keep no cookies
                failure = None
                try:
                    if step.method == "GET":
                        response = client.get(step.path)
                    else:
                        response = client.post(step.path, content=step.body, json=step.json)
                    if response.status_code >= 400:
                        failure = f"{step.kind}: HTTP {response.status_code} {response.text[:120]}"
                except httpx.HTTPError as exc:
                    failure = f"{step.kind}: {type(exc).__name__}: {exc}"
                self.record(step.kind, failure)


def run_visits(
    visits: list[Visit],
    base_url: str,
    *,
    concurrency: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> TrafficStats:
    """Drive ``visits`` against ``base_url``, ``concurrency`` visitors at a time; report progress."""
    drive = _Drive(base_url, sum(len(v.steps) for v in visits), progress)
    drive.stats.visits = len(visits)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="demo-visitor")
    try:
        futures = [pool.submit(drive.visit, v) for v in visits]
        for future in futures:
            future.result()
    finally:  # on Ctrl-C too: stop visitors between requests rather than finish the plan
        drive.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    drive.stats.seconds = time.monotonic() - started
    return drive.stats
