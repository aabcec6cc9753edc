"""Round trips per request to PostgreSQL and to Redis, counted on the wire.

PostgreSQL and Redis are a network hop away in every deployment, so each
round trip costs 0.3-1 ms there. The application runs under gunicorn and
reaches both stores only through counting proxies (``bench/proxy.py``); each
path is warmed up, then requested a few times, and the round trips per
request must stay what the design allows. A change that adds one fails here.
Rate limits are off, as in the benchmark: their counters cost two round
trips of their own (docs/benchmark.md).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import statistics
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from bench.proxy import Proxy
from homepage.models import CategoryAffinity
from tests.homepage.factories import EventFactory, OfferFactory, ProductFactory, StoreFactory
from tests.servers import gunicorn
from tests.students.factories import StudentFactory
from tests.trainers.factories import SessionFactory, TrainerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REQUESTS = 5
DELAY_MS = 1.0


@pytest.fixture
def stack() -> Iterator[tuple[str, dict[str, Proxy]]]:
    """One gunicorn worker reaching PostgreSQL and Redis only through counting proxies.

    Each reply is held 1 ms, as in the benchmark: with none, the replies to the
    start of a long pipeline can come back while libpq is still sending the
    rest (it flushes every 8 kB), which the proxy would count as a second turn
    although nothing waited for it.
    """
    database = connection.settings_dict["NAME"]
    redis_db = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[1]
    proxies = {
        "postgresql": Proxy(("127.0.0.1", 5432), delay_ms=DELAY_MS),
        "redis": Proxy(("127.0.0.1", 6379), delay_ms=DELAY_MS),
    }
    try:
        with gunicorn(
            database,
            workers=1,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{proxies['postgresql'].port}/{database}",
            REDIS_URL=f"redis://127.0.0.1:{proxies['redis'].port}/{redis_db}",
            RATELIMIT_ENABLE="false",
        ) as base:
            yield base, proxies
    finally:
        for proxy in proxies.values():
            proxy.close()


def _token(user: object) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def _per_request(
    base: str,
    proxies: dict[str, Proxy],
    path: str,
    token: str | None,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Round trips of one request to each store (the median of a few), after two to warm up.

    The median: on a busy machine a thread can stall between two writes of
    one long pipeline, and the proxy then sees two turns where the design
    has one; a change that adds a round trip adds it to every request.
    """

    def get() -> None:
        request = urllib.request.Request(base + path)
        if token:
            request.add_header("Authorization", f"Token {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, path
            if headers:  # a client holding a dictionary: it was used
                assert response.headers["Content-Encoding"] == "dcz", path

    get()
    get()
    counted: dict[str, list[int]] = {name: [] for name in proxies}
    for _ in range(REQUESTS):
        for proxy in proxies.values():
            proxy.reset()
        get()
        for name, proxy in proxies.items():
            counted[name].append(proxy.reset().round_trips)
    return {name: statistics.median_low(counts) for name, counts in counted.items()}


@pytest.fixture
def paths() -> dict[str, tuple]:
    """Each path: its URL and the token it is requested with."""
    ProductFactory.create_batch(12, featured=True)
    StoreFactory.create_batch(3)
    EventFactory.create_batch(3)
    OfferFactory.create_batch(3)
    trainer = TrainerFactory()
    SessionFactory.create_batch(3, allocation__trainer=trainer)
    student = StudentFactory()
    shopper = trainer.user  # any signed-in user has a homepage of their own
    CategoryAffinity.objects.create(user=shopper, category="electronics", score=0.9)
    mine = f"/api/v1/homepage?userId={shopper.pk}"
    trainer_token, student_token = _token(trainer.user), _token(student.user)
    bootstrap = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    student_bootstrap = f"/api/v1/students/{student.pk}/bootstrap"
    return {
        "homepage cold": ("/api/v1/homepage?fresh=true", None),
        "homepage warm": ("/api/v1/homepage", None),
        "personalised cold": (f"{mine}&fresh=true", trainer_token),
        "personalised warm": (mine, trainer_token),
        "trainer bootstrap cold": (f"{bootstrap}?fresh=true", trainer_token),
        "trainer bootstrap warm": (bootstrap, trainer_token),
        "student bootstrap cold": (f"{student_bootstrap}?fresh=true", student_token),
        "student bootstrap warm": (student_bootstrap, student_token),
    }


# (PostgreSQL, Redis) round trips per request. Cold: the sections' steps in one
# pipeline each (a personalised homepage has two: the affinities, then the
# lists); Redis: the token, entry and generations a signed-in caller's first
# look reads, the lock with everything the computation reads (with fresh=true
# the generations too: nothing cached is looked up), every write. Warm: one MGET.
BUDGETS = {
    "homepage cold": (1, 2),
    "homepage warm": (0, 1),
    "personalised cold": (2, 3),
    "personalised warm": (0, 1),
    "trainer bootstrap cold": (1, 3),
    "trainer bootstrap warm": (0, 1),
    "student bootstrap cold": (1, 3),
    "student bootstrap warm": (0, 1),
    # Holding a dictionary (dcz): its kept body is read in the same first look.
    "trainer bootstrap warm, dcz": (0, 1),
    "trainer bootstrap cold, dcz": (1, 3),
}


def _holding(base: str, path: str, token: str) -> dict[str, str]:
    """The headers of a client that kept the bootstrap at ``path`` as a dictionary."""
    asking = {"Authorization": f"Token {token}", "Accept-Encoding": "dcz, gzip"}  # kept for it
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=asking)) as response:
        body = gzip.decompress(response.read())
        offer = response.headers["Use-As-Dictionary"]
    ident = offer.split('id="', 1)[1].rstrip('"')
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return {"Accept-Encoding": "dcz, gzip", "Available-Dictionary": f":{digest}:",
            "Dictionary-ID": f'"{ident}"'}  # fmt: skip


def test_each_path_makes_the_round_trips_it_is_designed_to(stack, paths):
    base, proxies = stack
    bootstrap, token = paths["trainer bootstrap warm"]
    held = _holding(base, bootstrap, token)  # type: ignore[arg-type]
    paths["trainer bootstrap warm, dcz"] = (bootstrap, token, held)
    paths["trainer bootstrap cold, dcz"] = (f"{bootstrap}?fresh=true", token, held)
    measured = {name: _per_request(base, proxies, *paths[name]) for name in BUDGETS}
    over: Callable[[str], bool] = lambda name: (  # noqa: E731
        measured[name]["postgresql"] > BUDGETS[name][0]
        or measured[name]["redis"] > BUDGETS[name][1]
    )
    assert [name for name in BUDGETS if over(name)] == [], measured
