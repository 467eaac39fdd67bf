"""A minimal Django project measured by otel-downstream (see shop/wsgi.py)."""
