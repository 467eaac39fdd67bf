"""``estimate``: the exporter's own input limits, strict JSON out, and errors that name the field."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from otel_downstream.exporters.accounting.span_inputs import MAX_BODY_BYTES, MAX_SECONDS, MAX_TOKENS
from otel_downstream.exporters.cli import main as cli
from otel_downstream.exporters.cli.estimate import run_batch


def _no_constants(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def _batch(*cases: Any) -> tuple[int, list[dict[str, Any]]]:
    """Run cases through ``--batch``; every line must be strict JSON (no Infinity/NaN)."""
    out = io.StringIO()
    stdin = "\n".join(c if isinstance(c, str) else json.dumps(c) for c in cases)
    code = run_batch(io.StringIO(stdin + "\n"), out)
    lines = [json.loads(x, parse_constant=_no_constants) for x in out.getvalue().splitlines()]
    return code, lines


def _llm(**fields: Any) -> dict[str, Any]:
    base = {"kind": "llm", "provider": "openai", "model": "gpt-4o"}
    return {**base, "input_tokens": 10, "output_tokens": 10, **fields}


def test_a_non_finite_result_is_that_lines_error_and_the_output_stays_json() -> None:
    huge = {"kind": "transfer", "bytes": 1e12, "grid_intensity": {"network": 1e308}}
    code, (bad, good) = _batch(huge, {"kind": "transfer", "bytes": 1e6})
    assert code == 1
    assert bad["line"] == 1
    assert bad["error"].startswith("result.co2js.co2e_g=inf: expected a finite")
    assert good["energy_j"]["value"] > 0


def test_engagement_seconds_beyond_the_exporters_limit_name_the_field() -> None:
    case = {"kind": "device", "device_class": "desktop", "method": "time"}
    code, (huge, limit) = _batch({**case, "seconds": 1e308}, {**case, "seconds": MAX_SECONDS})
    assert code == 1
    assert huge["error"] == f"seconds=1e+308: expected a number in [0, {MAX_SECONDS:g}]"
    assert limit["energy_j"]["value"] > 0


@pytest.mark.parametrize("kind", ["transfer", "device"])
def test_an_int_too_big_for_a_float_names_the_field(kind: str) -> None:
    line = f'{{"kind": "{kind}", "device_class": "desktop", "bytes": 1{"0" * 400}}}'
    if kind == "transfer":
        line = f'{{"kind": "transfer", "bytes": 1{"0" * 400}}}'
    code, (result,) = _batch(line)
    assert code == 1
    assert result["error"].startswith("bytes=1000")
    assert "internal error" not in result["error"]


def test_device_bytes_take_the_exporters_request_limit() -> None:
    case = {"kind": "device", "device_class": "desktop"}
    _, (over, at) = _batch({**case, "bytes": MAX_BODY_BYTES * 2}, {**case, "bytes": MAX_BODY_BYTES})
    assert over["error"] == f"bytes=2000000000000.0: expected a number in [0, {MAX_BODY_BYTES:g}]"
    assert at["energy_j"]["value"] > 0


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens"])
def test_tokens_take_the_exporters_limit(field: str) -> None:
    code, (over, at) = _batch(_llm(**{field: 1e23}), _llm(**{field: MAX_TOKENS}))
    assert code == 1
    assert over["error"].startswith(f"{field}=")
    assert f"[0, {MAX_TOKENS:g}]" in over["error"]
    assert at["energy_j"]["value"] > 0


def test_latency_takes_the_exporters_limit() -> None:
    _, (result,) = _batch(_llm(latency_s=MAX_SECONDS + 1))
    assert result["error"].startswith("latency_s=86401")


def test_flag_form_refuses_non_finite_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "transfer", "--bytes", "1e12", "--grid-intensity", "network=1e308"]
    assert cli.main([*args, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "result.co2js.co2e_g=inf" in captured.err


def test_embeddings_take_the_operation_and_need_no_output_tokens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    embed = {"model": "text-embedding-3-large", "input_tokens": 10_000}
    _, (batch, missing) = _batch(
        {"kind": "llm", "provider": "openai", "operation": "embeddings", **embed},
        {"kind": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 10},
    )
    assert batch["method"] == "embedding-encoder-v1"
    assert missing["error"].startswith("output_tokens=None")
    args = ["--provider", "openai", "--model", "text-embedding-3-large", "--input-tokens", "10000"]
    assert cli.main(["estimate", "llm", *args, "--operation", "embeddings", "--json"]) == 0
    flags = json.loads(capsys.readouterr().out)
    assert flags["energy_j"] == batch["energy_j"]


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "text-embedding-3-large"},
        {"model": "text-embedding-3-large", "operation": "chat"},
        {"model": "bge-large-en-v1.5"},
        {"model": "my-encoder", "operation": "embedding"},
    ],
)
def test_an_embedding_by_name_or_operation_needs_no_output_tokens(
    fields: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    case = {"kind": "llm", "provider": "openai", "input_tokens": 1000, **fields}
    code, (result, explicit, null) = _batch(
        case, {**case, "output_tokens": 0}, {**case, "output_tokens": None}
    )
    assert code == 0, result
    assert result["method"] == "embedding-encoder-v1"
    assert result["energy_j"] == explicit["energy_j"] == null["energy_j"]
    args = ["--provider", "openai", "--model", fields["model"], "--input-tokens", "1000"]
    if "operation" in fields:
        args += ["--operation", fields["operation"]]
    assert cli.main(["estimate", "llm", *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["energy_j"] == result["energy_j"]


def test_a_json_null_is_a_missing_key() -> None:
    code, (chat, given, tokens_in) = _batch(
        _llm(output_tokens=None), _llm(), _llm(input_tokens=None, output_tokens=None)
    )
    assert code == 1
    assert chat["error"].startswith("output_tokens=None: expected an integer")
    assert "(required)" in chat["error"]
    assert given["energy_j"]["value"] > 0
    assert tokens_in["error"].startswith("input_tokens=None")
