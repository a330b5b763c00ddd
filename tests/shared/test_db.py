"""shared.db's engine on PostgreSQL: a pooled connection the server closed is never handed out."""

from __future__ import annotations

import asyncio

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
