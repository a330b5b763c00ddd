"""The body of every service's Alembic env.py: async engines, SQLite batch mode, test hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _configure(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can only ALTER through table copies; batch mode writes them.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_env(metadata: MetaData, default_url: Callable[[], str]) -> None:
    """Run migrations offline, on a connection handed in by a caller, or on a fresh engine."""
    config = context.config
    handed = config.attributes.get("connection")
    if handed is not None:
        # Programmatic runs (tests, `fangpin migrate`) pass a sync connection in, so alembic
        # never starts a second event loop inside a running one.
        _configure(handed, metadata)
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or default_url()
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(_configure, metadata)
        await engine.dispose()

    asyncio.run(online())
