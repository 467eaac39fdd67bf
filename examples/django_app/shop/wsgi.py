"""The WSGI entry point: Django's handler wrapped by otel-downstream's middleware.

Served by ``manage.py runserver`` (WSGI_APPLICATION) and by any WSGI server, e.g.
``gunicorn --chdir examples/django_app shop.wsgi``. ``configure()`` wires tracing, the footprint
accounting and /metrics on 127.0.0.1:9464 (``OTEL_DOWNSTREAM_METRICS_PORT`` to change it). Wrap
Django's own handler directly, so the middleware can read the matched route template.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from otel_downstream.agent import WSGIMiddleware, configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

handle = configure(service_name="django-shop")
application = WSGIMiddleware(get_wsgi_application(), tracer_provider=handle.tracer_provider)
