"""The demo's web shop: a Starlette app with pages, assets, a JSON API, uploads and two assistants.

It stands for a customer's service: HTML pages with assets of realistic sizes (a few hundred kB on a
first visit, as HTTP Archive medians suggest for a light shop), paged product JSON, file uploads,
and two LLM-backed endpoints that call OpenAI and Mistral through their real SDKs (pointed at the
local fake API by default) and relay their answers, streamed or whole. A visitor's first request
without the session cookie marks the span with ``downstream.functional_unit="user"`` (crawlers are
not users), so dashboards can show the footprint per user.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from otel_downstream.agent import attributes as A
from otel_downstream.agent.client.device_class import classify

__all__ = ["ASSET_SIZES", "SESSION_COOKIE", "LLMClients", "build_app"]

SESSION_COOKIE: Final = "demo_session"
ASSET_SIZES: Final = {
    # path: (media type, bytes)
    "app.js": ("text/javascript", 210_000),
    "app.css": ("text/css", 46_000),
    "hero.webp": ("image/webp", 165_000),
    "font.woff2": ("font/woff2", 28_000),
}
_PAGE_PRODUCTS: Final = 24
_SYSTEM: Final = "You are the shop's helpful assistant. Answer briefly."

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


@dataclass
class LLMClients:
    """The SDK clients the assistants use; ``fake_headers`` tunes the local fake's answer length."""

    openai: Any  # openai.AsyncOpenAI
    mistral: Any  # mistralai Mistral
    fake_headers: bool = True


def _product(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "name": f"Trail product {n}",
        "price_eur": round(19.9 + n * 3.7, 2),
        "rating": round(3 + (n % 20) / 10, 1),
        "summary": "Light, repairable and made to last; " * 3,
        "image": f"/static/hero.webp?v={n}",
    }


def _page(title: str, products: range) -> bytes:
    items = "\n".join(
        f'<li class="product"><a href="/products/{n}"><img src="/static/hero.webp?v={n}" '
        f'alt="Trail product {n}" loading="lazy"><h2>Trail product {n}</h2></a>'
        f"<p>{_product(n)['summary'] * 8}</p><span>{_product(n)['price_eur']} €</span></li>"
        for n in products
    )
    head = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        '<link rel=stylesheet href="/static/app.css"><script defer src="/static/app.js"></script>'
        "</head><body><main><ul>"
    )
    return (head + items + "</ul></main></body></html>").encode()


class _FirstVisit:
    """Marks a person's first request (no session cookie yet) as the ``user`` functional unit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        new = f"{SESSION_COOKIE}=" not in headers.get("cookie", "")
        if new and classify(headers.get("user-agent")).synthetic_type is None:
            trace.get_current_span().set_attribute(A.DOWNSTREAM_FUNCTIONAL_UNIT, "user")
        if not new:
            await self.app(scope, receive, send)
            return
        cookie = f"{SESSION_COOKIE}={secrets.token_hex(8)}; Path=/; HttpOnly; SameSite=Lax"

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, with_cookie)


def build_app(llm: LLMClients, *, seed: int = 7) -> ASGIApp:
    """The shop as an ASGI app (wrap it with ``ASGIMiddleware`` to measure it)."""
    rng = random.Random(seed)
    assets = {name: (kind, rng.randbytes(size)) for name, (kind, size) in ASSET_SIZES.items()}
    home = _page("Trail shop", range(1, _PAGE_PRODUCTS + 1))
    pages = {n: _page(f"Trail product {n}", range(n, n + 20)) for n in range(1, 49)}

    async def index(request: Request) -> Response:
        return HTMLResponse(home)

    async def product_page(request: Request) -> Response:
        page = pages.get(int(request.path_params["id"]))
        return HTMLResponse(page) if page else PlainTextResponse("no such product", 404)

    async def static(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("not found", 404)
        kind, body = found
        return Response(body, media_type=kind, headers={"cache-control": "max-age=86400"})

    async def robots(request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nAllow: /\nDisallow: /api/\n")

    async def products(request: Request) -> Response:
        page = max(1, min(int(request.query_params.get("page", "1") or 1), 100))
        first = (page - 1) * _PAGE_PRODUCTS + 1
        items = [_product(n) for n in range(first, first + _PAGE_PRODUCTS)]
        return JSONResponse({"page": page, "items": items})

    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"received_bytes": size}, status_code=201)

    async def chat(request: Request) -> Response:
        return await _assistant(request, llm, "openai")

    async def assistant(request: Request) -> Response:
        return await _assistant(request, llm, "mistral")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/products/{id:int}", product_page),
            Route("/static/{name}", static),
            Route("/robots.txt", robots),
            Route("/api/products", products),
            Route("/api/upload", upload, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/assistant", assistant, methods=["POST"]),
        ]
    )
    return _FirstVisit(app)


async def _assistant(request: Request, llm: LLMClients, provider: str) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
        prompt = str(body["prompt"])
        model = str(body["model"])
        stream = bool(body.get("stream", False))
        max_tokens = int(body.get("max_tokens", 200))
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"bad request body: {exc}"}, status_code=400)
    headers = {"x-fake-output-tokens": str(max_tokens)} if llm.fake_headers else None
    messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}]
    try:
        if provider == "openai":
            return await _openai(
                llm.openai,
                model=model,
                messages=messages,
                stream=stream,
                max_tokens=max_tokens,
                headers=headers,
            )
        return await _mistral(
            llm.mistral,
            model=model,
            messages=messages,
            stream=stream,
            max_tokens=max_tokens,
            headers=headers,
        )
    except Exception as exc:  # the provider failed: say so, as a real gateway would
        return JSONResponse({"error": f"{provider}: {type(exc).__name__}: {exc}"}, status_code=502)


def _sse(text: str) -> bytes:
    return f"data: {json.dumps({'text': text})}\n\n".encode()


def _answer(completion: Any) -> Response:
    """A non-streamed answer: both SDKs shape a completion's first choice alike."""
    return JSONResponse({"answer": completion.choices[0].message.content})


def _relay(choices_per_chunk: AsyncIterator[Any]) -> Response:
    """Relay a provider stream to the browser as SSE text deltas (both SDKs: ``choices[0].delta``)."""

    async def relay() -> AsyncIterator[bytes]:
        async for choices in choices_per_chunk:
            if choices and choices[0].delta.content:
                yield _sse(str(choices[0].delta.content))
        yield b"data: [DONE]\n\n"

    return StreamingResponse(relay(), media_type="text/event-stream")


async def _openai(
    client: Any,
    *,
    model: str,
    messages: list[dict[str, str]],
    stream: bool,
    max_tokens: int,
    headers: dict[str, str] | None,
) -> Response:
    options: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if headers:
        options["extra_headers"] = headers
    if not stream:
        return _answer(await client.chat.completions.create(**options))
    chunks = await client.chat.completions.create(
        **options, stream=True, stream_options={"include_usage": True}
    )
    return _relay(chunk.choices async for chunk in chunks)


async def _mistral(
    client: Any,
    *,
    model: str,
    messages: list[dict[str, str]],
    stream: bool,
    max_tokens: int,
    headers: dict[str, str] | None,
) -> Response:
    options: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if headers:
        options["http_headers"] = headers
    if not stream:
        return _answer(await client.chat.complete_async(**options))
    events = await client.chat.stream_async(**options)
    return _relay(event.data.choices async for event in events)
