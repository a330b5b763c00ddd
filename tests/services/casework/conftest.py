"""Fixtures for casework's service and route tests: only the casework database and app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from deploy.migrate import migrate
from shared.secrets import Secrets
from tests.conftest import PG_ADMIN_URL, pg_url_for
from tests.services.casework.harness import Casework, running


async def _pg_casework(pg_templates: dict[str, str]) -> AsyncIterator[str]:
    # Only casework's database is copied from its migrated template: these tests never
    # touch the other services, and each copy costs a second on a busy server.
    name = f"fp_casework_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_templates["casework"]}"')
    finally:
        await admin.close()
    try:
        yield pg_url_for(name)
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def casework_url(
    backend: str, tmp_path: Path, pg_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh, migrated casework database; every test using it runs on both backends."""
    if backend == "postgres":
        async for url in _pg_casework(pg_templates):
            yield url
        return
    url = f"sqlite+aiosqlite:///{tmp_path}/casework.db"
    await migrate("casework", url)
    yield url


@pytest.fixture
async def pg_casework_url(pg_templates: dict[str, str]) -> AsyncIterator[str]:
    """A fresh, migrated casework database on PostgreSQL (for tests marked `postgres`)."""
    async for url in _pg_casework(pg_templates):
        yield url


@pytest.fixture
async def cw(casework_url: str, secrets: Secrets, tmp_path: Path) -> AsyncIterator[Casework]:
    """The casework app on its own database, clock frozen at 2026-03-02 10:00 Beijing."""
    async with running(casework_url, secrets, tmp_path) as harness:
        yield harness
