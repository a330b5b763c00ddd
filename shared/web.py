"""What every service's FastAPI app has in common: problems, metrics, health, limits, ids."""

from __future__ import annotations

import asyncio
import json
import re
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
from shared.problems import (
    PROBLEM_JSON,
    FieldError,
    PayloadTooLarge,
    ValidationFailed,
    add_problem_handlers,
    document_problems,
)
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


# The escapes that can put unwritable text into a decoded JSON string: half of a UTF-16
# pair (uD800 to uDFFF) and NUL (u0000). Only a body containing one is decoded here.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)")
_BAD_TEXT = {
    "encoding.lone_surrogate": (
        "文本含有不成对的 UTF-16 代理字符",
        "the text holds an unpaired UTF-16 surrogate",
    ),
    "text.nul": ("文本不能含有 NUL（\\u0000）字符", "text must not contain NUL characters"),
}


def bad_text(value: object) -> str | None:
    """Return the code of the first string in a JSON value no database can store, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text.nul"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "encoding.lone_surrogate"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class JsonTextMiddleware:
    """Refuses JSON bodies with strings no database or encoder can take: NUL, lone surrogates.

    Python's decoder accepts both escapes and yields strings that PostgreSQL refuses (NUL)
    or that no UTF-8 encoder can write (half a surrogate pair): stored, published or echoed
    in an answer they became 500s. It holds at most `limit` bytes (the general body limit):
    a larger JSON-typed body can only be meant for a file upload route, which refuses it.
    Only bodies containing such an escape are decoded, and the body is handed on unchanged.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                await self.app(scope, _replay(buffered, receive), send)
                return
            size += len(message.get("body", b""))
            if size > self.limit:
                # More than any JSON route takes (only file uploads have a larger limit, and
                # they refuse a JSON media type): hand it on unread rather than hold it here.
                await self.app(scope, _replay(buffered, receive), send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in buffered)
        if _SUSPECT_ESCAPE.search(body):
            try:
                value = json.loads(body)
            except (ValueError, RecursionError):
                value = None  # the route's own parsing refuses it with a 422
            code = bad_text(value)
            if code is not None:
                zh, en = _BAD_TEXT[code]
                problem = ValidationFailed([FieldError("body", code, zh, en)])
                response = JSONResponse(
                    problem.body(scope["path"]), status_code=problem.status, media_type=PROBLEM_JSON
                )
                await response(scope, _noop_receive, send)
                return
        await self.app(scope, _replay(buffered, receive), send)


def _is_json(scope: Scope) -> bool:
    header: bytes = dict(scope.get("headers") or []).get(b"content-type", b"")
    given = header.split(b";")[0].strip().lower()
    return given == b"application/json" or given.endswith(b"+json")


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


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
    # Inside the body limit, so it never buffers more than the limit allows.
    app.add_middleware(JsonTextMiddleware, limit=settings.max_body_bytes)
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
