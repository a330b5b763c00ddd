"""Fixtures of screening's own tests: its database alone, a unit of work, the app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from deploy.migrate import migrate
from shared.clock import FrozenClock
from shared.db import UnitOfWork, create_engine, make_sessionmaker
from shared.secrets import Secrets
from shared.settings import DatabaseSettings
from tests.conftest import create_pg_databases, drop_pg_databases
from tests.services.screening.harness import Screening, screening_app


@pytest.fixture
async def screening_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh, migrated screening database on the test's backend (SQLite unless postgres)."""
    use_pg = request.node.get_closest_marker("postgres") is not None or (
        "backend" in request.fixturenames and request.getfixturevalue("backend") == "postgres"
    )
    if use_pg:
        urls = await create_pg_databases(pg_templates)
        try:
            yield urls["screening"]
        finally:
            await drop_pg_databases(urls)
        return
    url = f"sqlite+aiosqlite:///{tmp_path}/screening.db"
    await migrate("screening", url)
    yield url


@pytest.fixture
async def uow(screening_url: str) -> AsyncIterator[UnitOfWork]:
    """A unit of work on the test's screening database."""
    engine = create_engine(DatabaseSettings(url=screening_url))
    try:
        yield UnitOfWork(make_sessionmaker(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def frozen() -> FrozenClock:
    """A clock at a fixed instant (2026-11-20 10:00 China time), for dated expectations."""
    return FrozenClock(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))


@pytest.fixture
async def screening(
    screening_url: str, secrets: Secrets, frozen: FrozenClock, tmp_path: Path
) -> AsyncIterator[Screening]:
    """The screening app over ASGI with its lifespan entered."""
    app = screening_app(screening_url, secrets, frozen, tmp_path)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://screening.test"
        )
        async with client:
            yield Screening(
                app=app,
                http=client,
                uow=app.state.uow,
                cipher=app.state.cipher,
                secrets=secrets,
                clock=frozen,
            )
