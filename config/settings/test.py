"""Test settings: the real PostgreSQL and Redis, never in-process stand-ins.

The suite uses its own Redis database number (flushed per test) and pytest-django
creates its own PostgreSQL database (``test_<name>``).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DB_POOL_SIZE", "20")
# Tests of rate limiting set their own small budgets; everything else is unlimited.
os.environ.setdefault("RATE_LIMIT_READS", "100000/m")
os.environ.setdefault("RATE_LIMIT_FRESH", "100000/m")
os.environ.setdefault("RATE_LIMIT_WRITES", "100000/m")
# Every use of a compiled query shape is checked against its queryset built afresh.
os.environ.setdefault("QUERY_SHAPES_VERIFY", "true")

from .base import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
