"""Fixtures of intake's tests: a migrated intake database and the app running on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.migrate import migrate
from shared.clock import FrozenClock
from shared.secrets import Secrets
from tests.conftest import create_pg_databases, drop_pg_databases
from tests.services.intake.harness import Intake, start_intake


@pytest.fixture
async def intake_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh intake database migrated to head, on the test's backend (SQLite by default)."""
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "postgres":
        urls = await create_pg_databases(pg_templates)
        try:
            yield urls["intake"]
        finally:
            await drop_pg_databases(urls)
        return
    url = f"sqlite+aiosqlite:///{tmp_path}/intake.db"
    await migrate("intake", url)
    yield url


@pytest.fixture
async def intake(
    intake_url: str, tmp_path: Path, secrets: Secrets, clock: FrozenClock
) -> AsyncIterator[Intake]:
    """Intake on a fresh database, with demo clients and one two-per-minute client."""
    harness, stop = await start_intake(intake_url, tmp_path / "var", secrets, clock)
    try:
        yield harness
    finally:
        await stop()
