"""Production: secrets, hosts and shared stores come from the environment; DEBUG cannot be on.

A per-process stand-in (SQLite, the in-process cache, the in-memory broker)
would break promises across processes (read-your-writes, invalidation, rate
limits), so a missing store is a start-up error naming the variable to set.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, CACHES, CELERY_BROKER_URL, REDIS_MODE, env

if not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured("Set DATABASE_URL: production needs a shared PostgreSQL.")
if REDIS_MODE == "none":
    raise ImproperlyConfigured(
        "Set REDIS_URL (or REDIS_SENTINELS and REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES): "
        "production needs a shared Redis for its cache."
    )
if CELERY_BROKER_URL == "memory://":  # Sentinel or Cluster: the broker is not the cache
    raise ImproperlyConfigured(
        "Set CELERY_BROKER_URL (a separate Redis or RabbitMQ): production needs a shared broker."
    )
if "locmem" in CACHES["default"]["BACKEND"]:  # (nothing above allows it; kept so)
    raise ImproperlyConfigured("Set REDIS_URL: production refuses the in-process cache.")

SECRET_KEY = env("DJANGO_SECRET_KEY")  # no default: refuse to start without one
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DEBUG = False
if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG cannot be on in production.")

STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
WHITENOISE_USE_FINDERS = False  # run collectstatic on release
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
