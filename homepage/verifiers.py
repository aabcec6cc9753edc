"""How the consistency monitor recomputes a cached homepage (``caching/consistency.py``).

A stored homepage is tracked with the query string and user it was computed
for; the monitor recomputes it from the database with the same parameters and
compares the sections a client would see.
"""

from __future__ import annotations

from typing import Any

from aggregation.assembly import batch_view
from aggregation.batch import recompute_batch
from api.serializers import validated_query_string
from caching.consistency import register_verifier

from .sections import homepage_request, homepage_sections
from .serializers import HomepageQuerySerializer

HOMEPAGE_VERIFIER = "homepage"


def verify_args(query_string: str, user_id: int | None) -> dict[str, Any]:
    """What a stored homepage is tracked with."""
    return {"query": query_string, "user_id": user_id}


def recompute(args: dict[str, Any]) -> Any:
    """The homepage for these arguments, straight from the database."""
    params = validated_query_string(
        HomepageQuerySerializer, args["query"], registry=homepage_sections
    )
    return recompute_batch(homepage_request(params, args["user_id"]))


def register() -> None:
    """Register the homepage's verifier (from ``HomepageConfig.ready``)."""
    register_verifier(HOMEPAGE_VERIFIER, recompute, batch_view)
