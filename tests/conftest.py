"""Test fixtures: real databases per test, secrets, a frozen clock, and the server markers."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import asyncpg
import pytest

from deploy.migrate import SERVICES, migrate
from shared.clock import FrozenClock, utc_now
from shared.pii import PiiCipher, generate_key_b64
from shared.secrets import Secrets

IN_CI = os.environ.get("CI") == "true"
PG_URL = os.environ.get("TEST_POSTGRES_URL")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that needs a server it cannot have skips locally and fails under CI=true."""
    missing = []
    if item.get_closest_marker("postgres") and not (PG_URL and PG_ADMIN_URL):
        missing.append("PostgreSQL (TEST_POSTGRES_URL, TEST_POSTGRES_ADMIN_URL)")
    if item.get_closest_marker("kafka") and not KAFKA:
        missing.append("Kafka (KAFKA_BOOTSTRAP_SERVERS)")
    if missing:
        message = "needs " + " and ".join(missing) + "; `make test` starts them"
        if IN_CI:
            pytest.fail("CI=true: " + message)
        pytest.skip(message)


def pg_url_for(database: str) -> str:
    """Return the SQLAlchemy URL of a database on the test server."""
    assert PG_URL is not None
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


def _admin_dsn() -> str:
    assert PG_ADMIN_URL is not None
    return PG_ADMIN_URL


_TEMPLATES: dict[str, str] = {}


def _template_for(service: str) -> str:
    # One migrated template per service per run; each test then copies it, which is far
    # faster than migrating a fresh database every time.
    if service in _TEMPLATES:
        return _TEMPLATES[service]
    name = f"fp_tpl_{service}_{uuid.uuid4().hex[:8]}"

    async def build() -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate(service, pg_url_for(name))

    asyncio.run(build())
    _TEMPLATES[service] = name
    return name


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[dict[str, str]]:
    """Build the migrated template databases once (PostgreSQL tests only)."""
    if not (PG_URL and PG_ADMIN_URL):
        yield {}
        return
    names = {s: _template_for(s) for s in SERVICES}
    yield names

    async def drop() -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            for name in names.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    _TEMPLATES.clear()


async def create_pg_databases(templates: dict[str, str]) -> dict[str, str]:
    """Copy each service template into a fresh database; return service → URL."""
    conn = await asyncpg.connect(_admin_dsn())
    urls = {}
    try:
        for service in SERVICES:
            name = f"fp_{service}_{uuid.uuid4().hex[:10]}"
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates[service]}"')
            urls[service] = pg_url_for(name)
    finally:
        await conn.close()
    return urls


async def drop_pg_databases(urls: dict[str, str]) -> None:
    """Drop databases made by create_pg_databases."""
    conn = await asyncpg.connect(_admin_dsn())
    try:
        for url in urls.values():
            name = url.rpartition("/")[2]
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    return str(request.param)


@pytest.fixture
async def db_urls(
    request: pytest.FixtureRequest, tmp_path: object, pg_templates: dict[str, str]
) -> AsyncIterator[dict[str, str]]:
    """Fresh, migrated databases for the three services, on the test's backend."""
    use_pg = request.node.get_closest_marker("postgres") is not None or (
        "backend" in request.fixturenames and request.getfixturevalue("backend") == "postgres"
    )
    if use_pg:
        urls = await create_pg_databases(pg_templates)
        try:
            yield urls
        finally:
            await drop_pg_databases(urls)
        return
    urls = {s: f"sqlite+aiosqlite:///{tmp_path}/{s}.db" for s in SERVICES}
    for service, url in urls.items():
        await migrate(service, url)
    yield urls


@pytest.fixture
def secrets() -> Secrets:
    """Fresh key material for one test."""
    return Secrets(generate_key_b64(), generate_key_b64(), "jwt-" + uuid.uuid4().hex)


@pytest.fixture
def cipher(secrets: Secrets) -> PiiCipher:
    """The PII cipher of the test's secrets."""
    return secrets.cipher()


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at the real current instant (tokens and signatures use real time)."""
    now: datetime = utc_now()
    return FrozenClock(now)


@pytest.fixture
async def stack(
    db_urls: dict[str, str], secrets: Secrets, clock: FrozenClock, tmp_path: object
) -> AsyncIterator[object]:
    """The three services in-process, on the test's databases and an in-process bus."""
    from pathlib import Path

    from tests.support import Stack

    async with Stack(db_urls, secrets, clock, Path(str(tmp_path))) as s:
        yield s
