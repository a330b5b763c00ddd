"""Prometheus metrics shared by the services (one registry per process, labelled by service)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match

REQUEST_SECONDS = Histogram(
    "fangpin_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
OUTBOX_BACKLOG = Gauge("fangpin_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "fangpin_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
OUTBOX_PUBLISHED = Counter("fangpin_outbox_published_total", "Outbox rows published", ["service"])
CONSUMER_LAG = Gauge("fangpin_consumer_lag", "Records not yet processed", ["group"])
EVENTS_PROCESSED = Counter(
    "fangpin_events_processed_total", "Events handled by a consumer", ["group", "outcome"]
)
DEAD_LETTERS = Counter(
    "fangpin_dead_letters_total", "Records sent to a dead-letter topic", ["group"]
)
OVERDUE_DEADLINES = Gauge("fangpin_overdue_deadlines", "Deadlines breached and still unmet")


def instrument(app: FastAPI, service: str) -> None:
    """Time every request by route template and serve /metrics."""

    @app.middleware("http")
    async def _timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = "unmatched"
        for r in app.router.routes:
            match, _ = r.matches(request.scope)
            if match is Match.FULL:
                route = getattr(r, "path", "unmatched")
                break
        REQUEST_SECONDS.labels(service, request.method, route, str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
