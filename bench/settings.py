"""The benchmark's own settings: production settings plus the reference views.

The reference (``bench/reference``) and the fixed-bytes ceiling are mounted
only here, never in the service's own URLs.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405  (the benchmark seeds its own data)
WHITENOISE_USE_FINDERS = True  # no collectstatic for a benchmark run
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
