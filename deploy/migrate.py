"""Apply or revert a service's Alembic migrations programmatically (CLI, tests, `fangpin up`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import services

SERVICES: tuple[str, ...] = ("intake", "screening", "casework")
ServiceName = Literal["intake", "screening", "casework"]


def alembic_config(service: str) -> Config:
    """Return the Alembic config of a service, independent of the working directory."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    base = Path(services.__file__).parent / service
    cfg = Config(str(base / "alembic.ini"))
    cfg.set_main_option("script_location", str(base / "migrations"))
    return cfg


def _run(connection: Connection, cfg: Config, action: str, revision: str) -> None:
    cfg.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def migrate(
    service: str, url: str, *, action: str = "upgrade", revision: str = "head"
) -> None:
    """Upgrade (or downgrade) a service's database at url to a revision."""
    cfg = alembic_config(service)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run, cfg, action, revision)
    finally:
        await engine.dispose()
