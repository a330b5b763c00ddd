"""ConsumerRunner: each effect once, poison to the dead-letter topic, transient failures retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import inbox_table, outbox_table
from shared.clock import FrozenClock
from shared.contracts.common import PersonV1
from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import AlertReceivedV1
from shared.contracts.registry import build_envelope, decode, encode
from shared.db import create_engine, make_sessionmaker
from shared.messaging.consumer import BatchHandler, ConsumerRunner, Handler
from shared.messaging.memory import InMemoryBus
from shared.messaging.outbox import Outbox, Staged
from shared.messaging.ports import OutgoingMessage
from shared.settings import ConsumerSettings, DatabaseSettings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
OUTBOX = Outbox(outbox_table, topic="test.events", producer="test")


def _record(n: int) -> OutgoingMessage:
    env = build_envelope(
        AlertReceivedV1(
            department="health",
            alert_id=f"A-{n}",
            alert_type="health.serious_illness_diagnosis",
            subject=PersonV1(person_ref=f"p{n}", id_cipher="v1.x", id_masked="x"),
            occurred_on=NOW.date(),
            received_at=NOW,
        ),
        producer="intake",
        subject_key=f"p{n}",
        occurred_at=NOW,
        produced_at=NOW,
    )
    return OutgoingMessage(topic="intake.events", key=f"p{n}".encode(), value=encode(env))


class Recorder:
    """A handler that writes one inbox-independent row per call, and can be told to fail."""

    def __init__(self, failures: Sequence[Exception] | None = None) -> None:
        self.calls = 0
        self.failures = list(failures or [])

    async def __call__(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        # A handler's own effect: here an event of its own, staged in the outbox.
        await OUTBOX.add(session, envelope.payload, subject_key="k", occurred_at=NOW, now=NOW)


async def _runner(
    db_url: str, handler: Handler, bus: InMemoryBus, batch_handler: BatchHandler | None = None
) -> tuple[ConsumerRunner, Any, Any]:
    engine = create_engine(DatabaseSettings(url=db_url))
    sm = make_sessionmaker(engine)
    source = bus.source("screening", ["intake.events"])
    await source.start()
    runner = ConsumerRunner(
        group="screening",
        source=source,
        dead_letters=bus.publisher(),
        dlq_topic="screening.dlq",
        sessionmaker=sm,
        inbox=inbox_table,
        handlers={("intake.alert_received", 1): handler},
        batch_handler=batch_handler,
        clock=FrozenClock(NOW),
        settings=ConsumerSettings(
            initial_backoff_seconds=0.001, max_backoff_seconds=0.01, max_attempts=3
        ),
    )
    return runner, source, engine


async def _rows(engine: Any) -> int:
    async with make_sessionmaker(engine)() as session:
        return int(
            (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one()
        )


class TestProcess:
    async def test_a_redelivered_event_takes_effect_once(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(1), _record(2)])
        batch = await source.fetch(max_records=10, timeout_ms=0)
        await runner.process(batch)
        await runner.process(batch)  # the same records again, as after a crash before commit
        assert await _rows(engine) == 2
        assert handler.calls == 2
        await engine.dispose()

    async def test_poison_goes_to_the_dead_letter_topic_with_its_error(
        self, db_urls: dict[str, str]
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([OutgoingMessage(topic="intake.events", key=b"k", value=b"{not json")])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        [dead] = bus.records("screening.dlq")
        assert dead.value == b"{not json"
        assert dead.header("x-error-type") == "PoisonMessage"
        assert dead.header("x-original-topic") == "intake.events"
        assert dead.header("x-original-offset") == "0"
        assert dead.header("x-attempts") == "1"
        assert dead.header("x-failed-at") is not None
        assert source.lag() == 0  # committed: the partition moves on
        await engine.dispose()

    async def test_transient_failures_are_retried_then_applied(
        self, db_urls: dict[str, str]
    ) -> None:
        bus = InMemoryBus()
        handler = Recorder(
            [IntegrityError("race", {}, Exception()), IntegrityError("race", {}, Exception())]
        )
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(1)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 3
        assert await _rows(engine) == 1
        assert bus.records("screening.dlq") == []
        await engine.dispose()

    async def test_a_failure_that_persists_is_dead_lettered_after_the_limit(
        self, db_urls: dict[str, str]
    ) -> None:
        bus = InMemoryBus()
        handler = Recorder([IntegrityError("x", {}, Exception()) for _ in range(5)])
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(1)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 3
        [dead] = bus.records("screening.dlq")
        assert dead.header("x-attempts") == "3"
        await engine.dispose()

    async def test_a_database_outage_blocks_instead_of_dead_lettering(
        self, db_urls: dict[str, str]
    ) -> None:
        bus = InMemoryBus()
        outage = [OperationalError("connect", {}, Exception()) for _ in range(8)]
        handler = Recorder(outage)
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(1)])
        await asyncio.wait_for(runner.process(await source.fetch(max_records=10, timeout_ms=0)), 10)
        assert handler.calls == 9  # eight outages waited out, then applied
        assert bus.records("screening.dlq") == []
        assert await _rows(engine) == 1
        await engine.dispose()

    async def test_events_nobody_handles_are_skipped(self, db_urls: dict[str, str]) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append(
            [
                OutgoingMessage(
                    topic="intake.events",
                    key=b"k",
                    value=b'{"event_type":"x.y","schema_version":1}',
                )
            ]
        )
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 0
        assert bus.records("screening.dlq") == []
        await engine.dispose()


class FailsOnce:
    """A handler that fails the first time it meets one alert, then behaves like Recorder."""

    def __init__(self, alert_id: str, error: Exception) -> None:
        self.alert_id = alert_id
        self.error: Exception | None = error
        self.applied: list[str] = []

    async def __call__(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        alert_id = envelope.payload.alert_id
        await OUTBOX.add(session, envelope.payload, subject_key="k", occurred_at=NOW, now=NOW)
        if alert_id == self.alert_id and self.error is not None:
            error, self.error = self.error, None
            raise error
        self.applied.append(alert_id)


class TestBatchTransaction:
    """A fetched batch commits as one transaction; any failure replays it record by record."""

    async def test_a_batch_applies_each_record_once(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(n) for n in range(5)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 5
        assert await _rows(engine) == 5
        assert source.lag() == 0
        await engine.dispose()

    async def test_the_same_event_twice_in_one_batch_takes_effect_once(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        twice = _record(1)
        await bus.append([twice, _record(2), twice])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 2
        assert await _rows(engine) == 2
        await engine.dispose()

    async def test_poison_inside_a_batch_is_dead_lettered_and_the_rest_applied(
        self, db_urls: dict[str, str]
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        poison = OutgoingMessage(topic="intake.events", key=b"k", value=b"{not json")
        await bus.append([_record(1), poison, _record(2)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 2
        assert await _rows(engine) == 2
        [dead] = bus.records("screening.dlq")
        assert dead.value == b"{not json"
        assert dead.header("x-original-offset") == "1"
        assert source.lag() == 0
        await engine.dispose()

    async def test_a_failure_rolls_the_batch_back_and_replays_one_by_one(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus = InMemoryBus()
        handler = FailsOnce("A-2", IntegrityError("race", {}, Exception()))
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        await bus.append([_record(n) for n in range(1, 5)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        # The others ran inside the failed batch, were rolled back with it and ran again
        # alone; their first effects must not survive, so each alert's row exists once.
        assert sorted(handler.applied) == ["A-1", "A-1", "A-2", "A-3", "A-3", "A-4", "A-4"]
        assert await _rows(engine) == 4
        assert bus.records("screening.dlq") == []
        await engine.dispose()

    async def test_events_nobody_handles_do_not_break_the_batch(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler = InMemoryBus(), Recorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        unknown = OutgoingMessage(
            topic="intake.events", key=b"k", value=b'{"event_type":"x.y","schema_version":1}'
        )
        await bus.append([_record(1), unknown, _record(2), _record(3)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert handler.calls == 3  # applied once each, in one transaction (no replay)
        assert await _rows(engine) == 3
        assert bus.records("screening.dlq") == []
        await engine.dispose()

    async def test_a_failure_mid_batch_replays_record_by_record(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        # The second call fails once: the batch rolls back whole, then each record is
        # applied in its own transaction; nothing is doubled and nothing is dead-lettered.
        bus, handler = InMemoryBus(), Recorder()
        original = handler.__call__
        calls = {"n": 0}

        async def flaky(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise TimeoutError("once")
            await original(session, envelope)

        runner, source, engine = await _runner(db_urls["intake"], handler, bus)
        runner._handlers = {("intake.alert_received", 1): flaky}
        await bus.append([_record(1), _record(2), _record(3)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        assert await _rows(engine) == 3
        assert bus.records("screening.dlq") == []
        assert calls["n"] == 2 + 3  # two in the failed batch, then three one by one
        await engine.dispose()


class BatchRecorder:
    """A batch handler that stages one event per fresh event, and can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    async def __call__(
        self, session: AsyncSession, envelopes: Sequence[EventEnvelope[Any]]
    ) -> None:
        self.batches.append([e.payload.alert_id for e in envelopes])
        await OUTBOX.add_many(
            session,
            [Staged(payload=e.payload, subject_key="k", occurred_at=NOW) for e in envelopes],
            now=NOW,
        )
        if self.fail:
            raise TimeoutError("the batch fails")


class TestBatchHandler:
    """A batch handler gets a fetched batch's fresh events at once, claimed in one statement."""

    async def test_gets_each_fresh_event_once_in_order(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler, batches = InMemoryBus(), Recorder(), BatchRecorder()
        runner, source, engine = await _runner(db_urls["intake"], handler, bus, batches)
        one, two, three, four = (_record(n) for n in range(1, 5))
        await bus.append([one, two])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        # A redelivery of the first two, a repeat inside the batch, and two new events.
        await bus.append([one, three, two, three, four])
        fetched = await source.fetch(max_records=10, timeout_ms=0)
        await runner.process(fetched)
        seen: list[str] = [getattr(decode(m.value).payload, "alert_id", "") for m in fetched]
        fresh = [a for i, a in enumerate(seen) if a in ("A-3", "A-4") and a not in seen[:i]]
        assert batches.batches[1:] == [fresh]
        assert sorted(batches.batches[0]) == ["A-1", "A-2"]
        assert handler.calls == 0
        assert await _rows(engine) == 4
        assert source.lag() == 0
        await engine.dispose()

    async def test_a_failing_batch_is_replayed_through_the_record_handlers(
        self, db_urls: dict[str, str], backend: str
    ) -> None:
        bus, handler, batches = InMemoryBus(), Recorder(), BatchRecorder(fail=True)
        runner, source, engine = await _runner(db_urls["intake"], handler, bus, batches)
        await bus.append([_record(n) for n in range(1, 4)])
        await runner.process(await source.fetch(max_records=10, timeout_ms=0))
        # The batch's staged rows rolled back with its inbox claims; each record then ran alone.
        assert [sorted(b) for b in batches.batches] == [["A-1", "A-2", "A-3"]]
        assert handler.calls == 3
        assert await _rows(engine) == 3
        assert bus.records("screening.dlq") == []
        await engine.dispose()
