"""WSGI entry point (gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

from config.tracing import setup_tracing

# A deploy that forgets the variable gets production (secrets required, no
# debug), never the development settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
setup_tracing()  # before the handler loads the middleware (tracing adds one)
application = get_wsgi_application()
