"""The route template of a request (``/items/{item_id}``), never the raw path.

Frameworks keep the matched route where a WSGI/ASGI middleware does not look: Flask on its request
object (cleared when the request ends), Django on the resolver match. :func:`hook_framework_routes`
teaches them to leave it under :data:`ROUTE_KEY` in the environ/scope; the two readers find it
there or where Starlette and Flask put it. Faults here only lose the route, never the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_downstream.agent.faults import report_fault

ROUTE_KEY = "otel_downstream.route"
"""Environ/scope key where framework hooks leave the matched route template."""


def hook_framework_routes(app: Any) -> None:
    """Teach the wrapped framework app (Flask, Django) to leave its route template where we read it.

    Both keep the matched route on a request object a WSGI/ASGI middleware never sees (Flask even
    clears ``environ["werkzeug.request"]`` when the request ends). Faults here only lose the route.
    """
    try:
        target = getattr(app, "__self__", app)  # Flask: app.wsgi_app is a bound method
        module = type(target).__module__
        if module.startswith("flask"):
            _hook_flask(target)
        elif module.startswith("django."):
            _hook_django(target)
    except Exception as exc:
        report_fault("routes", exc)


def _hook_flask(app: Any) -> None:
    from flask import request, request_started

    def remember_route(sender: Any, **extra: Any) -> None:
        try:
            rule = request.url_rule
            if rule is not None:
                request.environ[ROUTE_KEY] = rule.rule
        except Exception as exc:
            report_fault("flask", exc)

    request_started.connect(remember_route, app, weak=False)


def _hook_django(app: Any) -> None:
    # Wrap ``resolve_request`` on this one handler instance; the match itself is returned untouched.
    original = getattr(app, "resolve_request", None)
    if original is None:
        return

    def resolve_request(request: Any) -> Any:
        match = original(request)
        try:
            route = getattr(match, "route", None)
            if isinstance(route, str) and route:
                if not route.startswith(("/", "^")):
                    route = "/" + route
                carrier = getattr(request, "scope", None)
                if not isinstance(carrier, dict):
                    carrier = request.META
                carrier[ROUTE_KEY] = route
        except Exception as exc:
            report_fault("django", exc)
        return match

    app.resolve_request = resolve_request


def environ_route(environ: Mapping[str, Any]) -> str | None:
    """The route template a framework matched: a hook's key (Django), else Flask's ``url_rule``."""
    try:
        route = environ.get(ROUTE_KEY)
        if isinstance(route, str):
            return route
        request = environ.get("werkzeug.request")
        rule = getattr(getattr(request, "url_rule", None), "rule", None)
        return rule if isinstance(rule, str) else None
    except Exception as exc:
        report_fault("wsgi", exc)
        return None


def scope_route(scope: Mapping[str, Any], entry_root: str) -> str | None:
    """The template the router matched (Starlette/FastAPI ``scope["route"]``, or a hook's key).

    Inside a mounted sub-application the route's path is relative to the mount: the mounts'
    templates are put in front when they are static paths (never the raw path a mount matched).
    """
    try:
        route = scope.get(ROUTE_KEY)
        if isinstance(route, str):
            return route
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str) or not path:
            return None
        root = scope.get("root_path", "")
        if isinstance(root, str) and len(root) > len(entry_root) and root.startswith(entry_root):
            prefix = _mount_template(scope.get("router"), root[len(entry_root) :], 0)
            if prefix is not None:
                return prefix + path
        return path
    except Exception as exc:
        report_fault("asgi", exc)
        return None


def _mount_template(router: Any, prefix: str, depth: int) -> str | None:
    """The static mount paths that add up to ``prefix``, or None (a mount with parameters)."""
    if depth > 8:
        return None
    for mount in getattr(router, "routes", None) or ():
        path = getattr(mount, "path", None)
        if not isinstance(path, str) or not path or "{" in path or not hasattr(mount, "routes"):
            continue
        if prefix == path:
            return path
        if prefix.startswith(path + "/"):
            rest = _mount_template(mount, prefix[len(path) :], depth + 1)
            if rest is not None:
                return path + rest
    return None
