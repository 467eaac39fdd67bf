"""A Flask shop measured by otel-downstream: pages, a JSON API and an upload endpoint.

Run it:   python examples/flask_app.py       -> the shop on http://127.0.0.1:8000 (env PORT),
                                                footprint metrics on http://127.0.0.1:9464/metrics
                                                (env OTEL_DOWNSTREAM_METRICS_PORT)
Try it:   curl -A "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)" http://127.0.0.1:8000/
          curl -X POST --data-binary @README.md http://127.0.0.1:8000/api/upload
          curl -s http://127.0.0.1:9464/metrics | grep downstream_co2e_grams_total

``configure()`` sets up tracing and the in-process footprint accounting once (it is idempotent);
``WSGIMiddleware`` wraps ``app.wsgi_app`` so ``flask run``, the test client and every WSGI server go
through it. Behind a load balancer, trust its X-Forwarded-For hop with
``OTEL_DOWNSTREAM_TRUSTED_PROXIES=1`` (or ``trusted_proxies=1`` below) to get client countries.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, jsonify, request

from otel_downstream.agent import WSGIMiddleware, configure

PRODUCTS = [{"id": n, "name": f"Trail product {n}", "price_eur": 19.9 + n} for n in range(1, 25)]


def create_app(**middleware_options: Any) -> Flask:
    """The shop, measured. Options go to ``WSGIMiddleware`` (e.g. ``trusted_proxies=1``)."""
    handle = configure(service_name="flask-shop")
    middleware_options.setdefault("tracer_provider", handle.tracer_provider)
    app = Flask(__name__)
    app.extensions["otel_downstream"] = handle  # Flask's place for an extension's state

    @app.get("/")
    def index() -> str:
        items = "".join(f"<li>{p['name']}: {p['price_eur']:.2f} €</li>" for p in PRODUCTS)
        return f"<!doctype html><title>Trail shop</title><ul>{items * 20}</ul>"

    @app.get("/api/products/<int:product_id>")
    def product(product_id: int) -> Any:
        found = next((p for p in PRODUCTS if p["id"] == product_id), None)
        return jsonify(found) if found else (jsonify(error="no such product"), 404)

    @app.post("/api/upload")
    def upload() -> Any:
        size = len(request.get_data())
        return jsonify(received_bytes=size), 201

    @app.get("/download")
    def download() -> Response:
        chunks = (b"x" * 16_384 for _ in range(64))  # 1 MiB, streamed chunk by chunk
        return Response(chunks, mimetype="application/octet-stream")

    app.wsgi_app = WSGIMiddleware(app.wsgi_app, **middleware_options)  # type: ignore[method-assign]
    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    shop = create_app()
    address = shop.extensions["otel_downstream"].metrics_address
    metrics = f"http://{address[0]}:{address[1]}/metrics" if address else "not served"
    print(f"Flask shop on http://127.0.0.1:{port} ; footprint metrics: {metrics}", flush=True)
    shop.run(host="127.0.0.1", port=port)
