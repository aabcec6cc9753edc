"""Fixtures of the cache tests (``own_redis`` is shared: ``tests/conftest.py``)."""
