"""The outbox relay: publishes in order, marks only acknowledged rows, never loses a row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.intake.models import outbox_table
from shared.clock import FrozenClock
from shared.contracts.common import PersonV1
from shared.contracts.intake import AlertReceivedV1
from shared.contracts.registry import decode
from shared.db import create_engine, make_sessionmaker
from shared.messaging.memory import InMemoryBus
from shared.messaging.outbox import Outbox, OutboxRelay, Staged
from shared.messaging.ports import OutgoingMessage
from shared.settings import DatabaseSettings, RelaySettings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _payload(n: int) -> AlertReceivedV1:
    return AlertReceivedV1(
        department="health",
        alert_id=f"A-{n}",
        alert_type="health.serious_illness_diagnosis",
        subject=PersonV1(person_ref="same-person", id_cipher="v1.x", id_masked="x"),
        occurred_on=NOW.date(),
        received_at=NOW,
    )


class FlakyPublisher:
    """Fails the first `failures` batches, then delivers to a bus."""

    def __init__(self, bus: InMemoryBus, failures: int) -> None:
        self.bus = bus
        self.failures = failures

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker down")
        await self.bus.append(messages)


async def _stage(sm: object, n: int) -> None:
    outbox = Outbox(outbox_table, topic="intake.events", producer="intake")
    async with sm() as session, session.begin():  # type: ignore[operator]
        for i in range(n):
            await outbox.add(
                session, _payload(i), subject_key="same-person", occurred_at=NOW, now=NOW
            )


def _relay(sm: Any, bus: InMemoryBus, *, batch_size: int) -> OutboxRelay:
    return OutboxRelay(
        service="intake",
        sessionmaker=sm,
        table=outbox_table,
        publisher=bus.publisher(),
        clock=FrozenClock(NOW),
        settings=RelaySettings(batch_size=batch_size),
    )


class TestOutbox:
    async def test_events_staged_together_are_relayed_in_the_order_given(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        engine = create_engine(DatabaseSettings(url=db_urls["intake"]))
        sm = make_sessionmaker(engine)
        outbox = Outbox(outbox_table, topic="intake.events", producer="intake")
        order = [7, 3, 9, 1, 5]
        async with sm() as session, session.begin():
            await outbox.add(session, _payload(0), subject_key="k", occurred_at=NOW, now=NOW)
            staged = await outbox.add_many(
                session,
                [Staged(payload=_payload(n), subject_key="k", occurred_at=NOW) for n in order],
                now=NOW,
            )
        bus = InMemoryBus()
        relay = _relay(sm, bus, batch_size=2)
        assert await relay.drain() == 6
        published = [decode(m.value) for m in bus.records("intake.events")]
        assert [getattr(e.payload, "alert_id", None) for e in published] == [
            "A-0",
            *(f"A-{n}" for n in order),
        ]
        assert [e.event_id for e in published[1:]] == [e.event_id for e in staged]
        await engine.dispose()


class TestOutboxRelay:
    async def test_publishes_in_order_and_marks_rows(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        engine = create_engine(DatabaseSettings(url=db_urls["intake"]))
        sm = make_sessionmaker(engine)
        bus = InMemoryBus()
        await _stage(sm, 25)
        relay = _relay(sm, bus, batch_size=10)
        assert await relay.drain() == 25
        ids = [
            getattr(decode(m.value).payload, "alert_id", None) for m in bus.records("intake.events")
        ]
        assert ids == [f"A-{i}" for i in range(25)]
        assert await relay.measure() == (0, 0.0)
        await engine.dispose()

    async def test_a_failed_publish_keeps_every_row_for_the_retry(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        engine = create_engine(DatabaseSettings(url=db_urls["intake"]))
        sm = make_sessionmaker(engine)
        bus = InMemoryBus()
        await _stage(sm, 5)
        relay = OutboxRelay(
            service="intake",
            sessionmaker=sm,
            table=outbox_table,
            publisher=FlakyPublisher(bus, failures=2),
            clock=FrozenClock(NOW),
            settings=RelaySettings(batch_size=10),
        )
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await relay.relay_once()
        async with sm() as session:
            rows = (
                await session.execute(select(outbox_table.c.attempts, outbox_table.c.published_at))
            ).all()
        assert all(r.attempts == 2 and r.published_at is None for r in rows)
        assert await relay.drain() == 5
        assert len(bus.records("intake.events")) == 5
        await engine.dispose()


@pytest.mark.postgres
class TestTwoRelays:
    async def test_two_relays_never_publish_a_row_twice(self, db_urls: dict[str, str]) -> None:
        engines = [create_engine(DatabaseSettings(url=db_urls["intake"])) for _ in range(2)]
        sms = [make_sessionmaker(e) for e in engines]
        await _stage(sms[0], 300)
        bus = InMemoryBus()
        relays = [
            OutboxRelay(
                service="intake",
                sessionmaker=sm,
                table=outbox_table,
                publisher=bus.publisher(),
                clock=FrozenClock(NOW),
                settings=RelaySettings(batch_size=20),
            )
            for sm in sms
        ]
        counts = await asyncio.gather(*(r.drain() for r in relays))
        assert sum(counts) == 300
        event_ids = [decode(m.value).event_id for m in bus.records("intake.events")]
        assert len(event_ids) == len(set(event_ids)) == 300
        for e in engines:
            await e.dispose()
