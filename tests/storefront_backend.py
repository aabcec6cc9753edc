"""``pytest --storefront=mongodb``: the storefront tests again, with the storefront in MongoDB.

A pytest plugin (loaded with ``-p``, see pyproject.toml): it must start the
server before pytest-django reads the settings, which happens before any
conftest is loaded. The server is secantusdb (MongoDB-compatible, from PyPI) on
a free port in a temporary directory, stopped when the session ends. In that
mode only tests marked ``storefront`` run, each with the storefront's database
as well as the default one.
"""

from __future__ import annotations

import os

import pytest

from tests.servers import MongoServer

STOREFRONT_DB = "storefront"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--storefront",
        choices=("relational", "mongodb"),
        default="relational",
        help="where the storefront lives: the default database, or a MongoDB the session starts",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if parser.parse_known_args(args).storefront != "mongodb":
        return (yield)
    if os.environ.get("STOREFRONT_TEST_MONGODB_URL"):  # a MongoDB of your own instead
        os.environ["STOREFRONT_DATABASE_URL"] = os.environ["STOREFRONT_TEST_MONGODB_URL"]
    else:
        server = MongoServer()
        server.start()
        early_config.add_cleanup(server.stop)
        os.environ["STOREFRONT_DATABASE_URL"] = server.url
    return (yield)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("storefront") != "mongodb":
        return
    kept, deselected = [], []
    for item in items:
        (kept if item.get_closest_marker("storefront") else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    for item in kept:
        _with_storefront_database(item)


def _with_storefront_database(item: pytest.Item) -> None:
    """Give a database test the storefront's database too (a marker before its own)."""
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    if marker is None and not {"db", "transactional_db"} & set(fixtures):
        return
    kwargs = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        kwargs.setdefault("transaction", marker.args[0])
    if "transactional_db" in fixtures or "live_server" in fixtures:
        kwargs["transaction"] = True
    databases = kwargs.get("databases") or ["default"]
    if databases != "__all__":
        kwargs["databases"] = sorted({*databases, STOREFRONT_DB})
    item.add_marker(pytest.mark.django_db(**kwargs), append=False)
