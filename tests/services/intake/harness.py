"""Intake alone over ASGI with clients a test can shape, plus helpers for its problems."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from deploy.demo import write_demo_credentials
from services.intake import app as intake_app
from services.intake.dependencies import IntakeState
from services.intake.settings import IntakeSettings
from shared.auth import ClientRegistry, string_to_sign
from shared.clock import FrozenClock
from shared.db import create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings

# A client allowed two requests a minute, for the rate-limit test.
SLOW_CLIENT = {
    "client_id": "dept-slow",
    "secret": "slow-secret-0123456789",
    "kind": "department",
    "department": "health",
    "rate_per_minute": 2,
}


class Intake:
    """The intake app with helpers to sign requests and count rows."""

    def __init__(
        self,
        app: FastAPI,
        http: httpx.AsyncClient,
        creds: dict[str, Any],
        engine: AsyncEngine,
        settings: IntakeSettings,
        clock: FrozenClock,
        secrets: Secrets,
    ) -> None:
        self.app = app
        self.http = http
        self.creds = creds
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self.settings = settings
        self.clock = clock
        self.secrets = secrets
        self._used_seconds: set[int] = set()

    @property
    def state(self) -> IntakeState:
        """Return the running app's state."""
        state: IntakeState = self.app.state.intake
        return state

    def client(self, kind: str, department: str | None = None) -> dict[str, Any]:
        """Return a machine client's credentials."""
        for c in self.creds["clients"]:
            if c["kind"] == kind and (department is None or c.get("department") == department):
                return dict(c)
        raise KeyError(kind)

    def token(self, role: str, region: str | None = None) -> str:
        """Return a demo caseworker's JWT."""
        for c in self.creds["caseworkers"]:
            if c["role"] == role and (region is None or c["region"] == region):
                return str(c["token"])
        raise KeyError(role)

    async def signed(
        self,
        method: str,
        path: str,
        client: dict[str, Any],
        body: Any = None,
        *,
        raw: bytes | Callable[[], Iterable[bytes]] | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
        timestamp: float | None = None,
    ) -> httpx.Response:
        """Send an HMAC-signed request.

        raw may be a function returning chunks: it is read once for the digest and once more
        to stream the body, so a test can push a large file without holding it in memory.
        """
        if raw is None:
            content: Any = b"" if body is None else json.dumps(body).encode()
            digest = hashlib.sha256(content).hexdigest()
        elif isinstance(raw, bytes):
            content = raw
            digest = hashlib.sha256(raw).hexdigest()
        else:
            hasher = hashlib.sha256()
            for chunk in raw():
                hasher.update(chunk)
            digest = hasher.hexdigest()
            content = _AsyncChunks(raw)
        if timestamp is None:
            # Each call signs with a second of its own, as a real client's retry would, so two
            # identical requests of a test are not mistaken for a replay.
            second = int(time.time())
            while second in self._used_seconds:
                second -= 1
            self._used_seconds.add(second)
            timestamp = second
        ts = str(int(timestamp))
        signature = hmac.new(
            client["secret"].encode(), string_to_sign(method, path, ts, digest), hashlib.sha256
        ).hexdigest()
        h = {"X-Client-Id": client["client_id"], "X-Timestamp": ts, "X-Signature": signature}
        if content_type and (body is not None or raw is not None):
            h["Content-Type"] = content_type
        h.update(headers or {})
        return await self.http.request(method, path, content=content, headers=h)

    async def count(self, name: str) -> int:
        """Return how many rows a table has."""
        async with self.sessionmaker() as session:
            stmt = select(func.count()).select_from(table(name))
            return int((await session.execute(stmt)).scalar_one())

    async def counts(self, *names: str) -> dict[str, int]:
        """Return the row counts of several tables."""
        return {name: await self.count(name) for name in names}


class _AsyncChunks:
    """An async byte stream over generated chunks, so httpx streams the request."""

    def __init__(self, chunks: Callable[[], Iterable[bytes]]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk


def make_settings(url: str, var: Path, **overrides: Any) -> IntakeSettings:
    """Return intake settings on a database and var dir."""
    return IntakeSettings(database=DatabaseSettings(url=url), var_dir=var, **overrides)


def registry_for(creds: dict[str, Any]) -> ClientRegistry:
    """Return the demo clients plus the slow one."""
    return ClientRegistry.from_json(json.dumps({"clients": [*creds["clients"], SLOW_CLIENT]}))


async def start_intake(
    url: str, var: Path, secrets: Secrets, clock: FrozenClock, **overrides: Any
) -> tuple[Intake, Any]:
    """Start an intake app; return it and the exit callable of its lifespan."""
    creds = write_demo_credentials(var / "demo-credentials.json", secrets.jwt_secret, clock.now())
    # Judging in a thread unless a test asks for the child process: spawning one costs seconds.
    overrides.setdefault("bulk_judge_processes", 0)
    settings = make_settings(url, var, **overrides)
    app = intake_app.create_app(settings, clock=clock, secrets=secrets, clients=registry_for(creds))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake.test")
    engine = create_engine(settings.database)
    harness = Intake(app, http, creds, engine, settings, clock, secrets)

    async def stop() -> None:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)
        await engine.dispose()

    return harness, stop


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """Check an RFC 9457 problem of a given status and type slug; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + kind), body["type"]
    assert body["title_zh"]
    assert body["detail_zh"]
    return body
