"""A real ``serve`` process honours the accountant's settings the way ``configure()`` does.

Before, ``serve`` ignored ``OTEL_DOWNSTREAM_MODEL_LABELS``/``..._LIMIT``; these tests set every
accounting variable on the process and check the scrape.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .test_service import Serve, scrape, total
from .test_service_bad_input import _request

pytestmark = pytest.mark.e2e

PB = {"Content-Type": "application/x-protobuf"}
CLIENT, SERVER = Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_SERVER


def _chat(model: str) -> tuple[str, int, dict[str, object]]:
    attrs: dict[str, object] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }
    return (f"chat {model}", CLIENT, attrs)


def _get(response_bytes: int, **extra: object) -> tuple[str, int, dict[str, object]]:
    attrs: dict[str, object] = {
        "http.request.method": "GET",
        "http.response.body.size": response_bytes,
        **extra,
    }
    return ("GET /", SERVER, attrs)


def _post(serve: Serve, spans: list[tuple[str, int, dict[str, object]]], service: str) -> None:
    answer = requests.post(serve.traces_url, data=_request(spans, service), headers=PB, timeout=10)
    assert answer.status_code == 200, answer.content
    assert b"rejected" not in answer.content  # no partial success: nothing refused


def test_serve_reads_model_label_edge_and_label_set_settings() -> None:
    serve = Serve(
        env={
            "OTEL_DOWNSTREAM_MODEL_LABELS": "acme-house-model",
            "OTEL_DOWNSTREAM_MODEL_LABEL_LIMIT": "1",
            "OTEL_DOWNSTREAM_LABEL_SET_LIMIT": "8",
            "OTEL_DOWNSTREAM_EDGE_SERVICES": "frontend",
        }
    )
    try:
        # lim.py: four unknown models with a limit of one, then an allow-listed and a known one
        models = ["m-a", "m-b", "m-c", "m-d", "acme-house-model", "gpt-4o"]
        _post(serve, [_chat(m) for m in models], "llmapp")
        # nest.py: the customer's request to frontend and frontend's call to catalog
        _post(serve, [_get(1_000_000, **{"geo.country.iso_code": "US"})], "frontend")
        _post(serve, [_get(900_000, **{"client.address": "10.0.0.5"})], "catalog")
        # more (country) sets than the cap allows
        countries = ["FR", "DE", "IT", "ES", "PL", "SE", "NO", "FI", "DK", "NL"]
        _post(serve, [_get(1000, **{"geo.country.iso_code": c}) for c in countries], "frontend")
        samples = scrape(serve.metrics_url)
        calls = {
            dict(labels)["gen_ai_request_model"]: value
            for (name, labels), value in samples.items()
            if name == "downstream_gen_ai_calls_total"
        }
        assert calls == {"m-a": 1, "other": 3, "acme-house-model": 1, "gpt-4o": 1}
        assert total(samples, "downstream_label_overflow_total", label="gen_ai_request_model") == 3
        assert total(samples, "downstream_requests_total", service_name="catalog") == 0
        assert total(samples, "downstream_spans_accounted_total", type="internal_request") == 1
        assert total(samples, "downstream_requests_total", service_name="frontend") == 11
        request_sets = [n for (n, _), _ in samples.items() if n == "downstream_requests_total"]
        assert len(request_sets) == 8 + 1  # the cap, and the frontend's fold set
        assert total(samples, "downstream_requests_total", device_class="other") == 3
        stopped = serve.stop()
        assert stopped["spans_rejected"] == 0
    finally:
        serve.close()


def test_a_bad_accounting_setting_stops_serve_with_its_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otel_downstream.exporters.cli.main", "serve", "--metrics-port=0"],
        capture_output=True,
        timeout=30,
        check=False,
        env={**os.environ, "OTEL_DOWNSTREAM_LABEL_SET_LIMIT": "0"},
    )
    assert result.returncode == 2
    assert b"OTEL_DOWNSTREAM_LABEL_SET_LIMIT=0" in result.stderr
