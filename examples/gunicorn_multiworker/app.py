"""The WSGI app every gunicorn worker loads (see gunicorn.conf.py): a Flask shop plus /metrics.

``configure(metrics_port=None)`` starts no metrics server per worker (they would fight over one
port); ``/metrics`` is answered by the app itself from every worker's multiprocess files, and is
kept outside the middleware so scrapes are not counted as customer traffic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import Flask, jsonify, request

from otel_downstream.agent import WSGIMiddleware, configure, metrics_wsgi_app

handle = configure(service_name="gunicorn-shop", metrics_port=None)
shop = Flask(__name__)


@shop.get("/")
def index() -> str:
    return "<!doctype html><title>Trail shop</title>" + "<p>Light, repairable kit.</p>" * 400


@shop.get("/api/worker")
def worker() -> Any:
    return jsonify(pid=os.getpid())


@shop.post("/api/upload")
def upload() -> Any:
    return jsonify(received_bytes=len(request.get_data())), 201


measured = WSGIMiddleware(shop.wsgi_app, tracer_provider=handle.tracer_provider)
metrics = metrics_wsgi_app()


def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/metrics":
        return metrics(environ, start_response)
    return measured(environ, start_response)
