"""Fixtures for casework's service and route tests: only the casework database and app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.migrate import migrate
from shared.secrets import Secrets
from tests.conftest import create_pg_databases, drop_pg_databases
from tests.services.casework.harness import Casework, running


@pytest.fixture
async def casework_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh, migrated casework database on the test's backend."""
    use_pg = request.node.get_closest_marker("postgres") is not None or (
        "backend" in request.fixturenames and request.getfixturevalue("backend") == "postgres"
    )
    if use_pg:
        urls = await create_pg_databases(pg_templates)
        try:
            yield urls["casework"]
        finally:
            await drop_pg_databases(urls)
        return
    url = f"sqlite+aiosqlite:///{tmp_path}/casework.db"
    await migrate("casework", url)
    yield url


@pytest.fixture
async def cw(casework_url: str, secrets: Secrets, tmp_path: Path) -> AsyncIterator[Casework]:
    """The casework app on its own database, clock frozen at 2026-03-02 10:00 Beijing."""
    async with running(casework_url, secrets, tmp_path) as harness:
        yield harness
