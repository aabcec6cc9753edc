"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

# A deploy that forgets the variable gets production (secrets required, no
# debug), never the development settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
