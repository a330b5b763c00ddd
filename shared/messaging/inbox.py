"""Inbox: a consumer's record of the events it has applied, claimed in the handler's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Uuid
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import UTCDateTime, dialect_of, insert_ignoring_conflicts


def make_inbox_table(metadata: MetaData) -> Table:
    """Attach the inbox_message table to a service's metadata."""
    return Table(
        "inbox_message",
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("topic", String(100), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
    )


async def claim(
    session: AsyncSession,
    table: Table,
    *,
    consumer: str,
    event_id: UUID,
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
) -> bool:
    """Record the event as applied; False means it was applied before (a redelivery).

    The claim commits or rolls back with the handler's writes, so a crash between them
    replays cleanly, and ON CONFLICT DO NOTHING closes the race between two deliveries.
    """
    stmt = insert_ignoring_conflicts(table, dialect_of(session)).values(
        consumer=consumer,
        event_id=event_id,
        topic=topic,
        partition=partition,
        offset=offset,
        received_at=now,
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


async def claim_many(
    session: AsyncSession,
    table: Table,
    *,
    consumer: str,
    records: Sequence[tuple[UUID, str, int, int]],
    now: datetime,
) -> set[UUID]:
    """Claim several events (event_id, topic, partition, offset) in one statement.

    Returns the ids newly claimed; an id repeated in `records` is claimed by its first
    record. The same ON CONFLICT DO NOTHING as `claim`, so a batch and a single record
    can never both apply one event.
    """
    rows: dict[UUID, dict[str, object]] = {}
    for event_id, topic, partition, offset in records:
        rows.setdefault(
            event_id,
            {
                "consumer": consumer,
                "event_id": event_id,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "received_at": now,
            },
        )
    if not rows:
        return set()
    stmt = (
        insert_ignoring_conflicts(table, dialect_of(session))
        .values(list(rows.values()))
        .returning(table.c.event_id)
    )
    return set((await session.execute(stmt)).scalars())
