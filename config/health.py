"""Ops endpoints: liveness, readiness (its dependencies answer) and Prometheus metrics.

Readiness checks the database (and the storefront's MongoDB when configured),
the cache (Redis when configured) and the Celery broker, with
django-health-check, and answers 503 when any of them fails, so a load
balancer stops sending traffic to an instance that cannot serve it.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from aggregation import replicas
from aggregation.errors import ErrorCode, error_item
from api.errors import error_envelope
from api.ratelimits import client_ip
from caching import edge, listener
from homepage.storage import STOREFRONT_DB, on_mongodb


@dataclasses.dataclass
class CeleryBroker(HealthCheck):
    """The Celery broker accepts a connection (workers are Flower's concern)."""

    timeout = datetime.timedelta(seconds=2)

    def run(self) -> None:
        """Open and close one broker connection, without retries."""
        from config.celery_app import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=1)
        except Exception as exc:  # kombu raises transport-specific errors
            raise ServiceUnavailable("Broker unreachable") from exc


@dataclasses.dataclass
class MongoDatabase(HealthCheck):
    """The storefront's MongoDB answers a ``ping`` (``STOREFRONT_DATABASE_URL``)."""

    alias: str = STOREFRONT_DB
    timeout = datetime.timedelta(seconds=2)

    def run(self) -> None:
        """One ``ping``, bounded by the timeout."""
        import pymongo
        from django.db import connections
        from pymongo.errors import PyMongoError

        try:
            with pymongo.timeout(self.timeout.total_seconds()):
                connections[self.alias].database.command("ping")  # type: ignore[attr-defined]
        except PyMongoError as exc:
            raise ServiceUnavailable("Storefront database unreachable") from exc


def edge_report() -> str | None:
    """How purging the edge goes, for readiness: None when no edge is configured.

    Reported, never failing readiness: an edge that misses purges still expires
    what it holds, and the service itself can serve.
    """
    state = edge.status()
    if not state["enabled"]:
        return None
    if state["failing"]:
        return f"purges failing (retried): {state['last_error']}"
    return "OK"


class ReadinessView(HealthCheckView):
    """``/health/ready``: 200 when every dependency answers, 503 otherwise."""

    checks = (
        Database,
        Cache,
        CeleryBroker,
        *((MongoDatabase,) if on_mongodb() else ()),
    )
    reported: dict[str, object]  # set by ``get``, shown by ``render_to_response_json``

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.reported = await sync_to_async(_reported)()  # database and Redis calls: not async
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
        return response

    def render_to_response_json(self, status: int) -> JsonResponse:
        """The checks, plus the edge's purge state and each replica's lag when there are any."""
        response = super().render_to_response_json(status)
        if self.reported:
            body = {**json.loads(response.content), **self.reported}
            response = JsonResponse(body, status=status)
        return response


def _reported() -> dict[str, object]:
    """What readiness reports without failing on it: edge purges, replica lag, the listener."""
    extra: dict[str, object] = {}
    report = edge_report()
    if report is not None:
        extra["edge"] = report
    lags = replicas.status()
    if lags:
        extra["replicas"] = lags  # a replica away only sends reads to the primary
    follower = listener.report()
    if follower is not None:
        extra["listener"] = follower  # down or lagging: other writers' changes wait (degraded)
    return extra


def liveness(request: HttpRequest) -> JsonResponse:
    """``/health/live``: the process is up; no dependency is consulted."""
    return JsonResponse({"status": "ok", "version": settings.API_VERSION})


def metrics(request: HttpRequest) -> HttpResponse:
    """``/metrics`` for Prometheus, only to clients in ``METRICS_ALLOWED_NETWORKS``."""
    from django_prometheus.exports import ExportToDjangoView

    address = ipaddress.ip_address(client_ip(request) or "0.0.0.0")  # noqa: S104
    if not any(address in network for network in settings.METRICS_ALLOWED_NETWORKS):
        body = error_envelope("Not found.", [error_item(ErrorCode.NOT_FOUND, "Not found.")])
        return JsonResponse(body, status=404)
    response = ExportToDjangoView(request)
    response.content += listener.metrics_text()  # another process's state, read from Redis
    return response
