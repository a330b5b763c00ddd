"""`fangpin dlq list|replay` on a real broker: poison lands on the DLQ, replay applies it once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from deploy import cli
from deploy.dlq import dlq_topic_of, list_dead_letters, replay_dead_letters
from services.screening.models import inbox_table, outbox_table
from shared.clock import FrozenClock
from shared.contracts.common import PersonV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1
from shared.contracts.registry import build_envelope, encode
from shared.db import create_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.kafka import KafkaPublisher, KafkaSource
from shared.messaging.outbox import Outbox
from shared.messaging.ports import OutgoingMessage
from shared.settings import ConsumerSettings, DatabaseSettings, KafkaSettings
from tests.conftest import KAFKA
from tests.e2e.pipeline import create_topics
from tests.factories import resident_id
from tests.figures import record

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
EFFECTS = Outbox(outbox_table, topic="test.effects", producer="test")
CLEAR_ID = resident_id(4242)


def _event(alert_id: str) -> OutgoingMessage:
    env = build_envelope(
        AlertReceivedV1(
            department="health",
            alert_id=alert_id,
            alert_type="health.serious_illness_diagnosis",
            subject=PersonV1(person_ref=f"p-{alert_id}", id_cipher="v1.x", id_masked="x"),
            occurred_on=NOW.date(),
            received_at=NOW,
        ),
        producer="intake",
        subject_key=f"p-{alert_id}",
        occurred_at=NOW,
        produced_at=NOW,
    )
    return OutgoingMessage(
        topic="intake.events",
        key=env.subject_key.encode(),
        value=encode(env),
        headers=(
            ("event_type", env.event_type.encode()),
            ("schema_version", b"1"),
            ("event_id", str(env.event_id).encode()),
        ),
    )


class Handler:
    """Stages one outbox row per applied event; refuses alert BAD until fixed."""

    def __init__(self) -> None:
        self.fixed = False

    async def __call__(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        if envelope.payload.alert_id == "BAD" and not self.fixed:
            # The clear number in the message is what `dlq list` must never show.
            raise ValueError(f"cannot place subject {CLEAR_ID}")
        await EFFECTS.add(session, envelope.payload, subject_key="k", occurred_at=NOW, now=NOW)


class Consumer:
    """The screening group on a real broker, driven by hand."""

    def __init__(self, settings: KafkaSettings, engine: AsyncEngine, handler: Handler) -> None:
        self.source = KafkaSource(settings, "screening", ["intake.events"])
        self.dead = KafkaPublisher(settings)
        self.runner = ConsumerRunner(
            group="screening",
            source=self.source,
            dead_letters=self.dead,
            dlq_topic=dlq_topic_of("screening"),
            sessionmaker=make_sessionmaker(engine),
            inbox=inbox_table,
            handlers={("intake.alert_received", 1): handler},
            clock=FrozenClock(NOW),
            settings=ConsumerSettings(initial_backoff_seconds=0.01, max_attempts=2),
        )

    async def consume(self, count: int) -> None:
        """Process records until `count` more have been handled."""
        seen = 0
        for _ in range(120):
            batch = await self.source.fetch(max_records=100, timeout_ms=500)
            if batch:
                await self.runner.process(batch)
                seen += len(batch)
            if seen >= count:
                return
        raise AssertionError(f"only {seen} of {count} records arrived")


@pytest.fixture
async def kafka_settings() -> KafkaSettings:
    """A topic namespace of this test on the shared broker."""
    namespace = f"d{uuid.uuid4().hex[:8]}."
    await create_topics(namespace)
    return KafkaSettings(bootstrap_servers=str(KAFKA), namespace=namespace, client_id="dlq-test")


@pytest.fixture
async def engine(db_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    """Screening's migrated PostgreSQL database of this test."""
    eng = create_engine(DatabaseSettings(url=db_urls["screening"]))
    yield eng
    await eng.dispose()


async def _applied(engine: AsyncEngine) -> list[str]:
    async with make_sessionmaker(engine)() as session:
        rows = (await session.execute(select(outbox_table.c.value))).all()
    return sorted(json.loads(r.value)["payload"]["alert_id"] for r in rows)


async def _inbox(engine: AsyncEngine) -> int:
    async with make_sessionmaker(engine)() as session:
        return int(
            (await session.execute(select(func.count()).select_from(inbox_table))).scalar_one()
        )


class TestReplay:
    async def test_poison_waits_on_the_dlq_and_replay_applies_it_exactly_once(
        self,
        kafka_settings: KafkaSettings,
        engine: AsyncEngine,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        publisher = KafkaPublisher(kafka_settings)
        await publisher.start()
        handler = Handler()
        consumer = Consumer(kafka_settings, engine, handler)
        await consumer.source.start()
        await consumer.dead.start()
        try:
            await publisher.publish_batch([_event("A1"), _event("BAD"), _event("A2")])
            await consumer.consume(3)
            assert await _applied(engine) == ["A1", "A2"]

            [dead] = await list_dead_letters(kafka_settings, "screening")
            assert dead["error_type"] == "ValueError"
            assert dead["event_type"] == "intake.alert_received"
            assert str(dead["original"]).startswith("intake.events:")
            assert CLEAR_ID not in str(dead["error"])
            assert CLEAR_ID[:6] + "********" in str(dead["error"])
            assert dead["replayed"] is False

            # The fix ships; the operator replays.
            handler.fixed = True
            first = await replay_dead_letters(kafka_settings, "screening")
            assert first.republished == 1
            await consumer.consume(1)
            assert await _applied(engine) == ["A1", "A2", "BAD"]

            # A second replay finds nothing new.
            second = await replay_dead_letters(kafka_settings, "screening")
            assert second.republished == 0
            [dead] = await list_dead_letters(kafka_settings, "screening")
            assert dead["replayed"] is True

            # A replay that died before committing its position sends the record again:
            # the inbox drops it.
            again = await _republish_raw(kafka_settings)
            await consumer.consume(again)
            assert await _applied(engine) == ["A1", "A2", "BAD"]
            assert await _inbox(engine) == 3

            # What the operator sees: no clear resident ID, the record marked replayed.
            assert (
                await asyncio.to_thread(
                    cli.main,
                    [
                        "dlq",
                        "list",
                        "screening",
                        "--bootstrap-servers",
                        kafka_settings.bootstrap_servers,
                        "--namespace",
                        kafka_settings.namespace,
                    ],
                )
                == 0
            )
            shown = capsys.readouterr().out
            assert "ValueError" in shown
            assert "replayed" in shown
            assert CLEAR_ID not in shown
            assert "1 dead letter(s) on screening.dlq, 0 not replayed" in shown
        finally:
            await consumer.source.stop()
            await consumer.dead.stop()
            await publisher.stop()
        record(
            "faults",
            {
                "check": (
                    "poison event dead-lettered with its error, replayed after the fix, "
                    "replayed again, redelivered"
                ),
                "faults_injected": 3,
                "alerts_sent": 3,
                "lost": 3 - len(set(await _applied(engine))),
                "duplicated": len(await _applied(engine)) - len(set(await _applied(engine))),
            },
        )


async def _republish_raw(settings: KafkaSettings) -> int:
    """Send the dead letter to its original topic again, bypassing the replay position."""
    from deploy.dlq import DeadLetterTopic, republish

    async with DeadLetterTopic(settings, "screening.dlq") as dlq:
        records = await dlq.read({})
    return await republish(settings, records)
