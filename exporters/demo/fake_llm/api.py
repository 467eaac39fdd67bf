"""A local, clearly fake OpenAI- and Mistral-compatible HTTP API (a stand-in, never a real model).

Tests drive the real ``openai`` and ``mistralai`` SDKs over real HTTP against it, and the demo reuses
it so the LLM path runs offline. Responses follow the providers' documented shapes: JSON bodies, SSE
streams (chat/legacy chunks ending in ``[DONE]``, Responses API typed events), usage objects, and the
providers' error bodies (built in :mod:`.fake_llm_payloads`). Content is filler text of exactly four
characters per token.

Paths: ``/v1/...`` speaks OpenAI (``/openai/deployments/<name>/...`` too, for Azure clients);
``/mistral/v1/...`` speaks Mistral (chat, FIM, agents, embeddings, ``responses``, ``conversations``
with its ``/{id}`` append and ``/{id}/restart``). Per request, headers choose a behaviour:

* ``x-fake-scenario``: ``ok`` (default), ``error-401``, ``error-422``, ``error-429``, ``error-500``,
  ``malformed-sse``, ``truncated`` (stream cut mid-body), ``no-usage`` (stream without usage);
* ``x-fake-output-tokens``, ``x-fake-latency-ms`` override the server's settings.

For SDKs that cannot set request headers, a base URL with a ``/_scenario/<name>`` segment (e.g.
``api.mistral_url("truncated")``) selects the scenario too.

Run it alone with ``python -m otel_downstream.exporters.demo.fake_llm.api --port 8099``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otel_downstream.exporters.demo.fake_llm import conversations, payloads, streams
from otel_downstream.exporters.demo.fake_llm.payloads import FakeLLMSettings

__all__ = ["FakeLLMAPI", "FakeLLMSettings", "Received", "add_arguments", "main", "run"]


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
            self._send_json(status, payloads.error_body(status, mistral), len(raw))
            return
        tokens = int(self.headers.get("x-fake-output-tokens") or settings.output_tokens)
        model = str(body.get("model") or body.get("agent_id") or "fake-model")
        if endpoint == "embeddings":
            self._send_json(200, payloads.embeddings(body, model, settings, mistral), len(raw))
            return
        if endpoint == "compact":
            self._send_json(200, payloads.compacted_response(tokens, settings), len(raw))
            return
        if endpoint == "conversations":  # Mistral only: start, append, restart
            if body.get("stream"):
                events = conversations.conversation_events(
                    model, tokens, settings, include_usage=scenario != "no-usage"
                )
                self._send_stream(events, scenario, len(raw))
            else:
                payload = conversations.conversation_response(model, tokens, settings)
                self._send_json(200, payload, len(raw))
            return
        if body.get("stream"):
            # Mistral always reports usage on the last chunk; OpenAI only when asked to.
            include_usage = scenario != "no-usage"
            if not mistral and endpoint != "responses":
                options = body.get("stream_options") or {}
                include_usage = include_usage and bool(options.get("include_usage"))
            events = streams.stream_events(
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
            payload = payloads.response_object(model, tokens, settings, mistral=mistral)
            self._send_json(200, payload, len(raw))
        else:
            payload = payloads.completion(endpoint, model, tokens, settings)
            if mistral:
                payload["usage"] = payloads.usage(settings, tokens, mistral=True)
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


# path after ``/v1/`` -> endpoint name (what payloads to build); anything else is answered as chat
_ENDPOINTS = {
    "chat/completions": "chat",
    "completions": "completions",
    "embeddings": "embeddings",
    "responses": "responses",
    "responses/compact": "compact",
    "fim/completions": "fim",
    "agents/completions": "chat",
}


def _route(path: str) -> tuple[bool, str, str]:
    """(is Mistral, endpoint name, scenario) from a request path.

    A ``/_scenario/<name>`` segment in the base URL selects a scenario for SDKs that cannot add
    request headers (mistralai 1.0).
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    mistral = path.startswith("/mistral/")
    scenario = "ok"
    if "/_scenario/" in path:
        head, rest = path.split("/_scenario/", 1)
        scenario, _, tail = rest.partition("/")
        path = f"{head}/{tail}"
    if "/deployments/" in path:  # Azure: /openai/deployments/<name>/chat/completions
        path = "/v1/" + path.split("/deployments/", 1)[1].split("/", 1)[1]
    tail = path.split("/v1/", 1)[-1]
    if mistral and (tail == "conversations" or tail.startswith("conversations/")):
        return mistral, "conversations", scenario  # /{id} (append) and /{id}/restart alike
    return mistral, _ENDPOINTS.get(tail, "chat"), scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the stand-alone server (also usable as an ``otel-downstream`` sub-command)."""
    defaults = FakeLLMSettings()
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port (0 picks a free one)")
    parser.add_argument("--input-tokens", type=int, default=defaults.input_tokens)
    parser.add_argument("--output-tokens", type=int, default=defaults.output_tokens)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between chunks")


def run(args: argparse.Namespace) -> int:
    """Serve the fake API in the foreground until interrupted."""
    settings = FakeLLMSettings(
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        latency_s=args.latency_ms / 1000,
        chunk_delay_s=args.chunk_delay_ms / 1000,
    )
    api = FakeLLMAPI(settings, host=args.host, port=args.port)
    print(f"fake LLM API (a stand-in, not a model) on http://{args.host}:{api.port}", flush=True)
    try:
        api._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api._server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Mistral API for tests and the demo.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
