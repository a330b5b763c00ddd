"""Database plumbing shared by the services: metadata, portable types, engines, unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import Table
from sqlalchemy.types import TypeDecorator

from shared.settings import DatabaseSettings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY, so BIGINT degrades to INTEGER there.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def make_metadata() -> MetaData:
    """Return a MetaData with the project's constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that only accepts aware datetimes and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC instants only")
        return value.astimezone(UTC)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back naive values; they were written as UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _prepare_sqlite_file(url: str) -> None:
    marker = ":///"
    if marker in url:
        path = url.split(marker, 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def is_unavailable(exc: BaseException) -> bool:
    """True when the database itself is unreachable (down, restarting), not the statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | OSError | ConnectionError)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Create the async engine for a service database, tuned per dialect."""
    if settings.is_sqlite:
        _prepare_sqlite_file(settings.url)
        # One short-lived connection per session: SQLite serialises writers anyway, and a
        # pool of idle aiosqlite threads only holds file locks longer.
        engine = create_async_engine(
            settings.url,
            echo=settings.echo,
            poolclass=NullPool,
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to SQLAlchemy so the "begin" hook below decides how
            # a transaction starts (the driver's implicit BEGIN would be DEFERRED).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets the API read while a worker writes; busy_timeout waits out the lock.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock up front so two writers queue instead of deadlocking
            # on a read-to-write upgrade (SQLITE_BUSY that busy_timeout cannot resolve).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    server_settings = (
        {"default_toast_compression": settings.toast_compression}
        if settings.toast_compression
        else {}
    )
    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        connect_args={"server_settings": server_settings},
    )

    @event.listens_for(engine.sync_engine, "checkout")
    def _refuse_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Instead of pool_pre_ping, whose asyncpg ping is three round trips (BEGIN, an empty
        # query, ROLLBACK) on every checkout, about a third of a small request's database
        # time. A pooled connection sits on the event loop, which sees the server close it
        # (PostgreSQL restarted or the backend terminated) and marks it closed; the pool then
        # replaces it before anyone uses it, as a failed ping would.
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("pooled connection was closed by the server")

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory used by a unit of work."""
    return async_sessionmaker(engine, expire_on_commit=False)


class UnitOfWork:
    """Opens one transaction; whoever opens it commits it (services never commit)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Yield a session inside a transaction, committed on success, rolled back on error."""
        async with self._sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Yield a session for reads; nothing is committed."""
        async with self._sessionmaker() as session:
            yield session


def insert_ignoring_conflicts(table: Table, dialect_name: str) -> Insert:
    """Return an INSERT … ON CONFLICT DO NOTHING for the session's dialect."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no conflict-ignoring insert for {dialect_name}")


def dialect_of(session: AsyncSession) -> str:
    """Return the dialect name of the session's bind."""
    return session.get_bind().dialect.name
