"""Development and embedded default: DEBUG on unless told otherwise."""

from config.logging import logging_config

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405  (seed_demo; after the domains)
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)  # noqa: F405
