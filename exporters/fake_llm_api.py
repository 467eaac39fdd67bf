"""A local, clearly fake OpenAI- and Mistral-compatible HTTP API (a stand-in, never a real model).

Tests drive the real ``openai`` and ``mistralai`` SDKs over real HTTP against it, and the demo reuses
it so the LLM path runs offline. Responses follow the providers' documented shapes: JSON bodies, SSE
streams (chat/legacy chunks ending in ``[DONE]``, Responses API typed events), usage objects, and the
providers' error bodies. Content is filler text of exactly four characters per token.

Paths: ``/v1/...`` speaks OpenAI (``/openai/deployments/<name>/...`` too, for Azure clients);
``/mistral/v1/...`` speaks Mistral. Per request, headers choose a behaviour:

* ``x-fake-scenario``: ``ok`` (default), ``error-401``, ``error-422``, ``error-429``, ``error-500``,
  ``malformed-sse``, ``truncated`` (stream cut mid-body), ``no-usage`` (stream without usage);
* ``x-fake-output-tokens``, ``x-fake-latency-ms`` override the server's settings.

For SDKs that cannot set request headers, a base URL with a ``/_scenario/<name>`` segment (e.g.
``api.mistral_url("truncated")``) selects the scenario too.

Run it alone with ``python -m otel_downstream.exporters.fake_llm_api --port 8099``.
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeLLMAPI", "FakeLLMSettings", "Received", "main"]

_WORD = "tok "  # four characters per token, so the chars/4 estimate is exact on this filler
_EMBEDDING_DIM = 8


@dataclass(frozen=True, slots=True)
class FakeLLMSettings:
    """What every response reports unless a request header overrides it."""

    input_tokens: int = 21
    output_tokens: int = 12
    cached_tokens: int = 5
    reasoning_tokens: int = 3
    latency_s: float = 0.0  # before the response starts
    chunk_delay_s: float = 0.0  # between streamed chunks


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it: bytes in and out of the HTTP bodies."""

    method: str
    path: str
    request_bytes: int
    response_bytes: int
    status: int


class FakeLLMAPI:
    """The fake API on a background thread; ``with FakeLLMAPI() as api: api.openai_base_url``."""

    def __init__(
        self, settings: FakeLLMSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.settings = settings or FakeLLMSettings()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        handler = type("_BoundHandler", (_Handler,), {"api": self})
        self._server = _QuietServer((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mistral_server_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mistral"

    def mistral_url(self, scenario: str = "ok") -> str:
        """Mistral server URL whose every request plays ``scenario``."""
        return f"http://127.0.0.1:{self.port}/mistral/_scenario/{scenario}"

    def openai_url(self, scenario: str = "ok") -> str:
        """OpenAI base URL whose every request plays ``scenario``."""
        return f"http://127.0.0.1:{self.port}/_scenario/{scenario}/v1"

    def start(self) -> FakeLLMAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm-api")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def last(self) -> Received:
        with self._lock:
            return self.received[-1]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up mid-response are expected here, not errors."""
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # SSE chunks are tiny; Nagle + delayed ACK would add 40 ms each
    api: FakeLLMAPI

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo read spans
        return

    def do_GET(self) -> None:
        self._send_json(200, {"object": "list", "data": []}, 0)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        mistral, endpoint, path_scenario = _route(self.path)
        settings = self.api.settings
        latency = float(self.headers.get("x-fake-latency-ms") or settings.latency_s * 1000) / 1000
        if latency > 0:
            time.sleep(latency)
        scenario = self.headers.get("x-fake-scenario") or path_scenario
        if scenario.startswith("error-"):
            status = int(scenario.removeprefix("error-"))
            self._send_json(status, _error_body(status, mistral), len(raw))
            return
        tokens = int(self.headers.get("x-fake-output-tokens") or settings.output_tokens)
        model = str(body.get("model") or body.get("agent_id") or "fake-model")
        if endpoint == "embeddings":
            self._send_json(200, _embeddings(body, model, settings, mistral), len(raw))
            return
        if body.get("stream"):
            # Mistral always reports usage on the last chunk; OpenAI only when asked to.
            include_usage = scenario != "no-usage"
            if not mistral and endpoint != "responses":
                options = body.get("stream_options") or {}
                include_usage = include_usage and bool(options.get("include_usage"))
            events = _stream_events(
                endpoint=endpoint,
                model=model,
                tokens=tokens,
                settings=settings,
                include_usage=include_usage,
                mistral=mistral,
            )
            self._send_stream(events, scenario, len(raw))
            return
        if endpoint == "responses":
            self._send_json(200, _response_object(model, tokens, settings), len(raw))
        else:
            payload = _completion(endpoint, model, tokens, settings)
            if mistral:
                payload["usage"] = _usage(settings, tokens, mistral=True)
            self._send_json(200, payload, len(raw))

    def _send_json(self, status: int, payload: dict[str, Any], request_bytes: int) -> None:
        data = json.dumps(payload).encode()
        # recorded before replying, so a client that has its answer always finds it here
        self.api.record(Received("POST", self.path, request_bytes, len(data), status))
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "req_fake")
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: list[str], scenario: str, request_bytes: int) -> None:
        if scenario == "malformed-sse":
            events = [*events[:2], "data: {not json\n\n", *events[2:]]
        if scenario == "truncated":
            events = events[: max(1, len(events) // 2)]
        chunks = [event.encode() for event in events]
        self.api.record(Received("POST", self.path, request_bytes, sum(map(len, chunks)), 200))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for data in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if self.api.settings.chunk_delay_s:
                time.sleep(self.api.settings.chunk_delay_s)
        if scenario == "truncated":  # no terminating chunk: the client sees a cut body
            self.close_connection = True
        else:
            self.wfile.write(b"0\r\n\r\n")


def _route(path: str) -> tuple[bool, str, str]:
    """(is Mistral, endpoint name, scenario) from a request path.

    A ``/_scenario/<name>`` segment in the base URL selects a scenario for SDKs that cannot add
    request headers (mistralai 1.0).
    """
    path = path.split("?", 1)[0]
    mistral = path.startswith("/mistral/")
    scenario = "ok"
    if "/_scenario/" in path:
        head, rest = path.split("/_scenario/", 1)
        scenario, _, tail = rest.partition("/")
        path = f"{head}/{tail}"
    if "/deployments/" in path:  # Azure: /openai/deployments/<name>/chat/completions
        path = "/v1/" + path.split("/deployments/", 1)[1].split("/", 1)[1]
    tail = path.split("/v1/", 1)[-1]
    names = {
        "chat/completions": "chat",
        "completions": "completions",
        "embeddings": "embeddings",
        "responses": "responses",
        "fim/completions": "fim",
        "agents/completions": "chat",
    }
    return mistral, names.get(tail, "chat"), scenario


def _error_body(status: int, mistral: bool) -> dict[str, Any]:
    if mistral:
        if status == 422:
            return {
                "detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]
            }
        messages = {401: "Unauthorized", 429: "Requests rate limit exceeded"}
        return {
            "object": "error",
            "message": messages.get(status, "Internal server error"),
            "type": "invalid_request_error" if status < 500 else "internal_server_error",
            "param": None,
            "code": str(status),
        }
    kinds = {
        401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        422: ("Unprocessable request.", "invalid_request_error", None),
        429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    }
    message, kind, code = kinds.get(status, ("The server had an error.", "server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _usage(settings: FakeLLMSettings, output_tokens: int, mistral: bool = False) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": settings.input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": settings.input_tokens + output_tokens,
    }
    if not mistral:  # Mistral's documented usage has only the three totals
        usage["prompt_tokens_details"] = {"cached_tokens": settings.cached_tokens}
        usage["completion_tokens_details"] = {"reasoning_tokens": settings.reasoning_tokens}
    return usage


def _completion(
    endpoint: str, model: str, tokens: int, settings: FakeLLMSettings
) -> dict[str, Any]:
    text = _WORD * tokens
    if endpoint == "completions":
        choice: dict[str, Any] = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": "stop",
        }
        kind = "text_completion"
    else:
        message = {"role": "assistant", "content": text, "tool_calls": None}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        kind = "chat.completion"
    return {
        "id": "cmpl-fake",
        "object": kind,
        "created": 1_700_000_000,
        "model": model,
        "choices": [choice],
        "usage": _usage(settings, tokens),
    }


def _embeddings(
    body: dict[str, Any], model: str, settings: FakeLLMSettings, mistral: bool
) -> dict[str, Any]:
    items = body.get("input") or body.get("inputs") or [""]
    count = len(items) if isinstance(items, list) else 1
    vector = [0.25] * _EMBEDDING_DIM
    data = []
    for index in range(count):
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{_EMBEDDING_DIM}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": settings.input_tokens, "total_tokens": settings.input_tokens}
    if mistral:
        usage["completion_tokens"] = 0
    return {"id": "emb-fake", "object": "list", "data": data, "model": model, "usage": usage}


def _response_object(
    model: str, tokens: int, settings: FakeLLMSettings, status: str = "completed"
) -> dict[str, Any]:
    text = _WORD * tokens if status == "completed" else ""
    content = [{"type": "output_text", "text": text, "annotations": []}]
    item = {
        "id": "msg_fake",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }
    usage = {
        "input_tokens": settings.input_tokens,
        "input_tokens_details": {"cached_tokens": settings.cached_tokens},
        "output_tokens": tokens,
        "output_tokens_details": {"reasoning_tokens": settings.reasoning_tokens},
        "total_tokens": settings.input_tokens + tokens,
    }
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": [item] if status == "completed" else [],
        "usage": usage if status == "completed" else None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
    }


def _sse(payload: dict[str, Any], typed: bool = False) -> str:
    """One SSE message; typed events (Responses API) also name the event."""
    head = f"event: {payload['type']}\n" if typed else ""
    return f"{head}data: {json.dumps(payload)}\n\n"


def _stream_events(
    *,
    endpoint: str,
    model: str,
    tokens: int,
    settings: FakeLLMSettings,
    include_usage: bool,
    mistral: bool,
) -> list[str]:
    if endpoint == "responses":
        return list(_response_events(model, tokens, settings))
    events = []
    for index in range(tokens + 1):
        last = index == tokens
        if endpoint == "completions":
            choice: dict[str, Any] = {"index": 0, "text": "" if last else _WORD}
        else:
            delta: dict[str, Any] = {"content": "" if last else _WORD}
            if index == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta}
        choice["finish_reason"] = "stop" if last else None
        chunk: dict[str, Any] = {
            "id": "chunk-fake",
            "object": "text_completion" if endpoint == "completions" else "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [choice],
        }
        if mistral and last and include_usage:
            chunk["usage"] = _usage(settings, tokens, mistral=True)
        events.append(_sse(chunk))
    if include_usage and not mistral:  # OpenAI: a final chunk with no choices carries usage
        usage_chunk = {
            "id": "chunk-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": _usage(settings, tokens),
        }
        events.append(_sse(usage_chunk))
    events.append("data: [DONE]\n\n")
    return events


def _response_events(model: str, tokens: int, settings: FakeLLMSettings) -> Iterator[str]:
    seq = iter(range(1_000_000))
    text = _WORD * tokens
    part = {"type": "output_text", "text": "", "annotations": []}
    ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    created = _response_object(model, tokens, settings, status="in_progress")
    yield _sse(
        {"type": "response.created", "sequence_number": next(seq), "response": created},
        typed=True,
    )
    item = {
        "id": "msg_fake",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    added = {
        "type": "response.output_item.added",
        "sequence_number": next(seq),
        "output_index": 0,
        "item": item,
    }
    yield _sse(added, typed=True)
    part_added = {
        "type": "response.content_part.added",
        "sequence_number": next(seq),
        "part": part,
        **ids,
    }
    yield _sse(part_added, typed=True)
    for _ in range(tokens):
        delta = {
            "type": "response.output_text.delta",
            "sequence_number": next(seq),
            "delta": _WORD,
            "logprobs": [],
            **ids,
        }
        yield _sse(delta, typed=True)
    done = {
        "type": "response.output_text.done",
        "sequence_number": next(seq),
        "text": text,
        "logprobs": [],
        **ids,
    }
    yield _sse(done, typed=True)
    full_part = {**part, "text": text}
    part_done = {
        "type": "response.content_part.done",
        "sequence_number": next(seq),
        "part": full_part,
        **ids,
    }
    yield _sse(part_done, typed=True)
    final = _response_object(model, tokens, settings)
    item_done = {
        "type": "response.output_item.done",
        "sequence_number": next(seq),
        "output_index": 0,
        "item": final["output"][0],
    }
    yield _sse(item_done, typed=True)
    yield _sse(
        {"type": "response.completed", "sequence_number": next(seq), "response": final},
        typed=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve the fake API in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Fake OpenAI/Mistral API for tests and the demo.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--output-tokens", type=int, default=FakeLLMSettings().output_tokens)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    settings = FakeLLMSettings(output_tokens=args.output_tokens, latency_s=args.latency_ms / 1000)
    api = FakeLLMAPI(settings, host=args.host, port=args.port)
    print(f"fake LLM API (not a real model) on http://{args.host}:{api.port}", flush=True)
    try:
        api._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
