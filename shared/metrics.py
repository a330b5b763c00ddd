"""Prometheus metrics shared by the services (one registry per process, labelled by service)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class _TimingMiddleware:
    """Observes each HTTP request's duration by method, route template and status.

    A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
    BaseHTTPMiddleware runs the app in a task group and pipes the response through memory
    streams, which on a small endpoint cost more than the endpoint's own Python work.
    """

    def __init__(self, app: ASGIApp, *, router_app: FastAPI, service: str) -> None:
        self.app = app
        self.router_app = router_app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, send_and_note)
        route = "unmatched"
        for r in self.router_app.router.routes:
            match, _ = r.matches(scope)
            if match is Match.FULL:
                route = getattr(r, "path", "unmatched")
                break
        REQUEST_SECONDS.labels(self.service, scope["method"], route, str(status)).observe(
            time.perf_counter() - start
        )


def instrument(app: FastAPI, service: str) -> None:
    """Time every request by route template and serve /metrics."""
    app.add_middleware(_TimingMiddleware, router_app=app, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
