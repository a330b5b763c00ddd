"""Every service's Alembic history: up, down, up again, and no drift from the models."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from deploy.migrate import SERVICES, migrate


def _metadata(service: str) -> MetaData:
    module = importlib.import_module(f"services.{service}.models")
    metadata: MetaData = module.metadata
    return metadata


async def _run(url: str, fn: Any) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("service", SERVICES)
class TestMigrations:
    async def test_upgrade_downgrade_upgrade(
        self, service: str, db_urls: dict[str, str], backend: str
    ) -> None:
        url = db_urls[service]  # already at head
        expected = set(_metadata(service).tables)
        assert await _run(url, _tables) == expected
        await migrate(service, url, action="downgrade", revision="base")
        assert await _run(url, _tables) == set()
        await migrate(service, url, action="upgrade", revision="head")
        assert await _run(url, _tables) == expected

    async def test_models_match_migrations(
        self, service: str, db_urls: dict[str, str], backend: str
    ) -> None:
        metadata = _metadata(service)

        def diff(conn: Connection) -> list[Any]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, metadata))

        assert await _run(db_urls[service], diff) == []
