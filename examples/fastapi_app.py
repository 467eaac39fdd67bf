"""A FastAPI service measured by otel-downstream, serving its own /metrics.

Run it:   python examples/fastapi_app.py     -> http://127.0.0.1:8000 (env PORT; docs at /docs),
                                                footprint metrics at http://127.0.0.1:8000/metrics
Try it:   curl -H "X-Forwarded-For: 81.2.69.142" http://127.0.0.1:8000/api/items/3
          curl -N http://127.0.0.1:8000/api/stream
          curl -s http://127.0.0.1:8000/metrics | grep downstream_requests_total

Here ``configure(metrics_port=None)`` starts no metrics server of its own: the app serves
``metrics_asgi_app()`` at /metrics (excluded from measurement, so scrapes are not counted as
traffic). ``trusted_proxies=1`` reads the client from the last X-Forwarded-For hop, as written by
one load balancer in front of the app; the offline iptocc table maps it to a country.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.routing import Route

from otel_downstream.agent import ASGIMiddleware, configure, metrics_asgi_app


class _Exposition:
    """``/metrics`` as a route: Starlette calls a non-function endpoint as a plain ASGI app (a
    ``mount`` would redirect ``/metrics`` to ``/metrics/``)."""

    def __init__(self) -> None:
        self.app = metrics_asgi_app()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def create_app(**middleware_options: Any) -> FastAPI:
    """The service, measured. Options go to ``ASGIMiddleware``."""
    handle = configure(service_name="fastapi-shop", metrics_port=None)
    middleware_options.setdefault("tracer_provider", handle.tracer_provider)
    middleware_options.setdefault("trusted_proxies", 1)
    middleware_options.setdefault("excluded_paths", "/metrics")
    app = FastAPI(title="Trail shop API")

    @app.get("/api/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        if not 1 <= item_id <= 100:
            raise HTTPException(404, "no such item")
        return {"id": item_id, "name": f"Trail product {item_id}", "stock": item_id % 7}

    @app.post("/api/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"received_bytes": size}

    @app.get("/api/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for n in range(20):
                yield f"data: update {n}\n\n".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(lines(), media_type="text/event-stream")

    app.router.routes.append(Route("/metrics", _Exposition(), include_in_schema=False))
    app.add_middleware(ASGIMiddleware, **middleware_options)
    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
