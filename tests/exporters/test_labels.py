"""Bounded label values: closed sets are normalised, free-form values are capped with ``other``."""

from __future__ import annotations

import threading
import tracemalloc

import pytest

from otel_downstream.agent.attributes import DEVICE_CLASSES
from otel_downstream.exporters.accounting.labels import (
    HOST_METHODS,
    MAX_LABEL_LENGTH,
    OTHER,
    BoundedLabel,
    LabelSets,
    normalize_country,
    normalize_device_class,
    normalize_host_method,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("FR", ("FR", True)),
        ("fr", ("FR", True)),
        (None, ("ZZ", True)),
        ("ZZ", ("ZZ", True)),
        ("FRA", ("FR", True)),  # alpha-3 from non-Python instrumentations: the same country
        ("deu", ("DE", True)),
        ("XYZ", ("ZZ", False)),
        ("ZZZ", ("ZZ", False)),
        ("F1", ("ZZ", False)),
        ("", ("ZZ", False)),
        ("XK", ("XK", True)),  # Kosovo: user-assigned, but CDNs and GeoIP databases use it
        ("XY", ("ZZ", False)),
        ("QZ", ("ZZ", False)),
        ("Ü1", ("ZZ", False)),
        (33, ("ZZ", False)),
        (("F", "R"), ("ZZ", False)),
        (["FR"], ("ZZ", False)),
    ],
)
def test_country_is_alpha2_or_zz(raw: object, expected: tuple[str, bool]) -> None:
    assert normalize_country(raw) == expected


def test_country_labels_are_bounded_by_the_alphabet() -> None:
    labels = {
        normalize_country(chr(a) + chr(b) + tail)[0]
        for a in range(0x20, 0x250)
        for b in range(65, 91)
        for tail in ("", "A", "N")
    }
    assert len(labels) <= 260
    assert all(len(v) == 2 and v.isascii() and v.isupper() for v in labels)


@pytest.mark.parametrize("device", DEVICE_CLASSES)
def test_fixed_device_classes_pass(device: str) -> None:
    assert normalize_device_class(device) == (device, True)
    assert normalize_device_class(device.upper()) == (device, True)


@pytest.mark.parametrize("raw", ["iPhone 15", "", "phone", 3, None])
def test_other_device_values_become_unknown(raw: object) -> None:
    assert normalize_device_class(raw) == ("unknown", raw is None)


def test_bounded_label_admits_allow_list_then_first_n_then_other() -> None:
    label = BoundedLabel("gen_ai_request_model", 2, allowed=("gpt-4o",))
    assert [label.admit(v) for v in ("a", "gpt-4o", "b", "c", "a", "gpt-4o", "d")] == [
        "a",
        "gpt-4o",
        "b",
        OTHER,
        "a",
        "gpt-4o",
        OTHER,
    ]
    assert label.size == 2
    assert label.overflow == 2


def test_long_values_are_cut() -> None:
    label = BoundedLabel("service_name", 5)
    assert label.admit("x" * 10_000) == "x" * MAX_LABEL_LENGTH


def test_a_million_distinct_values_keep_memory_bounded() -> None:
    label = BoundedLabel("gen_ai_request_model", 100)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(200_000):
        label.admit(f"model-{i}")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert label.size == 100
    assert label.overflow == 200_000 - 100
    assert grown < 200_000  # 100 short strings and a set: far below one byte per value seen


def test_concurrent_admission_never_exceeds_the_limit() -> None:
    label = BoundedLabel("m", 50)

    def work(offset: int) -> None:
        for i in range(2_000):
            label.admit(f"v{offset}-{i % 300}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert label.size == 50


def test_negative_limit_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="limit=-1"):
        BoundedLabel("m", -1)


@pytest.mark.parametrize("method", HOST_METHODS)
def test_host_methods_are_a_closed_set(method: str) -> None:
    assert normalize_host_method(method) == (method, True)
    assert normalize_host_method(method.upper()) == (method, True)


@pytest.mark.parametrize("raw", ["m0-1-" + "x" * 1000, "rapl", "measured-ish"])
def test_other_host_methods_become_unknown(raw: str) -> None:
    assert normalize_host_method(raw) == ("unknown", False)
    assert normalize_host_method("") == ("unknown", True)


def test_label_sets_admit_the_first_n_combinations_and_remember_them() -> None:
    sets = LabelSets("request_labels", 2)
    assert [sets.admit(k) for k in [("a", "FR"), ("a", "DE"), ("a", "US"), ("a", "FR")]] == [
        True,
        True,
        False,
        True,
    ]
    assert ("a", "US") not in sets and ("a", "DE") in sets
    assert sets.size == 2
    with pytest.raises(ValueError, match="limit=0"):
        LabelSets("request_labels", 0)
