"""Transactional outbox: events are rows written with the state change, relayed later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.backoff import backoff_delay
from shared.clock import Clock
from shared.contracts.envelope import EventEnvelope, Payload
from shared.contracts.registry import build_envelope, encode
from shared.db import BigIntPK, JSONType, UTCDateTime
from shared.messaging.ports import MessagePublisher, OutgoingMessage
from shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED
from shared.settings import RelaySettings

logger = logging.getLogger(__name__)


def make_outbox_table(metadata: MetaData) -> Table:
    """Attach the outbox_message table to a service's metadata."""
    table = Table(
        "outbox_message",
        metadata,
        Column("id", BigIntPK, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", String(100), nullable=False),
        Column("message_key", String(200), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("value", Text, nullable=False),
        Column("headers", JSONType, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
    )
    # The relay only ever scans unpublished rows in id order; a partial index keeps that scan
    # as small as the backlog however many published rows wait for pruning.
    Index(
        "ix_outbox_message_unpublished",
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
        sqlite_where=table.c.published_at.is_(None),
    )
    Index("ix_outbox_message_published_at", table.c.published_at)
    return table


@dataclass(frozen=True, slots=True, kw_only=True)
class Staged:
    """One event to stage with `Outbox.add_many`."""

    payload: Any
    subject_key: str
    occurred_at: datetime
    correlation_id: UUID | None = None
    causation_id: UUID | None = None


class Outbox:
    """Writes a service's events into its outbox table inside the caller's transaction."""

    def __init__(self, table: Table, *, topic: str, producer: str) -> None:
        self.table = table
        self.topic = topic
        self.producer = producer

    async def add(
        self,
        session: AsyncSession,
        payload: Payload,
        *,
        subject_key: str,
        occurred_at: datetime,
        now: datetime,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> EventEnvelope[Payload]:
        """Stage an event; it is published only if the surrounding transaction commits."""
        staged = Staged(
            payload=payload,
            subject_key=subject_key,
            occurred_at=occurred_at,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        (envelope,) = await self.add_many(session, [staged], now=now)
        return envelope

    async def add_many(
        self, session: AsyncSession, events: Sequence[Staged], *, now: datetime
    ) -> list[EventEnvelope[Any]]:
        """Stage several events in one statement, relayed in the order given."""
        built = [
            self.row(
                e.payload,
                subject_key=e.subject_key,
                occurred_at=e.occurred_at,
                now=now,
                correlation_id=e.correlation_id,
                causation_id=e.causation_id,
            )
            for e in events
        ]
        if built:
            # An executemany keeps the rows' id order that of the list, which the relay keeps.
            await session.execute(self.table.insert(), [row for _, row in built])
        return [envelope for envelope, _ in built]

    def row(
        self,
        payload: Payload,
        *,
        subject_key: str,
        occurred_at: datetime,
        now: datetime,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> tuple[EventEnvelope[Payload], dict[str, Any]]:
        """Return an event's envelope and the outbox row that carries it, for writers that
        insert rows their own way (intake's bulk path writes a thousand per statement)."""
        envelope = build_envelope(
            payload,
            producer=self.producer,
            subject_key=subject_key,
            occurred_at=occurred_at,
            produced_at=now,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return envelope, {
            "event_id": envelope.event_id,
            "topic": self.topic,
            "message_key": subject_key,
            "event_type": envelope.event_type,
            "value": encode(envelope).decode(),
            "headers": {
                "event_type": envelope.event_type,
                "schema_version": str(envelope.schema_version),
                "event_id": str(envelope.event_id),
                "correlation_id": str(envelope.correlation_id),
            },
            "created_at": now,
            "attempts": 0,
        }


def _to_message(row: Any) -> OutgoingMessage:
    headers = tuple((str(k), str(v).encode()) for k, v in dict(row.headers).items())
    return OutgoingMessage(
        topic=row.topic, key=row.message_key.encode(), value=row.value.encode(), headers=headers
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, marking them only once acknowledged."""

    def __init__(
        self,
        *,
        service: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        publisher: MessagePublisher,
        clock: Clock,
        settings: RelaySettings,
    ) -> None:
        self.service = service
        self._sessionmaker = sessionmaker
        self._table = table
        self._publisher = publisher
        self._clock = clock
        self._settings = settings
        self._failures = 0

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows it published."""
        t = self._table
        async with self._sessionmaker() as session, session.begin():
            # SKIP LOCKED lets a standby relay take over without waiting on a crashed one's
            # locks; with one relay per service it never skips anything (ordering holds).
            rows = (
                await session.execute(
                    select(t.c.id, t.c.topic, t.c.message_key, t.c.value, t.c.headers)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self._settings.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            ids = [r.id for r in rows]
            failure: Exception | None = None
            try:
                await asyncio.wait_for(
                    self._publisher.publish_batch([_to_message(r) for r in rows]),
                    timeout=60,
                )
            except Exception as exc:
                failure = exc
            if failure is None:
                await session.execute(
                    update(t).where(t.c.id.in_(ids)).values(published_at=self._clock.now())
                )
            else:
                # Committed, not raised inside the block: the rows stay unpublished, and the
                # attempt count tells an operator how long the broker has refused them.
                await session.execute(
                    update(t)
                    .where(t.c.id.in_(ids))
                    .values(attempts=t.c.attempts + 1, last_error=repr(failure)[:2000])
                )
        if failure is not None:
            raise failure
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def measure(self) -> tuple[int, float]:
        """Return (backlog, age of the oldest unpublished row in seconds) and export both."""
        t = self._table
        async with self._sessionmaker() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
                )
            ).one()
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # SQLite aggregate bypasses the type decorator
                oldest = datetime.fromisoformat(str(oldest)).replace(
                    tzinfo=self._clock.now().tzinfo
                )
            age = max(0.0, (self._clock.now() - oldest).total_seconds())
        OUTBOX_BACKLOG.labels(self.service).set(count)
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)
        return int(count), age

    async def prune(self) -> int:
        """Delete rows published longer ago than the retention period."""
        cutoff = self._clock.now() - timedelta(days=self._settings.prune_after_days)
        t = self._table
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(t).where(t.c.published_at.is_not(None), t.c.published_at < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def _backoff(self) -> float:
        return backoff_delay(
            self._failures, initial=0.2, maximum=self._settings.max_backoff_seconds
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until stop is set; a failed batch is retried, in order, after a backoff."""
        loop = asyncio.get_running_loop()
        last_measure = 0.0
        while not stop.is_set():
            try:
                published = await self.relay_once()
                self._failures = 0
            except Exception as exc:
                self._failures += 1
                delay = self._backoff()
                logger.warning(
                    "outbox relay of %s failed (%s); retrying in %.1fs", self.service, exc, delay
                )
                await _sleep_or_stop(stop, delay)
                continue
            if loop.time() - last_measure > 5:
                last_measure = loop.time()
                try:
                    await self.measure()
                except Exception:
                    logger.debug("outbox measure failed", exc_info=True)
            if published == 0:
                await _sleep_or_stop(stop, self._settings.idle_poll_seconds)

    async def drain(self) -> int:
        """Publish until the outbox is empty (used at shutdown and in tests)."""
        total = 0
        while True:
            n = await self.relay_once()
            total += n
            if n == 0:
                return total


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
