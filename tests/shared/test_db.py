"""shared.db's engine on PostgreSQL: closed connections never handed out, large values in lz4."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import create_engine
from shared.settings import DatabaseSettings
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres


async def test_a_connection_the_server_closed_is_replaced_at_checkout() -> None:
    assert PG_URL is not None
    engine = create_engine(DatabaseSettings(url=PG_URL, pool_size=1))
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The pooled connection's backend ends, as it does when PostgreSQL restarts.
        killer = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await killer.close()
        await asyncio.sleep(0.2)  # the event loop reads the server's goodbye on the idle socket
        async with engine.connect() as conn:
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != first
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("setting", "expected"), [("lz4", "lz4"), ("pglz", "pglz")])
async def test_large_values_are_compressed_as_configured(setting: str, expected: str) -> None:
    assert PG_URL is not None
    engine = create_engine(DatabaseSettings(url=PG_URL, pool_size=1, toast_compression=setting))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TEMP TABLE big (doc jsonb)"))
            # A case's bound policy and template are this size: large enough to be compressed.
            doc = {
                "rules": [{"kind": f"k{i}", "citation": "《意见》第三条" * 4} for i in range(80)]
            }
            await conn.execute(
                text("INSERT INTO big VALUES (CAST(:d AS jsonb))"), {"d": json.dumps(doc)}
            )
            method = (
                await conn.execute(text("SELECT pg_column_compression(doc) FROM big"))
            ).scalar_one()
        assert method == expected
    finally:
        await engine.dispose()
