"""Device classification: accuracy on the labelled set, synthetic types, hostile input, cache bounds."""

from __future__ import annotations

import csv
import dataclasses
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_downstream.agent.attributes import DEVICE_CLASSES
from otel_downstream.agent.client import device_class
from otel_downstream.agent.client.device_class import (
    CACHE_SIZE,
    MAX_UA_LENGTH,
    DeviceInfo,
    classify,
)
from otel_downstream.agent.faults import fault_counts

DATA = Path(__file__).parent / "data" / "user_agents.csv"


def _rows() -> list[dict[str, str]]:
    with DATA.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


ROWS = _rows()


def accuracy_table(rows: list[dict[str, str]]) -> tuple[dict[str, tuple[int, int]], float, list]:
    """Per class (correct, total), overall accuracy, and the misses."""
    total: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    misses = []
    for row in rows:
        got = classify(row["user_agent"]).device_class
        total[row["expected_class"]] += 1
        if got == row["expected_class"]:
            correct[row["expected_class"]] += 1
        else:
            misses.append((row["expected_class"], got, row["user_agent"]))
    table = {cls: (correct[cls], total[cls]) for cls in DEVICE_CLASSES}
    return table, sum(correct.values()) / sum(total.values()), misses


def test_labelled_set_is_large_and_covers_every_class() -> None:
    counts = Counter(row["expected_class"] for row in ROWS)
    assert len(ROWS) >= 300
    assert set(counts) == set(DEVICE_CLASSES)
    assert min(counts.values()) >= 20, counts
    assert len({row["user_agent"] for row in ROWS}) == len(ROWS), "duplicate user agents"


def test_accuracy_per_class_and_overall(capsys: pytest.CaptureFixture[str]) -> None:
    table, overall, misses = accuracy_table(ROWS)
    with capsys.disabled():
        print("\nclass        correct/total  accuracy")
        for cls, (ok, n) in table.items():
            print(f"{cls:<12} {ok:>4}/{n:<4}       {ok / n:7.1%}")
        print(f"{'overall':<12} {'':>10}     {overall:7.1%}")
        for miss in misses:
            print("miss:", miss)
    assert overall >= 0.97, misses
    for cls, (ok, n) in table.items():
        assert ok / n >= 0.90, (cls, ok, n, misses)


@pytest.mark.parametrize(
    ("ua", "synthetic"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("curl/8.4.0", "bot"),
        ("python-requests/2.31.0", "bot"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.6099.28 Safari/537.36",
            "bot",
        ),
        ("kube-probe/1.28", "test"),
        ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "test"),
        (
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/114.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "test",
        ),
    ],
)
def test_synthetic_traffic_is_class_bot_with_its_type(ua: str, synthetic: str) -> None:
    info = classify(ua)
    assert info == DeviceInfo("bot", synthetic)


def test_people_have_no_synthetic_type() -> None:
    for row in ROWS:
        if row["expected_class"] not in ("bot", "unknown"):
            assert classify(row["user_agent"]).synthetic_type is None, row


def test_cubot_phone_is_not_a_crawler() -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/106.0.0.0 Mobile Safari/537.36"
    )
    assert classify(ua) == DeviceInfo("smartphone", None)


@pytest.mark.parametrize("ua", [None, "", " ", "\t\r\n", "\x00"])
def test_missing_or_blank_is_unknown(ua: str | None) -> None:
    assert classify(ua).device_class == "unknown"


def test_result_is_frozen() -> None:
    info = classify("curl/8.4.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.device_class = "desktop"  # type: ignore[misc]


def test_huge_user_agent_is_truncated_before_parsing_and_caching() -> None:
    prefix = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    huge = prefix + "A" * (64 * 1024)
    before = fault_counts().get("device_class", 0)
    assert classify(huge).device_class == "smartphone"
    assert classify(huge[:MAX_UA_LENGTH]) is classify(huge)  # same cache entry
    assert fault_counts().get("device_class", 0) == before


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Linux; Android 13; Pixel 7) \udcff\udcfe Mobile Safari/537.36",  # surrogates
        "\x00\x01\x02\x7f binary \xff\xfe",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120 Safari/537.36 😀 日本語",
        "(((((((((((((((((((((((((((((" * 20,
        "\\" * 600,
    ],
)
def test_hostile_strings_never_fault(ua: str) -> None:
    before = fault_counts().get("device_class", 0)
    assert classify(ua).device_class in DEVICE_CLASSES
    assert fault_counts().get("device_class", 0) == before


def test_wrong_type_is_reported_as_fault_and_unknown() -> None:
    before = fault_counts().get("device_class", 0)
    assert classify(12345) is device_class.UNKNOWN  # type: ignore[arg-type]
    assert fault_counts()["device_class"] == before + 1


def test_cache_stays_bounded_under_a_flood_of_distinct_agents() -> None:
    for i in range(CACHE_SIZE + 500):
        classify(f"Mozilla/5.0 (Linux; Android 14; SM-S{i:06d}) Mobile Safari/537.36")
    _hits, misses, size = device_class.cache_info()
    assert size <= CACHE_SIZE
    assert misses >= CACHE_SIZE + 500


def test_concurrent_callers_agree() -> None:
    uas = [row["user_agent"] for row in ROWS[:120]]
    expected = [classify(ua) for ua in uas]
    results: list[list[DeviceInfo]] = []

    def worker() -> None:
        results.append([classify(ua) for ua in uas])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(), st.text(max_size=700), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
    )
)
def test_any_text_gives_a_known_class(ua: str | None) -> None:
    info = classify(ua)
    assert info.device_class in DEVICE_CLASSES
    assert info.synthetic_type in (None, "bot", "test")
    assert (info.synthetic_type is not None) <= (info.device_class == "bot")


def test_token_rules_mean_the_same_to_the_rust_and_python_engines() -> None:
    """ua-parser falls back to Python's ``re`` when ua-parser-rs is missing; our rules must agree."""
    import re

    import ua_parser_rs

    from otel_downstream.agent.client import ua_tokens

    uas = [row["user_agent"] for row in ROWS]
    for regex, family in (*ua_tokens.FIRST_RULES, *ua_tokens.LAST_RULES):
        rust = ua_parser_rs.DeviceExtractor([(regex, "i", family, None, None)])
        python = re.compile(regex, re.IGNORECASE)
        for ua in uas:
            assert (rust.extract(ua) is not None) == (python.search(ua) is not None), (family, ua)
