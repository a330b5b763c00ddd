"""What every service's FastAPI app has in common: problems, metrics, health, limits, ids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Principal, bearer_token, decode_token
from shared.logs import correlation_id
from shared.metrics import instrument
from shared.problems import PROBLEM_JSON, PayloadTooLarge, add_problem_handlers, document_problems
from shared.settings import ServiceSettings


class BodyLimitMiddleware:
    """Refuses bodies over a limit before the app reads them (Content-Length or streamed)."""

    def __init__(self, app: ASGIApp, *, limit: int, exempt: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.exempt(scope["path"]) or self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, send, limit)
            return
        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # Whatever the app answers to a body it could not finish reading (FastAPI turns
            # the error into a 400, a BaseHTTPMiddleware wraps it in an exception group) is
            # replaced by the 413 below.
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except BaseExceptionGroup as group:
            _, others = group.split(_BodyTooLarge)
            if others is not None:
                raise
        if exceeded and not started:
            await _too_large(scope, send, limit)


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    problem = PayloadTooLarge(
        f"the body is larger than {limit} bytes", detail_zh=f"请求体超过 {limit} 字节的上限"
    )
    response = JSONResponse(
        problem.body(scope["path"]), status_code=problem.status, media_type=PROBLEM_JSON
    )
    await response(scope, _noop_receive, send)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


class CorrelationMiddleware:
    """Takes X-Correlation-Id from the caller (or makes one) and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = (
            dict(scope.get("headers") or []).get(b"x-correlation-id", b"").decode(errors="ignore")
        )
        try:
            cid = str(uuid.UUID(given))
        except ValueError:
            cid = str(uuid.uuid4())
        token = correlation_id.set(cid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-correlation-id", cid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)


ReadyCheck = Callable[[], Awaitable[dict[str, str]]]


async def database_ready(engine: AsyncEngine) -> str:
    """Return "ok" if a trivial query answers within two seconds."""
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"


async def kafka_ready(bootstrap_servers: str) -> str:
    """Return "ok" if the first bootstrap server accepts a TCP connection.

    API processes never speak the Kafka protocol (request latency must not depend on the
    broker); a socket probe is enough to tell an operator the bus is reachable.
    """
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(host or "127.0.0.1", int(port))
        writer.close()
        return "ok"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"


def install_common(
    app: FastAPI,
    *,
    service: str,
    settings: ServiceSettings,
    engine_of: Callable[[], AsyncEngine],
    body_limit_for: Callable[[str], int | None] = lambda _path: None,
) -> None:
    """Add problem handlers, metrics, correlation ids, body limits, /healthz and /readyz."""
    add_problem_handlers(app)
    document_problems(app)
    instrument(app, service)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, exempt=body_limit_for)
    if settings.cors_origins:
        # Outermost, so preflights and every error answer carry the headers. Bearer tokens
        # travel in a header, never cookies, so credentials stay off; only the listed origins
        # get an answer to their preflight.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Correlation-Id"],
            expose_headers=["X-Correlation-Id", "Content-Disposition"],
            max_age=600,
        )

    @app.get("/healthz", tags=["operations"], summary="进程存活 / process alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get(
        "/readyz", tags=["operations"], summary="数据库与消息总线可用 / database and bus reachable"
    )
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {"database": await database_ready(engine_of())}
        checks["bus"] = (
            await kafka_ready(settings.kafka.bootstrap_servers) if settings.bus == "kafka" else "ok"
        )
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "service": service, "checks": checks},
            status_code=200 if ready else 503,
        )


async def current_caseworker(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """Authenticate a caseworker by JWT (the app keeps its secret in state.jwt_secret)."""
    secret: str = request.app.state.jwt_secret
    return decode_token(secret, bearer_token(authorization))


Caseworker = Annotated[Principal, Depends(current_caseworker)]
