"""``estimate``'s human output renders every size the same way (an SI prefix, never an exponent),
and a mistyped country or device class is refused with the closest known names."""

from __future__ import annotations

import re

import pytest

from otel_downstream.exporters.cli import main as cli
from otel_downstream.exporters.cli.estimate import _si
from otel_downstream.exporters.cli.estimate_cases import evaluate
from otel_downstream.exporters.footprint import InputError


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (5.413e-07, "541.3 nL"),
        (2.706e-06, "2.706 µL"),
        (5.413e-10, "541.3 pL"),
        (3e-15, "3 fL"),
        (0.0, "0 L"),
        (1.5, "1.5 L"),
        (2.5e3, "2.5 kL"),
        (-2.0e-7, "-200 nL"),
    ],
)
def test_one_rendering_for_small_and_large_numbers(value: float, shown: str) -> None:
    assert _si(value, "L") == shown


@pytest.mark.parametrize("size", ["1", "1e3", "5000", "1e6"])
def test_transfer_output_has_no_exponent(size: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["estimate", "transfer", "--bytes", size]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\d[eE][-+]?\d", out), out
    assert "water" in out


@pytest.mark.parametrize(
    ("kind", "value", "hint"),
    [
        ({"kind": "transfer", "bytes": 1e3}, "Frnace", "did you mean 'FR' (France)?"),
        ({"kind": "transfer", "bytes": 1e3}, "Germny", "'DE' (Germany)"),
        ({"kind": "device", "device_class": "tv", "bytes": 1e3}, "FRR", "'FR' (France)"),
    ],
)
def test_unknown_country_gets_a_did_you_mean(
    kind: dict[str, object], value: str, hint: str
) -> None:
    with pytest.raises(InputError, match="country=") as info:
        evaluate({**kind, "country": value})
    assert hint in str(info.value)


def test_a_country_nothing_like_a_known_one_gets_no_hint() -> None:
    with pytest.raises(InputError) as info:
        evaluate({"kind": "transfer", "bytes": 1e3, "country": "QQQQQQ"})
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("kind", ["transfer", "device"])
def test_unknown_device_class_gets_a_did_you_mean(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", kind, "--bytes", "1000", "--device-class", "smartphon"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "device_class='smartphon'" in err and "did you mean 'smartphone'?" in err
